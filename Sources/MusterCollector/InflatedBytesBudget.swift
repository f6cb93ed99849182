import Prometheus

/// Bounds the inflated batch bytes held at once across all ingest requests.
///
/// A batch's compressed size says little about what it costs: 63 KB may inflate to 60 MB,
/// and the parsed records cost as much again until the writer commits them. Record counts
/// bounded memory per request, not across requests (eight such bodies took the collector to
/// 619 MiB). A request reserves the most its body may inflate to before inflating, trims the
/// reservation to what it actually holds once decoded, and returns it when answered; a
/// request that does not fit waits, first come first served.
actor InflatedBytesBudget {
    let capacity: Int
    /// Shows `held` on `/metrics`; set by the actor, so a request costs no extra hop for it.
    private let heldGauge: Gauge?
    private var held = 0 {
        didSet { heldGauge?.set(Int64(held)) }
    }
    private var waiting: [(bytes: Int, resume: CheckedContinuation<Void, Never>)] = []

    init(capacity: Int, heldGauge: Gauge? = nil) {
        self.capacity = capacity
        self.heldGauge = heldGauge
    }

    /// Waits until `bytes` fit (a reservation larger than the whole budget is capped at it,
    /// so it runs alone rather than never).
    func reserve(_ bytes: Int) async -> Int {
        let bytes = min(max(bytes, 0), capacity)
        if waiting.isEmpty, held + bytes <= capacity {
            held += bytes
            return bytes
        }
        await withCheckedContinuation { continuation in waiting.append((bytes, continuation)) }
        return bytes
    }

    /// Gives back `bytes` of a reservation (all of it, or the part no longer needed).
    func release(_ bytes: Int) {
        held -= min(max(bytes, 0), held)
        while let next = waiting.first, held + next.bytes <= capacity {
            waiting.removeFirst()
            held += next.bytes
            next.resume.resume()
        }
    }

    var heldBytes: Int { held }
}

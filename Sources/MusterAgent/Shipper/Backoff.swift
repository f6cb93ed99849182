/// Capped exponential backoff with full jitter: attempt n waits a random time in
/// [0, min(cap, initial · 2ⁿ)], so agents that lost the collector together do not all
/// come back in the same instant.
public struct Backoff: Sendable {
    public var initial: Duration
    public var cap: Duration

    public init(initial: Duration, cap: Duration) {
        self.initial = initial
        self.cap = cap
    }

    public func ceiling(attempt: Int) -> Duration {
        // Doubling stops at the cap, so a large `initial` or many attempts never overflow.
        guard initial > .zero else { return .zero }
        var grown = initial
        for _ in 0..<min(max(attempt, 0), 62) where grown < cap { grown += grown }
        return grown > cap ? cap : grown
    }

    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        .nanoseconds(Int64.random(in: 0...max(1, ceiling(attempt: attempt).saturatingNanoseconds), using: &generator))
    }
}

extension Duration {
    /// Whole nanoseconds, negative durations as 0 and those past `Int64.max` nanoseconds
    /// (292 years) as `Int64.max`: for the APIs that take a nanosecond count.
    var saturatingNanoseconds: Int64 {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .max }
        let (total, overflowAgain) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAgain ? .max : total
    }
}

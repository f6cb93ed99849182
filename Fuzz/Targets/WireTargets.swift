import MusterWire
import NIOCore

extension FuzzTarget {
    /// An ingest body as the collector decodes it: NDJSON lines through the hand-written line
    /// parser, sticky keys, implied offsets, default limits.
    static let wireBatch = FuzzTarget(
        name: "wire-batch", maxLength: 4096, summary: "BatchCodec.decode (the NDJSON batch and its line parser)"
    ) { input in
        guard let records = try? BatchCodec.decode(ByteBuffer(bytes: input)) else { return }
        checkAccepted(records, limits: .init())
        // What the collector accepted, the agent's encoder must write back as the same records.
        var encoder = BatchEncoder()
        for record in records { encoder.append(record) }
        let again = try? BatchCodec.decode(ByteBuffer(bytes: encoder.bytes))
        precondition(again == records, "re-encoding an accepted batch changed its records")
    }

    /// A compressed ingest body: the first byte picks the `Content-Encoding`, the rest is the
    /// body, inflated with a small limit and then decoded like `wire-batch`.
    static let wireInflate = FuzzTarget(
        name: "wire-inflate", maxLength: 4096, summary: "ContentCoding.decode with a limit (zlib, raw deflate, gzip), then BatchCodec.decode"
    ) { input in
        guard let selector = input.first else { return }
        let coding: ContentCoding = selector & 1 == 0 ? .deflate : .gzip
        let limit = 1 << 16
        guard let inflated = try? coding.decode(ByteBuffer(bytes: input.dropFirst()), limit: limit) else { return }
        precondition(inflated.readableBytes <= limit, "inflated \(inflated.readableBytes) bytes past the limit of \(limit)")
        let limits = BatchCodec.Limits(maxRecords: 64, maxLineBytes: 1024)
        if let records = try? BatchCodec.decode(inflated, limits: limits) { checkAccepted(records, limits: limits) }
    }

    /// What every accepted batch promises the collector's store and logq.
    private static func checkAccepted(_ records: [LogRecord], limits: BatchCodec.Limits) {
        precondition(!records.isEmpty && records.count <= limits.maxRecords, "accepted \(records.count) records")
        for record in records {
            precondition(Timestamp.supportedRange.contains(record.time), "accepted t = \(record.time)")
            precondition(Origin.offsetRange.contains(record.origin.offset), "accepted off = \(record.origin.offset)")
            precondition(!record.origin.agent.isEmpty && !record.origin.source.isEmpty && !record.node.isEmpty)
        }
    }

    /// `t` strings on the wire, and every other RFC 3339 time Muster reads.
    static let rfc3339 = FuzzTarget(
        name: "rfc3339", maxLength: 64, summary: "Timestamp.parseRFC3339 and Timestamp.format"
    ) { input in
        guard let nanos = Timestamp.parseRFC3339(input.text) else { return }
        precondition(Timestamp.supportedRange.contains(nanos), "parsed \(nanos), outside the supported range")
        let printed = Timestamp.format(nanos)
        precondition(Timestamp.parseRFC3339(printed) == nanos, "\(printed) does not parse back to \(nanos)")
    }
}

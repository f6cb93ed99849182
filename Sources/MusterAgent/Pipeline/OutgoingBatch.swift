import MusterWire
import NIOCore

/// A closed batch, encoded but not yet compressed.
struct EncodedBatch: Sendable {
    var ndjson: [UInt8]
    var records: Int
    var positions: [FilePosition]

    func compressed(with compressor: BatchCompressor) throws -> OutgoingBatch {
        OutgoingBatch(
            body: try compressor.compress(ndjson), records: records, uncompressedBytes: ndjson.count,
            positions: positions)
    }
}

/// A closed, compressed batch on its way to the collector, with the file positions that
/// move on once it is in the spool.
public struct OutgoingBatch: Sendable {
    public var body: ByteBuffer
    public var records: Int
    public var uncompressedBytes: Int
    public var positions: [FilePosition]
}

extension OutgoingBatch {
    /// The batch cut into two halves of its records, each encoded and compressed on its own
    /// (for a collector that refuses the whole as too large). Nil for a single record.
    /// The halves carry no positions: the whole batch's positions apply once both are through.
    func split(with compressor: BatchCompressor) throws -> (OutgoingBatch, OutgoingBatch)? {
        guard records > 1 else { return nil }
        let ndjson = try ContentCoding.deflate.decode(body, limit: uncompressedBytes)
        let all = try BatchCodec.decode(ndjson, limits: .init(maxRecords: .max, maxLineBytes: .max))
        func half(_ part: ArraySlice<LogRecord>) throws -> OutgoingBatch {
            var encoder = BatchEncoder(capacity: uncompressedBytes / 2 + 1024)
            for record in part { encoder.append(record) }
            return OutgoingBatch(
                body: try compressor.compress(encoder.bytes), records: encoder.count,
                uncompressedBytes: encoder.bytes.count, positions: [])
        }
        let middle = all.count / 2
        return (try half(all[..<middle]), try half(all[middle...]))
    }
}

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
/// become durable once it is acknowledged.
public struct OutgoingBatch: Sendable {
    public var body: ByteBuffer
    public var records: Int
    public var uncompressedBytes: Int
    public var positions: [FilePosition]
}

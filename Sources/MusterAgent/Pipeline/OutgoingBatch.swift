import NIOCore

/// A closed, compressed batch on its way to the collector, with the file positions that
/// become durable once it is acknowledged.
public struct OutgoingBatch: Sendable {
    public var body: ByteBuffer
    public var records: Int
    public var uncompressedBytes: Int
    public var positions: [FilePosition]
}

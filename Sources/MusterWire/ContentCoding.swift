import CompressNIO
import NIOCore

/// The `Content-Encoding` of an ingest body.
public enum ContentCoding: String, Sendable, CaseIterable {
    /// HTTP's "deflate" is zlib-wrapped deflate (RFC 9110 §8.4.1.2); raw deflate, which some
    /// clients send under the same name, is accepted too.
    case deflate
    case gzip
    case identity

    public init(header: String?) throws(WireError) {
        let name = (header ?? "identity").trimmingASCIIWhitespace().lowercased()
        switch name {
        case "", "identity": self = .identity
        case "deflate", "zlib": self = .deflate
        case "gzip", "x-gzip": self = .gzip
        default: throw .unsupportedEncoding(name)
        }
    }

    /// Inflates `body`, stopping as soon as the output would pass `limit`, so a small
    /// compressed body can never make us allocate more than the limit.
    public func decode(_ body: ByteBuffer, limit: Int) throws(WireError) -> ByteBuffer {
        switch self {
        case .identity:
            guard body.readableBytes <= limit else { throw .decompressedTooLarge(limit: limit) }
            return body
        case .gzip:
            return try Inflater.inflate(body, format: .gzip, limit: limit)
        case .deflate:
            return try Inflater.inflate(body, format: Self.looksLikeZlib(body) ? .zlib : .rawDeflate, limit: limit)
        }
    }

    /// zlib's two-byte header: CM = 8 and the 16-bit value a multiple of 31 (RFC 1950 §2.2).
    static func looksLikeZlib(_ body: ByteBuffer) -> Bool {
        guard let bytes = body.getBytes(at: body.readerIndex, length: 2) else { return false }
        return bytes[0] & 0x0F == 8 && (UInt16(bytes[0]) << 8 | UInt16(bytes[1])) % 31 == 0
    }
}

/// Compression of outgoing bodies: zlib for the agent's batches, gzip for the collector's
/// inserts into ClickHouse (which takes `Content-Encoding: gzip`).
public struct BatchCompressor: Sendable {
    private let algorithm: CompressionAlgorithm

    /// `level` 1 (fastest) … 9 (smallest); 6 is zlib's default. `gzip` wraps the deflate stream
    /// in gzip's header and trailer instead of zlib's.
    public init(level: Int = 6, gzip: Bool = false) {
        let configuration = ZlibConfiguration(compressionLevel: Int32(max(1, min(9, level))))
        self.algorithm = gzip ? .gzip(configuration: configuration) : .zlib(configuration: configuration)
    }

    public func compress(_ bytes: [UInt8]) throws -> ByteBuffer {
        var buffer = ByteBuffer(bytes: bytes)
        let compressed = try buffer.compress(with: algorithm)
        // compress-nio allocates for the worst case (about the input size); keep only what the
        // batch needs while it waits to be sent and acknowledged.
        return ByteBuffer(bytes: compressed.readableBytesView)
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}

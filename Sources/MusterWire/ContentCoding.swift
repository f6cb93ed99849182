import CLibdeflate
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
///
/// libdeflate, not zlib: a batch is compressed whole, in one buffer, which is the one case
/// libdeflate serves, and there it spends ~40% less CPU than zlib for a smaller output (the
/// agent's HAProxy batches at level 5: 1.59 µs and 35.8 bytes per line against zlib's 2.65 µs
/// and 37.6; `Benchmarks/zlib_levels.py`). The output is the same format, zlib's (RFC 1950) or
/// gzip's (RFC 1952), inflated by any zlib.
public struct BatchCompressor: Sendable {
    /// libdeflate's levels: 1 (fastest) … 12 (smallest). Its 6 is its default.
    public static let levels: ClosedRange<Int> = 1...12

    private let level: Int32
    private let gzip: Bool

    /// `level` is clamped to `levels`. `gzip` wraps the deflate stream in gzip's header and
    /// trailer instead of zlib's.
    public init(level: Int = 6, gzip: Bool = false) {
        self.level = Int32(min(max(level, Self.levels.lowerBound), Self.levels.upperBound))
        self.gzip = gzip
    }

    public func compress(_ bytes: [UInt8]) throws(CompressionFailure) -> ByteBuffer {
        // A compressor holds its hash tables (a few hundred KiB); one per batch keeps this
        // type a value that any task may use, and costs little beside compressing 1 MiB.
        guard let compressor = libdeflate_alloc_compressor(level) else { throw .outOfMemory }
        defer { libdeflate_free_compressor(compressor) }
        let bound = gzip
            ? libdeflate_gzip_compress_bound(compressor, bytes.count)
            : libdeflate_zlib_compress_bound(compressor, bytes.count)
        // Written into, never read before: no need to zero the ~1 MiB first.
        let output = [UInt8](unsafeUninitializedCapacity: bound) { out, initialized in
            initialized = bytes.withUnsafeBytes { input in
                gzip
                    ? libdeflate_gzip_compress(compressor, input.baseAddress, input.count, out.baseAddress, out.count)
                    : libdeflate_zlib_compress(compressor, input.baseAddress, input.count, out.baseAddress, out.count)
            }
        }
        // Empty only when the output would not fit, which the bound rules out.
        guard !output.isEmpty else { throw .outputDidNotFit }
        // Keep only what the batch needs while it waits to be sent and acknowledged.
        return ByteBuffer(bytes: output)
    }
}

/// Why a body could not be compressed.
public enum CompressionFailure: Error, CustomStringConvertible, Sendable {
    case outOfMemory
    case outputDidNotFit

    public var description: String {
        switch self {
        case .outOfMemory: "could not allocate a compressor (out of memory)"
        case .outputDidNotFit: "the compressed body did not fit libdeflate's own bound"
        }
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

import CZlib
import NIOCore

/// Inflates an untrusted body with zlib directly.
///
/// Streaming, with zlib's own checks: a wrapper that returns normally when its input ends
/// mid-stream would let a truncated body pass as a shorter batch. Here the stream must reach its end marker
/// (and checksum), the output may not pass `limit` (checked while inflating, so a
/// decompression bomb costs at most `limit` bytes), and nothing may follow the stream.
enum Inflater {
    enum Format {
        case zlib, rawDeflate, gzip

        var windowBits: Int32 {
            switch self {
            case .zlib: 15
            case .rawDeflate: -15
            case .gzip: 15 + 16
            }
        }
    }

    static func inflate(_ body: ByteBuffer, format: Format, limit: Int) throws(WireError) -> ByteBuffer {
        var stream = z_stream()
        guard czlib_inflate_init2(&stream, format.windowBits) == Z_OK else {
            throw .corruptCompression("zlib could not be initialised")
        }
        defer { inflateEnd(&stream) }
        var output = ByteBuffer()
        let input = Array(body.readableBytesView)
        var outcome: Int32 = Z_OK
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        input.withUnsafeBufferPointer { inputBytes in
            stream.next_in = UnsafeMutablePointer(mutating: inputBytes.baseAddress)
            stream.avail_in = UInt32(inputBytes.count)
            while outcome == Z_OK {
                chunk.withUnsafeMutableBufferPointer { chunkBytes in
                    stream.next_out = chunkBytes.baseAddress
                    stream.avail_out = UInt32(chunkBytes.count)
                    outcome = CZlib.inflate(&stream, Z_NO_FLUSH)
                    let produced = chunkBytes.count - Int(stream.avail_out)
                    if output.readableBytes + produced > limit {
                        outcome = Z_MEM_ERROR  // marks "over the limit"; reported below
                        return
                    }
                    output.writeBytes(UnsafeBufferPointer(rebasing: chunkBytes[0..<produced]))
                }
                if outcome == Z_BUF_ERROR || (outcome == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) {
                    break
                }
            }
        }
        switch outcome {
        case Z_STREAM_END:
            guard stream.avail_in == 0 else {
                throw .corruptCompression("\(stream.avail_in) bytes follow the end of the compressed stream")
            }
            return output
        case Z_MEM_ERROR:
            throw .decompressedTooLarge(limit: limit)
        case Z_DATA_ERROR, Z_NEED_DICT:
            let detail = stream.msg.map { String(cString: $0) } ?? "invalid data"
            throw .corruptCompression(detail)
        default:
            throw .corruptCompression("the compressed stream is truncated")
        }
    }
}

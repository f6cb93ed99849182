import CZlib

/// CRC-32 (zlib's, the one gzip and PNG use), for checking that bytes read back from disk are
/// the bytes that were written.
public enum Checksum {
    public static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        var result = UInt(crc)
        var remaining = bytes.count
        var pointer = base.assumingMemoryBound(to: Bytef.self)
        // zlib takes a 32-bit length.
        while remaining > 0 {
            let chunk = min(remaining, Int(UInt32.max))
            result = CZlib.crc32(result, pointer, uInt(chunk))
            pointer += chunk
            remaining -= chunk
        }
        return UInt32(truncatingIfNeeded: result)
    }

    public static func crc32(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0, continuing: crc) }
    }
}

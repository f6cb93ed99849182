import MusterWire

/// How one batch is laid out in a spool segment, and how a segment is read back.
///
/// ```
/// "MSP1" | body length u32 | records u32 | uncompressed bytes u32 | crc32 u32 | body
/// ```
/// Little-endian. The CRC covers the three counts and the body, so a damaged length is caught
/// as surely as a damaged body. After a damaged stretch the scan looks for the next magic
/// whose entry checks out, so one bad sector costs the batches in it, not the segment.
enum SpoolEntryFormat {
    static let magic: [UInt8] = Array("MSP1".utf8)
    static let headerBytes = 20
    /// No batch comes near this; a length above it is damage, not a batch.
    static let maxBodyBytes = 256 << 20

    struct Header: Equatable {
        var bodyBytes: Int
        var records: Int
        var uncompressedBytes: Int
        var crc: UInt32
    }

    static func encode(body: UnsafeRawBufferPointer, records: Int, uncompressedBytes: Int) -> [UInt8] {
        var entry = [UInt8]()
        entry.reserveCapacity(headerBytes + body.count)
        entry += magic
        append(UInt32(body.count), to: &entry)
        append(UInt32(records), to: &entry)
        append(UInt32(uncompressedBytes), to: &entry)
        let crc = entry[4..<16].withUnsafeBytes { Checksum.crc32(body, continuing: Checksum.crc32($0)) }
        append(crc, to: &entry)
        entry.append(contentsOf: body)
        return entry
    }

    /// The entry starting at `offset` in `bytes`, when it is whole and its CRC checks out.
    static func entry(in bytes: UnsafeRawBufferPointer, at offset: Int) -> Header? {
        guard bytes.count - offset >= headerBytes,
            bytes[offset] == magic[0], bytes[offset + 1] == magic[1], bytes[offset + 2] == magic[2],
            bytes[offset + 3] == magic[3]
        else { return nil }
        let header = Header(
            bodyBytes: Int(readUInt32(bytes, offset + 4)), records: Int(readUInt32(bytes, offset + 8)),
            uncompressedBytes: Int(readUInt32(bytes, offset + 12)), crc: readUInt32(bytes, offset + 16))
        guard header.bodyBytes <= maxBodyBytes, bytes.count - offset - headerBytes >= header.bodyBytes else { return nil }
        let counts = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 16)])
        let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerBytes)..<(offset + headerBytes + header.bodyBytes)])
        guard Checksum.crc32(body, continuing: Checksum.crc32(counts)) == header.crc else { return nil }
        return header
    }

    struct Scan {
        struct Found: Equatable {
            var offset: Int
            var header: Header
            var length: Int { headerBytes + header.bodyBytes }
        }
        var entries: [Found] = []
        /// Stretches that are not whole, checked entries: (offset, length).
        var damaged: [(offset: Int, bytes: Int)] = []
        /// Where the last whole entry ends.
        var validEnd = 0
    }

    /// Every whole entry in a segment's bytes, and the stretches in between that are not.
    static func scan(_ bytes: UnsafeRawBufferPointer) -> Scan {
        var scan = Scan()
        var offset = 0
        while offset < bytes.count {
            if let header = entry(in: bytes, at: offset) {
                let found = Scan.Found(offset: offset, header: header)
                scan.entries.append(found)
                offset += found.length
                scan.validEnd = offset
                continue
            }
            var next = offset + 1
            while next < bytes.count, entry(in: bytes, at: next) == nil { next += 1 }
            scan.damaged.append((offset, next - offset))
            offset = next
        }
        return scan
    }

    private static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func readUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            | UInt32(bytes[offset + 3]) << 24
    }
}

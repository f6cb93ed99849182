#if canImport(Glibc)
import Glibc
#endif
import MusterWire

/// What a generation's bytes were, in a few words: a running CRC-32 of everything read so far,
/// and the CRC at some earlier lengths ("marks").
///
/// The content itself may be gone by the time it is needed: copytruncate empties the file, and
/// the copy then has to be recognised as holding the same bytes. A copy is usually a little
/// shorter or longer than what was read, so the CRC at one length is not enough; marks are taken
/// after every read (so the ones near the end are close together) and thinned as they age.
/// CRC-32 (zlib's, ~2 GB/s) rather than FNV-1a (~0.9 GB/s measured): it runs over every byte read.
struct ContentTrail: Sendable, Equatable {
    struct Mark: Sendable, Hashable, Codable {
        var length: Int64
        var crc: UInt32

        // Stored as `[length, crc]`: the tailer's state file holds many of them.
        init(length: Int64, crc: UInt32) {
            self.length = length
            self.crc = crc
        }

        init(from decoder: Decoder) throws {
            var container = try decoder.unkeyedContainer()
            length = try container.decode(Int64.self)
            crc = try container.decode(UInt32.self)
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.unkeyedContainer()
            try container.encode(length)
            try container.encode(crc)
        }
    }

    static let maxMarks = 48
    /// Marks kept in the state file: enough to verify a copy after a restart, small enough to
    /// rewrite every second.
    static let persistedMarks = 12

    /// Bytes the running CRC covers (the generation's read offset while it is running).
    private(set) var length: Int64 = 0
    private(set) var crc: UInt32 = 0
    /// False when the running CRC could not be established (resumed past the end of a shorter
    /// copy, say): no new marks are made, and only the old ones can verify a copy.
    private(set) var isRunning = true
    /// Ascending by length, all at most `length` when running.
    private(set) var marks: [Mark] = []

    init() {}

    init(marks: [Mark]) {
        self.marks = marks.sorted { $0.length < $1.length }
        isRunning = false
    }

    mutating func absorb(_ bytes: UnsafeRawBufferPointer) {
        guard isRunning else { return }
        crc = Checksum.crc32(bytes, continuing: crc)
        length += Int64(bytes.count)
    }

    /// Starts the running CRC at `length` bytes whose CRC is `crc`; marks beyond that length
    /// describe bytes that will be read again, so they go.
    mutating func resume(length: Int64, crc: UInt32) {
        self.length = length
        self.crc = crc
        isRunning = true
        marks.removeAll { $0.length > length }
    }

    mutating func stop() {
        isRunning = false
    }

    /// Remembers the CRC at the current length. Past `maxMarks` every second one of the oldest
    /// two thirds goes, so recent lengths stay dense and old ones log-spaced.
    mutating func mark() {
        guard isRunning, length > 0, marks.last?.length != length else { return }
        marks.append(Mark(length: length, crc: crc))
        guard marks.count > Self.maxMarks else { return }
        let old = Self.maxMarks * 2 / 3
        var thinned: [Mark] = []
        thinned.reserveCapacity(Self.maxMarks)
        for index in 0..<old where index % 2 == 0 { thinned.append(marks[index]) }
        thinned.append(contentsOf: marks[old...])
        marks = thinned
    }

    /// Every length with a known CRC, the running one included.
    var knownMarks: [Mark] {
        guard isRunning, length > 0, marks.last?.length != length else { return marks }
        return marks + [Mark(length: length, crc: crc)]
    }

    /// The marks worth persisting: the newest half, and the rest spread over the older ones.
    var persisted: [Mark] {
        let all = knownMarks
        guard all.count > Self.persistedMarks else { return all }
        let recent = Self.persistedMarks / 2
        let older = all.dropLast(recent)
        let step = max(1, older.count / (Self.persistedMarks - recent))
        var kept = stride(from: 0, to: older.count, by: step).map { older[older.startIndex + $0] }
        kept = Array(kept.prefix(Self.persistedMarks - recent))
        return kept + all.suffix(recent)
    }

    /// The longest known length that is at most `size`.
    func longestMark(atMost size: Int64) -> Mark? {
        knownMarks.last { $0.length <= size }
    }

    /// The longest length any mark covers.
    var knownLength: Int64 { knownMarks.last?.length ?? 0 }
}

/// Hashing a file's first bytes, checking them against a trail's marks on the way.
enum PrefixHash {
    enum Outcome: Equatable {
        /// The bytes agree with every mark up to `length`; `crc` covers exactly `length` bytes,
        /// `probeCRC` the first `probe` bytes (when asked for and within `length`).
        case agrees(crc: UInt32, probeCRC: UInt32?)
        /// A mark disagrees: not the same bytes.
        case differs
        /// The file ended (or could not be read) before `length`.
        case short
    }

    static let chunkBytes = 1 << 20

    /// CRC of the first `length` bytes of `descriptor`, compared with each mark whose length is
    /// passed on the way (marks beyond `length` are not looked at), and the CRC at `probe`.
    static func hash(
        _ descriptor: Int32, length: Int64, checking marks: [ContentTrail.Mark] = [], probe: Int64? = nil
    ) -> Outcome {
        var crc: UInt32 = 0
        var probeCRC: UInt32? = probe == 0 ? 0 : nil
        var offset: Int64 = 0
        var pending = marks.filter { $0.length > 0 && $0.length <= length }.sorted { $0.length < $1.length }[...]
        var buffer = [UInt8](repeating: 0, count: Int(min(Int64(chunkBytes), max(length, 1))))
        while offset < length {
            // Stop exactly at the next mark (and at the probe) so their CRCs can be taken.
            var stop = min(length, pending.first?.length ?? length, offset + Int64(buffer.count))
            if let probe, probe > offset { stop = min(stop, probe) }
            let want = Int(stop - offset)
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, want, off_t(offset)) }
            guard count > 0 else { return .short }
            crc = buffer.withUnsafeBytes { Checksum.crc32(UnsafeRawBufferPointer(rebasing: $0[0..<count]), continuing: crc) }
            offset += Int64(count)
            if offset == probe { probeCRC = crc }
            while let mark = pending.first, mark.length == offset {
                if mark.crc != crc { return .differs }
                pending.removeFirst()
            }
        }
        return .agrees(crc: crc, probeCRC: probeCRC)
    }

    /// Whether two files hold the same first `length` bytes.
    static func samePrefix(_ first: Int32, _ second: Int32, length: Int64) -> Bool {
        var left = [UInt8](repeating: 0, count: 64 << 10)
        var right = left
        var offset: Int64 = 0
        while offset < length {
            let want = Int(min(Int64(left.count), length - offset))
            let a = left.withUnsafeMutableBytes { pread(first, $0.baseAddress, want, off_t(offset)) }
            let b = right.withUnsafeMutableBytes { pread(second, $0.baseAddress, want, off_t(offset)) }
            guard a == want, b == want, left[0..<want] == right[0..<want] else { return false }
            offset += Int64(want)
        }
        return true
    }
}

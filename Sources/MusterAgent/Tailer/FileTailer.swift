#if canImport(Glibc)
import Glibc
#endif
import MusterWire

/// One complete line read from a file, with where it came from.
public struct TailedLine: Sendable {
    public var identity: FileIdentity
    /// The file's generation: its identity, plus how often it was truncated in place.
    public var position: FilePosition.Generation
    /// Byte offset of the line's first byte.
    public var offset: Int64
    /// Byte offset just past its newline: where reading resumes once this line is acknowledged.
    public var endOffset: Int64
    public var time: Int64
    public var message: String
}

/// How a source's lines are timestamped.
public enum LineFormat: String, Sendable, Codable {
    /// Read time.
    case plain
    /// s6-log `current` files: a TAI64N label and a space start each line; the label becomes
    /// the record's time and is removed from the message.
    case s6
    /// s6 when the line starts with a label, plain otherwise.
    case auto
}

/// Follows the files matching a source's paths and globs and returns their new complete lines.
///
/// Files are tracked by `FileIdentity`, not by name: when a path starts naming a new file
/// (rotation), the old one is read to its end through the descriptor already open, then
/// closed, and the new one is read from its start. New files matching a glob are picked up
/// at the next scan.
public final class FileTailer {
    public let sourceID: String
    public let patterns: [String]
    public let format: LineFormat
    /// Longest line kept whole; a longer one is cut into pieces of this size.
    public let maxLineBytes: Int
    /// How long a file no pattern names any more is kept open after its last new byte.
    public let orphanGrace: Duration

    private struct Tracked {
        var path: String
        var descriptor: Int32
        var identity: FileIdentity
        var generation: FilePosition.Generation
        /// Next byte to read.
        var readOffset: Int64
        /// Bytes read past the last newline, waiting for the rest of their line.
        var partial: [UInt8] = []
        /// When no pattern named this file any more (renamed away or deleted). It is read to
        /// its end and closed once it has been quiet for `orphanGrace`: a writer may still
        /// hold it open for a moment after a rotation.
        var orphanedSince: ContinuousClock.Instant?
    }

    private var tracked: [FileIdentity: Tracked] = [:]
    private var readBuffer: [UInt8]
    /// Where to start in a file seen for the first time since the agent started.
    private let resumePosition: (FileIdentity) -> FilePosition?

    public init(
        sourceID: String, patterns: [String], format: LineFormat, maxLineBytes: Int = 256 << 10,
        readChunkBytes: Int = 256 << 10, orphanGrace: Duration = .seconds(5), resumePosition: @escaping (FileIdentity) -> FilePosition?
    ) {
        self.sourceID = sourceID
        self.patterns = patterns
        self.format = format
        self.maxLineBytes = maxLineBytes
        self.orphanGrace = orphanGrace
        self.readBuffer = [UInt8](repeating: 0, count: readChunkBytes)
        self.resumePosition = resumePosition
    }

    deinit {
        for file in tracked.values { close(file.descriptor) }
    }

    public var trackedPaths: [String] { tracked.values.map(\.path).sorted() }

    /// Looks for new files, rotated paths and files that went away.
    public func scan() {
        var seen = Set<FileIdentity>()
        for path in expand(patterns) {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            guard let identity = FileIdentity.of(descriptor: descriptor) else {
                close(descriptor)
                continue
            }
            seen.insert(identity)
            if var file = tracked[identity] {
                close(descriptor)
                file.path = path
                file.orphanedSince = nil
                checkTruncation(&file)
                tracked[identity] = file
                continue
            }
            let start = resumePosition(identity) ?? FilePosition(identity: identity, truncations: 0, offset: 0)
            var file = Tracked(
                path: path, descriptor: descriptor, identity: identity,
                generation: .init(identity: identity, truncations: start.truncations), readOffset: start.offset)
            checkTruncation(&file)
            tracked[identity] = file
        }
        for identity in tracked.keys where !seen.contains(identity) && tracked[identity]!.orphanedSince == nil {
            tracked[identity]!.orphanedSince = .now
        }
    }

    /// Reads up to `budget` bytes of new data across the tracked files and returns the
    /// complete lines in it, in file order for each file.
    public func read(budget: Int, into sink: (TailedLine) -> Void) -> Int {
        var total = 0
        for identity in tracked.keys.sorted(by: { tracked[$0]!.path < tracked[$1]!.path }) {
            guard total < budget else { break }
            total += readFile(identity, budget: budget - total, sink: sink)
        }
        return total
    }

    /// A file shorter than what was already read was truncated in place (copytruncate or
    /// `: > file`): read it again from the start under a new generation, so its new lines are
    /// not mistaken for the old ones already stored at the same offsets.
    private func checkTruncation(_ file: inout Tracked) {
        var info = stat()
        guard fstat(file.descriptor, &info) == 0, Int64(info.st_size) < file.readOffset else { return }
        file.generation = .init(identity: file.identity, truncations: file.generation.truncations + 1)
        file.readOffset = 0
        file.partial.removeAll()
    }

    private func readFile(_ identity: FileIdentity, budget: Int, sink: (TailedLine) -> Void) -> Int {
        guard var file = tracked[identity] else { return 0 }
        let want = min(budget, readBuffer.count)
        let count = readBuffer.withUnsafeMutableBytes {
            pread(file.descriptor, $0.baseAddress, want, off_t(file.readOffset))
        }
        guard count > 0 else {
            if let since = file.orphanedSince, ContinuousClock.now - since >= orphanGrace {
                // Renamed away or deleted, read to its end, and quiet: let it go.
                close(file.descriptor)
                tracked[identity] = nil
            }
            return 0
        }
        if file.orphanedSince != nil { file.orphanedSince = .now }
        let now = Timestamp.now()
        let chunkBase = file.readOffset
        file.readOffset += Int64(count)
        readBuffer.withUnsafeBufferPointer { buffer in
            let chunk = UnsafeBufferPointer(rebasing: buffer[0..<count])
            var cursor = 0
            while cursor < count {
                guard let newline = chunk[cursor...].firstIndex(of: UInt8(ascii: "\n")) else {
                    file.partial.append(contentsOf: chunk[cursor...])
                    break
                }
                let end = chunkBase + Int64(newline) + 1
                if file.partial.isEmpty {
                    emit(UnsafeBufferPointer(rebasing: chunk[cursor..<newline]), offset: chunkBase + Int64(cursor),
                         end: end, generation: file.generation, time: now, sink: sink)
                } else {
                    file.partial.append(contentsOf: chunk[cursor..<newline])
                    let offset = end - Int64(file.partial.count) - 1
                    file.partial.withUnsafeBufferPointer {
                        emit($0, offset: offset, end: end, generation: file.generation, time: now, sink: sink)
                    }
                    file.partial.removeAll(keepingCapacity: true)
                }
                cursor = newline + 1
            }
        }
        // A line longer than the limit is shipped in pieces rather than held without bound.
        while file.partial.count >= maxLineBytes {
            let offset = file.readOffset - Int64(file.partial.count)
            file.partial.withUnsafeBufferPointer {
                emit(UnsafeBufferPointer(rebasing: $0[0..<maxLineBytes]), offset: offset,
                     end: offset + Int64(maxLineBytes), generation: file.generation, time: now, sink: sink)
            }
            file.partial.removeFirst(maxLineBytes)
        }
        tracked[identity] = file
        return count
    }

    /// Turns one line's bytes into records: strips a trailing CR, decodes an s6 label into the
    /// time, and cuts a line longer than `maxLineBytes` into pieces, each with its own offset.
    private func emit(
        _ line: UnsafeBufferPointer<UInt8>, offset: Int64, end: Int64, generation: FilePosition.Generation,
        time: Int64, sink: (TailedLine) -> Void
    ) {
        var body = line
        if let last = body.last, last == UInt8(ascii: "\r") { body = UnsafeBufferPointer(rebasing: body.dropLast()) }
        var lineTime = time
        var pieceOffset = offset
        if format != .plain, let labelled = TAI64N.decode(body) {
            lineTime = labelled
            body = UnsafeBufferPointer(rebasing: body[(body.startIndex + TAI64N.labelLength + 1)...])
        }
        while body.count > maxLineBytes {
            let piece = UnsafeBufferPointer(rebasing: body[body.startIndex..<body.startIndex + maxLineBytes])
            let pieceEnd = offset + Int64(piece.baseAddress! - line.baseAddress!) + Int64(maxLineBytes)
            sink(TailedLine(
                identity: generation.identity, position: generation, offset: pieceOffset, endOffset: pieceEnd,
                time: lineTime, message: String(decoding: piece, as: UTF8.self)))
            pieceOffset = pieceEnd
            body = UnsafeBufferPointer(rebasing: body[(body.startIndex + maxLineBytes)...])
        }
        sink(TailedLine(
            identity: generation.identity, position: generation, offset: pieceOffset, endOffset: end, time: lineTime,
            message: String(decoding: body, as: UTF8.self)))
    }

    private func expand(_ patterns: [String]) -> [String] {
        var paths: [String] = []
        for pattern in patterns {
            var result = glob_t()
            defer { globfree(&result) }
            guard glob(pattern, 0, nil, &result) == 0 else { continue }
            for index in 0..<Int(result.gl_pathc) {
                if let path = result.gl_pathv[index] { paths.append(String(cString: path)) }
            }
        }
        return paths
    }
}

import MusterWire

/// Turns the lines of container runtime log files (`parse: docker-json` or `parse: cri`) into
/// records: each entry's text becomes a record's message, with `stream`, `time` (the runtime's,
/// as written), `attrs` (Docker's, when present) and `container_id` (Docker's file layout) as
/// fields, and the runtime's time as the record's time.
///
/// **Joining.** A partial entry is held until its stream's next complete entry, and the texts
/// joined make one record. The two streams of a file interleave, so each (file generation,
/// stream) holds its own partial message. The record's origin is its first entry's offset; it
/// resumes after its last entry.
///
/// **Positions.** Reading again from any position a record reports makes the same records of
/// what follows: no record resumes past an entry still held, nor inside a message of several
/// entries. While a partial message is held, every record of that generation resumes at the
/// held message's first entry at the latest, and at the first entry of any message that
/// completed meanwhile (its entries interleaved with the held one's). Reading again after a
/// crash then sends the held entries again and, with them, records already sent, which the
/// collector drops by their origin. Once nothing is held, records resume after their line.
///
/// **Bounds.** A held message reaching `maxMessageBytes` is sent as a piece (field
/// `line_part`, as the tailer marks the pieces of an overlong line: `1`, `2`, … and `n/n` on
/// the last), cut at a character boundary; a piece starting inside an entry has that entry's
/// offset plus its position in the entry's text as its origin, which stays within the entry's
/// line and so is unique. A partial message whose stream has had no entry for
/// `partialTimeout` (its container stopped) is sent as it is. Memory held is thus at most
/// `maxMessageBytes` per stream of each file read.
///
/// A line that is no entry of the format is stored as it is, read time, no fields, and counted.
public struct ContainerLogJoiner {
    /// How long a partial message waits for its next entry once its file is read to the end.
    public static let partialTimeout = Duration.seconds(5)

    public let format: LineParser
    /// Longest message text of one record, in bytes (the source's `max_line_bytes`).
    public let maxMessageBytes: Int

    /// Lines that were no entry of the format, since the last `takeCounts()`.
    private var undecodable = 0
    /// Entries without a readable time, since the last `takeCounts()`.
    private var unreadableTimes = 0
    /// Held partial messages by generation; a generation is here only while it holds one.
    private var held: [FilePosition.Generation: HeldGeneration] = [:]
    /// The last path seen and its container id: lines come in runs per file.
    private var lastContainerID: (path: String, id: String?) = ("", nil)

    /// The partial messages of one file generation.
    private struct HeldGeneration {
        var byStream: [String: HeldMessage] = [:]
        /// Just past the last line taken in from the generation.
        var readEnd: Int64
        /// The first entry of the earliest message completed while another was held: reading
        /// again from a later position would take its last entries for a message of their own.
        var completedFloor = Int64.max

        /// Where a record of the generation resumes at the latest: once nothing is held, every
        /// message read is complete and none goes on past `readEnd`.
        var resumeLimit: Int64 {
            byStream.isEmpty ? readEnd : byStream.values.reduce(min(readEnd, completedFloor)) { min($0, $1.firstEntryOffset) }
        }
    }

    /// A message whose last entry has not come yet.
    private struct HeldMessage {
        /// The joined text so far; at most `maxMessageBytes` between calls.
        var bytes: [UInt8] = []
        /// Origin offset of the record `bytes` becomes.
        var origin: Int64
        /// Offset of the message's first entry (also once pieces of it were sent): reading
        /// again from there makes the same records, pieces included.
        var firstEntryOffset: Int64
        /// The message's first entry, whose time and fields the record has.
        var first: ContainerLogEntry
        var readTime: Int64
        var path: String
        /// Pieces of this message already sent.
        var piecesSent = 0
        var lastEntryAt: ContinuousClock.Instant
    }

    /// `format`: `.dockerJSON` or `.cri`. `maxMessageBytes` of at least 4 (one character).
    public init(format: LineParser, maxMessageBytes: Int) {
        precondition(format.joinsEntries && maxMessageBytes >= 4, "a joiner of \(format.rawValue) entries up to \(maxMessageBytes) bytes")
        self.format = format
        self.maxMessageBytes = maxMessageBytes
    }

    /// Whether a partial message is held.
    public var holdsPartialMessages: Bool { !held.isEmpty }

    /// Takes in the next line of a file (the lines of one generation in file order) and hands
    /// over the records it completes.
    public mutating func add(_ line: TailedLine, now: ContinuousClock.Instant, sink: (SourceRecord) -> Void) {
        let decoded: ContainerLogEntry? = switch format {
        case .dockerJSON: ContainerLogEntry(dockerJSON: line.message)
        case .cri: ContainerLogEntry(cri: line.message)
        case .haproxyHTTPLog, .json: nil
        }
        guard let entry = decoded else {
            undecodable += 1
            sink(passing(SourceRecord(line), of: line.position))
            return
        }
        if entry.time == nil { unreadableTimes += 1 }
        let generation = line.position
        if entry.complete, held.isEmpty || held[generation] == nil, entry.text.utf8.count <= maxMessageBytes {
            // The common case: a whole message in one entry, nothing held before it.
            let message = HeldMessage(
                origin: line.offset, firstEntryOffset: line.offset, first: entry, readTime: line.time, path: line.path, lastEntryAt: now)
            sink(record(entry.text, of: message, generation: generation, piece: nil, resume: line.endOffset))
            return
        }
        var state = held.removeValue(forKey: generation) ?? HeldGeneration(readEnd: line.endOffset)
        state.readEnd = line.endOffset
        var message = state.byStream.removeValue(forKey: entry.stream)
            ?? HeldMessage(
                origin: line.offset, firstEntryOffset: line.offset, first: entry, readTime: line.time, path: line.path, lastEntryAt: now)
        message.lastEntryAt = now
        // Where this entry's text starts in `bytes`. Between calls `bytes` is at most the
        // limit, so each cut below falls within this entry's text, at a character boundary.
        var entryStart = message.bytes.count
        message.bytes.append(contentsOf: entry.text.utf8)
        while message.bytes.count > maxMessageBytes {
            let cut = Self.characterBoundary(in: message.bytes, atMost: maxMessageBytes, notBefore: entryStart)
            message.piecesSent += 1
            sink(record(
                String(decoding: message.bytes[..<cut], as: UTF8.self), of: message, generation: generation,
                piece: .part(index: message.piecesSent, last: false), resume: min(state.resumeLimit, message.firstEntryOffset)))
            // The rest starts inside this entry (the loop only cuts while more than the limit is left).
            message.bytes.removeFirst(cut)
            entryStart -= cut
            message.origin = line.offset + Int64(-entryStart)
        }
        if entry.complete {
            finish(message, generation: generation, in: &state, sink: sink)
        } else {
            state.byStream[entry.stream] = message
        }
        if !state.byStream.isEmpty { held[generation] = state }
    }

    /// Sends the partial messages that have waited `partialTimeout` for their next entry as
    /// they are. Call it only once the files were read to their end: entries already written
    /// belong to their message whatever the clock says.
    public mutating func flushWaiting(now: ContinuousClock.Instant, sink: (SourceRecord) -> Void) {
        for generation in Array(held.keys) {
            guard var state = held.removeValue(forKey: generation) else { continue }
            for (stream, message) in state.byStream.sorted(by: { $0.value.origin < $1.value.origin })
            where now - message.lastEntryAt >= Self.partialTimeout {
                state.byStream[stream] = nil
                finish(message, generation: generation, in: &state, sink: sink)
            }
            if !state.byStream.isEmpty { held[generation] = state }
        }
    }

    /// `record`, a line of `generation` that is not an entry (or a piece of an overlong line),
    /// resuming no later than any partial message held in the generation.
    public mutating func passing(_ record: SourceRecord, of generation: FilePosition.Generation) -> SourceRecord {
        guard !held.isEmpty, var state = held[generation], let resume = record.resume else { return record }
        state.readEnd = resume.offset
        held[generation] = state
        var record = record
        record.resume = ResumePoint(generation: generation, offset: state.resumeLimit)
        return record
    }

    /// The counts since the last call: lines that were no entry, entries without a readable time.
    public mutating func takeCounts() -> (undecodable: Int, unreadableTimes: Int) {
        defer {
            undecodable = 0
            unreadableTimes = 0
        }
        return (undecodable, unreadableTimes)
    }

    // MARK: Records

    /// Sends the message's record: its last piece when pieces went before it.
    private mutating func finish(
        _ message: HeldMessage, generation: FilePosition.Generation, in state: inout HeldGeneration, sink: (SourceRecord) -> Void
    ) {
        if !state.byStream.isEmpty { state.completedFloor = min(state.completedFloor, message.firstEntryOffset) }
        var text = message.bytes[...]
        if text.last == UInt8(ascii: "\r") { text.removeLast() }
        let piece: LinePiece? = message.piecesSent > 0 ? .part(index: message.piecesSent + 1, last: true) : nil
        sink(record(
            String(decoding: text, as: UTF8.self), of: message, generation: generation, piece: piece, resume: state.resumeLimit))
    }

    private mutating func record(
        _ text: String, of message: HeldMessage, generation: FilePosition.Generation, piece: LinePiece?, resume: Int64
    ) -> SourceRecord {
        var fields: [String: FieldValue] = ["stream": .string(message.first.stream)]
        if let time = message.first.timeText { fields["time"] = .string(time) }
        if let attrs = message.first.attrs { fields["attrs"] = .string(attrs) }
        if let id = containerID(of: message.path) { fields["container_id"] = .string(id) }
        if let piece { fields[piece.field.key] = .string(piece.field.value) }
        return SourceRecord(
            time: message.first.time ?? message.readTime, generation: generation.name, offset: message.origin,
            message: text, fields: fields,
            resume: ResumePoint(generation: generation, offset: resume))
    }

    /// The container id in the path of a Docker json-file log,
    /// `…/containers/<id>/<id>-json.log` (or a rotated `<id>-json.log.N`); nil for other paths.
    private mutating func containerID(of path: String) -> String? {
        guard format == .dockerJSON else { return nil }
        if path == lastContainerID.path { return lastContainerID.id }
        let parts = path.split(separator: "/")
        var id: String?
        if parts.count >= 3, parts[parts.count - 3] == "containers" {
            let directory = parts[parts.count - 2]
            let file = parts[parts.count - 1]
            if file.hasPrefix(directory + "-json.log") {
                let rest = file.dropFirst(directory.count + "-json.log".count)
                if rest.isEmpty || (rest.first == "." && rest.dropFirst().allSatisfy(\.isNumber)) { id = String(directory) }
            }
        }
        lastContainerID = (path, id)
        return id
    }

    /// The largest index at most `limit` that starts a character of `bytes`, and not before
    /// `start` (a character start itself).
    static func characterBoundary(in bytes: [UInt8], atMost limit: Int, notBefore start: Int) -> Int {
        var cut = limit
        while cut > start, cut < bytes.count, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        // Never an empty piece, even of bytes that are no UTF-8.
        return cut > 0 ? cut : limit
    }
}

extension TailedLine {
    /// A line as the tailer hands it over (for the fuzz targets, which build lines of their own).
    public init(
        generation: FilePosition.Generation, offset: Int64, endOffset: Int64, time: Int64, message: String, path: String,
        piece: LinePiece? = nil
    ) {
        self.init(
            identity: generation.identity, position: generation, offset: offset, endOffset: endOffset, time: time,
            message: message, path: path, piece: piece)
    }
}

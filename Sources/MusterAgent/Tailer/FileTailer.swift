#if canImport(Glibc)
import Glibc
#endif
import Logging
import MusterWire

/// One complete line read from a file, with where it came from.
public struct TailedLine: Sendable {
    /// The identity the generation belongs to (for a copy: the original's), which keys its checkpoint.
    public var identity: FileIdentity
    /// The file's generation: its identity, plus how often it was truncated in place.
    public var position: FilePosition.Generation
    /// Byte offset of the line's first byte.
    public var offset: Int64
    /// Byte offset just past its newline: where reading resumes once this line is spooled.
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
/// Files are tracked by device and inode, not by name: when a path starts naming a new file
/// (rotation), the old one is read to its end through the descriptor already open, then
/// closed, and the new one is read from its start. New files matching a glob are picked up
/// at the next scan. A file truncated in place starts a new generation. A new file whose
/// bytes are those of a generation already read (a copytruncate copy) continues that
/// generation: see `TailedStream`. Not thread-safe: one task scans and reads.
public final class FileTailer {
    public let sourceID: String
    public let patterns: [String]
    public let format: LineFormat
    /// Longest line kept whole; a longer one is cut into pieces of this size.
    public let maxLineBytes: Int
    /// How long a file no pattern names any more is kept open after its last new byte.
    public let orphanGrace: Duration
    /// How long such a file is kept open at most, even while something still writes to it
    /// (a writer that never reopens its deleted log would otherwise pin it forever).
    public let orphanMaxOpen: Duration
    /// How long a new file that may be a copy of a generation read before, but cannot be told
    /// yet (too few of its bytes to compare), waits before being read as a file of its own.
    public let copyDecisionDelay: Duration
    /// Generations no open file carries that are remembered, newest first, for copies that
    /// show up after their original was truncated or closed.
    public static let maxRetiredGenerations = 64

    /// Copies recognised as continuing a generation (since start).
    public internal(set) var copiesRecognised = 0
    /// Orphans closed by `orphanMaxOpen` while possibly still written to (since start).
    public internal(set) var orphansClosedAtLimit = 0

    var files: [InodeKey: OpenFile] = [:]
    var streams: [FilePosition.Generation: TailedStream] = [:]
    /// New files waiting for a copy decision, and since when.
    var undecided: [FileIdentity: Undecided] = [:]
    let joiner: MultilineJoiner?
    let statePath: String?
    var stateDirty = false
    var lastStateSave = ContinuousClock.now
    var lastSaved: TailerState?
    static let stateSaveInterval = Duration.seconds(1)
    let logger: Logger?
    var archives: S6Archives
    /// s6-log archives not to open again: rotated before their directory was followed, or
    /// read to their end (s6-log never writes to an archive). By inode and name: s6-log
    /// deletes old archives, and an inode freed that way can come back as a new one.
    var doneArchives: [InodeKey: String] = [:]
    private var readBuffer: [UInt8]
    /// The path the last read with data ended at: the next read starts after it, so a file
    /// that always has data cannot keep the others of its source waiting.
    private var readCursor: String?
    /// Where to start in a file seen for the first time since the agent started.
    let resumePosition: (FileIdentity) -> FilePosition?

    /// - Parameters:
    ///   - multiline: joins lines into records; nil (the default) costs nothing per line.
    ///   - statePath: where the tailer keeps what it needs to recognise a copy after a restart
    ///     (see `TailerState`); nil keeps it in memory only.
    public init(
        sourceID: String, patterns: [String], format: LineFormat, maxLineBytes: Int = 256 << 10,
        readChunkBytes: Int = 256 << 10, orphanGrace: Duration = .seconds(5), orphanMaxOpen: Duration = .seconds(60),
        multiline: MultilineSettings? = nil, statePath: String? = nil, copyDecisionDelay: Duration = .seconds(3),
        logger: Logger? = nil, resumePosition: @escaping (FileIdentity) -> FilePosition?
    ) {
        self.sourceID = sourceID
        self.patterns = patterns
        self.format = format
        self.maxLineBytes = maxLineBytes
        self.orphanGrace = orphanGrace
        self.orphanMaxOpen = orphanMaxOpen
        self.copyDecisionDelay = copyDecisionDelay
        self.readBuffer = [UInt8](repeating: 0, count: readChunkBytes)
        self.resumePosition = resumePosition
        self.statePath = statePath
        self.logger = logger
        self.archives = S6Archives(for: patterns)
        var joiner: MultilineJoiner?
        if let multiline {
            do {
                joiner = try MultilineJoiner(multiline)
            } catch {
                // Config validation compiles the pattern first, so this is not reached in the agent.
                logger?.error("source '\(sourceID)': multiline disabled: \(error)")
            }
        }
        self.joiner = joiner
        if let statePath { restoreState(from: statePath) }
    }

    /// A tailer for a configured file source, keeping its state under `stateDirectory`.
    public convenience init(
        source: AgentConfig.FileSourceConfig, stateDirectory: String, logger: Logger,
        resumePosition: @escaping (FileIdentity) -> FilePosition?
    ) {
        self.init(
            sourceID: source.id, patterns: source.paths, format: source.format,
            orphanMaxOpen: .milliseconds(source.maxOrphanOpenMilliseconds), multiline: source.multiline,
            statePath: TailerState.path(directory: stateDirectory, sourceID: source.id), logger: logger,
            resumePosition: resumePosition)
    }

    deinit {
        saveState(force: true)
        for file in files.values { close(file.descriptor) }
    }

    public var trackedPaths: [String] { files.values.map(\.path).sorted() }

    /// Files open although no pattern names them any more (renamed away or deleted).
    public var orphanedOpen: Int { files.values.reduce(0) { $0 + ($1.orphanedAt == nil ? 0 : 1) } }

    /// Bytes not read yet, by path, for the files open (size − read offset).
    public var lagBytes: [String: Int64] {
        var lag: [String: Int64] = [:]
        for file in files.values {
            var info = stat()
            guard fstat(file.descriptor, &info) == 0 else { continue }
            let read = file.generation.flatMap { streams[$0]?.readOffset } ?? 0
            lag[file.path] = max(0, Int64(info.st_size) - read)
        }
        return lag
    }

    // MARK: Scanning

    /// Looks for new files, rotated paths, truncations and files that went away.
    public func scan() {
        let now = ContinuousClock.now
        var seen = Set<InodeKey>()
        var fresh: [String] = []
        let paths = expand(patterns)
        if !archives.patterns.isEmpty {
            let wallClock = Timestamp.now()
            for path in paths where S6Archives.isCurrent(path) { archives.follow(path, now: wallClock) }
        }
        for path in paths + wantedArchives() {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            let key = InodeKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            guard seen.insert(key).inserted else { continue }
            if files[key] != nil {
                files[key]!.path = path
                if files[key]!.orphanedAt != nil {
                    files[key]!.orphanedAt = nil
                    files[key]!.closeAt = nil
                }
                checkOriginal(key)
            } else {
                fresh.append(path)
            }
        }
        for key in files.keys where !seen.contains(key) && files[key]!.orphanedAt == nil {
            files[key]!.orphanedAt = now
            files[key]!.lastDataAt = now
        }
        // Known files first (above): a truncation they show is seen before a copy is judged.
        for path in fresh { attach(path, now: now) }
        for key in files.compactMap({ $0.value.identity == nil ? $0.key : nil }) { identify(key) }
        undecided = undecided.filter { now - $0.value.since < copyDecisionDelay * 10 }
        forgetOldGenerations()
        saveState(force: false)
    }

    /// The s6-log archives to read next to the `current` files followed (see `S6Archives`).
    private func wantedArchives() -> [String] {
        guard !archives.patterns.isEmpty else { return [] }
        let wallClock = Timestamp.now()
        var wanted: [String] = []
        var done: [InodeKey: String] = [:]
        for path in expand(archives.patterns) {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            let key = InodeKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            if files[key] != nil {
                wanted.append(path)
            } else if doneArchives[key] == path {
                done[key] = path
            } else if archives.isNew(path, now: wallClock) || unfinishedPerCheckpoint(path) {
                wanted.append(path)
            } else {
                done[key] = path
            }
        }
        // Only the archives still there are remembered.
        doneArchives = done
        return wanted
    }

    /// Whether the checkpoint has the file at `path` and it has bytes past that position.
    private func unfinishedPerCheckpoint(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard let probe = FileIdentity.probe(descriptor: descriptor), let identity = probe.identity,
            let position = resumePosition(identity)
        else { return false }
        return position.offset < probe.size
    }

    // MARK: Reading

    /// Reads up to `budget` bytes of new data across the tracked files and returns the
    /// complete lines in it (joined into records when multiline is on), in file order for each file.
    public func read(budget: Int, into sink: (TailedLine) -> Void) -> Int {
        let now = ContinuousClock.now
        for key in files.compactMap({ $0.value.identity == nil ? $0.key : nil }) { identify(key) }
        let order = streams.values.filter { !$0.carriers.isEmpty }
            .map { ($0.generation, files[$0.carriers[0]]?.path ?? "") }
            .sorted { $0.1 < $1.1 }
        let start = readCursor.flatMap { cursor in order.firstIndex { $0.1 > cursor } } ?? 0
        var total = 0
        // Only kept with multiline on: the generations that may have more to read.
        var notAtEnd: Set<FilePosition.Generation>? = joiner == nil ? nil : []
        for step in order.indices {
            let (generation, path) = order[(start + step) % order.count]
            guard total < budget else {
                notAtEnd?.insert(generation)
                continue
            }
            let count = readStream(generation, budget: budget - total, now: now, sink: sink)
            if count > 0 {
                notAtEnd?.insert(generation)
                readCursor = path
            }
            total += count
        }
        // A record waiting for continuation lines is closed by its timeout only once its file
        // was read to the end: lines already written belong to it whatever the clock says.
        if let joiner, let notAtEnd { flushExpired(joiner, now: now, except: notAtEnd, sink: sink) }
        return total
    }

    private func readStream(
        _ generation: FilePosition.Generation, budget: Int, now: ContinuousClock.Instant, sink: (TailedLine) -> Void
    ) -> Int {
        // Taken out of the dictionary so its buffers are mutated in place, not copied.
        guard var stream = streams.removeValue(forKey: generation) else { return 0 }
        var truncated: [(InodeKey, FileIdentity?)] = []
        var finished: [(key: InodeKey, atLimit: Bool)] = []
        var count = 0
        for key in stream.carriers {
            guard var file = files[key] else { continue }
            if let orphanedAt = file.orphanedAt, file.closeAt == nil, now - orphanedAt >= orphanMaxOpen {
                // The hard limit: whatever is in it now is read, then it is closed.
                var info = stat()
                file.closeAt = fstat(file.descriptor, &info) == 0 ? Int64(info.st_size) : stream.readOffset
                files[key] = file
            }
            var want = min(budget, readBuffer.count)
            if let closeAt = file.closeAt { want = Int(max(0, min(Int64(want), closeAt - stream.readOffset))) }
            let got = want == 0 ? 0 : readBuffer.withUnsafeMutableBytes {
                pread(file.descriptor, $0.baseAddress, want, off_t(stream.readOffset))
            }
            if got > 0 {
                if file.isOriginal, let probe = FileIdentity.probe(descriptor: file.descriptor),
                    probe.identity?.fingerprint != file.identity?.fingerprint
                {
                    // Truncated and written again since the last look: these bytes are not this generation's.
                    truncated.append((key, probe.identity))
                    continue
                }
                file.lastDataAt = now
                files[key] = file
                consume(count: got, into: &stream, now: now, sink: sink)
                count = got
                break
            }
            if file.isOriginal, let probe = FileIdentity.probe(descriptor: file.descriptor),
                probe.size < stream.readOffset || probe.identity?.fingerprint != file.identity?.fingerprint
            {
                truncated.append((key, probe.identity))
                continue
            }
            if let closeAt = file.closeAt, stream.readOffset >= closeAt {
                finished.append((key, true))
            } else if file.orphanedAt != nil, now - file.lastDataAt >= orphanGrace {
                // Renamed away or deleted, read to its end, and quiet: let it go.
                finished.append((key, false))
            } else if !archives.patterns.isEmpty, S6Archives.isArchive(file.path), now - file.lastDataAt >= orphanGrace {
                // An s6-log archive read to its end is complete: no need to hold it open.
                doneArchives[key] = file.path
                finished.append((key, false))
            }
        }
        if count > 0 { stream.lastActive = now }
        let gone = Set(truncated.map(\.0) + finished.map(\.key))
        stream.carriers.removeAll { gone.contains($0) }
        if stream.carriers.isEmpty {
            stream.lastActive = now
            // Closed for good (not truncated): nothing can follow a pending record any more.
            if truncated.isEmpty, let pending = stream.pending {
                sink(record(pending, of: stream.generation))
                stream.pending = nil
            }
        }
        streams[generation] = stream
        for (key, atLimit) in finished {
            guard let file = files.removeValue(forKey: key) else { continue }
            close(file.descriptor)
            if atLimit {
                orphansClosedAtLimit += 1
                logger?.warning(
                    "closed a renamed or deleted file still open after the limit; anything written to it later is not read",
                    metadata: ["source": "\(sourceID)", "path": "\(file.path)", "limit": "\(orphanMaxOpen)"])
            }
            stateDirty = true
        }
        for (key, identity) in truncated { truncatedInPlace(key, newIdentity: identity, retiring: generation) }
        return count
    }

    /// Splits the `count` bytes just read into lines and hands them on.
    private func consume(count: Int, into stream: inout TailedStream, now: ContinuousClock.Instant, sink: (TailedLine) -> Void) {
        let time = Timestamp.now()
        let chunkBase = stream.readOffset
        stream.readOffset += Int64(count)
        stateDirty = true
        readBuffer.withUnsafeBufferPointer { buffer in
            let chunk = UnsafeBufferPointer(rebasing: buffer[0..<count])
            stream.trail.absorb(UnsafeRawBufferPointer(chunk))
            stream.trail.mark()
            var cursor = 0
            while cursor < count {
                guard let newline = chunk[cursor...].firstIndex(of: UInt8(ascii: "\n")) else {
                    stream.partial.append(contentsOf: chunk[cursor...])
                    break
                }
                let end = chunkBase + Int64(newline) + 1
                if stream.partial.isEmpty {
                    emit(UnsafeBufferPointer(rebasing: chunk[cursor..<newline]), offset: chunkBase + Int64(cursor),
                         end: end, time: time, continuation: false, now: now, stream: &stream, sink: sink)
                } else {
                    stream.partial.append(contentsOf: chunk[cursor..<newline])
                    let offset = end - Int64(stream.partial.count) - 1
                    // Moved out: `emit` takes the whole stream inout.
                    var line = stream.partial
                    stream.partial = []
                    let continuation = stream.partialContinues
                    stream.partialContinues = false
                    line.withUnsafeBufferPointer {
                        emit($0, offset: offset, end: end, time: time, continuation: continuation, now: now, stream: &stream, sink: sink)
                    }
                    line.removeAll(keepingCapacity: true)
                    stream.partial = line
                }
                cursor = newline + 1
            }
        }
        // A line longer than the limit is shipped in pieces rather than held without bound.
        while stream.partial.count >= maxLineBytes {
            let offset = stream.readOffset - Int64(stream.partial.count)
            let piece = Array(stream.partial[0..<maxLineBytes])
            stream.partial.removeFirst(maxLineBytes)
            let continuation = stream.partialContinues
            stream.partialContinues = true
            piece.withUnsafeBufferPointer {
                emit($0, offset: offset, end: offset + Int64(maxLineBytes), time: time, continuation: continuation, now: now,
                     stream: &stream, sink: sink)
            }
        }
    }

    /// Turns one line's bytes into records: strips a trailing CR, decodes an s6 label into the
    /// time, and cuts a line longer than `maxLineBytes` into pieces, each with its own offset.
    /// `continuation`: the rest of a line whose first pieces were already cut off (no label,
    /// never the start of a multiline record).
    private func emit(
        _ line: UnsafeBufferPointer<UInt8>, offset: Int64, end: Int64, time: Int64, continuation: Bool,
        now: ContinuousClock.Instant, stream: inout TailedStream, sink: (TailedLine) -> Void
    ) {
        var body = line
        if let last = body.last, last == UInt8(ascii: "\r") { body = UnsafeBufferPointer(rebasing: body.dropLast()) }
        let bodyEnd = offset + Int64(body.count)
        var lineTime = time
        var pieceOffset = offset
        var continuation = continuation
        if format != .plain, !continuation, let labelled = TAI64N.decode(body) {
            lineTime = labelled
            body = UnsafeBufferPointer(rebasing: body[(body.startIndex + TAI64N.labelLength + 1)...])
        }
        // Cut every `maxLineBytes` of the file's bytes, label included, exactly where `consume`
        // cuts a line that arrives over several reads: the pieces' offsets are their origin
        // coordinates, so they must not depend on how the reads fell.
        while bodyEnd - pieceOffset > Int64(maxLineBytes) {
            let pieceEnd = pieceOffset + Int64(maxLineBytes)
            let take = body.count - Int(bodyEnd - pieceEnd)
            deliver(UnsafeBufferPointer(rebasing: body[0..<take]), offset: pieceOffset, end: pieceEnd,
                    time: lineTime, continuation: continuation, now: now, stream: &stream, sink: sink)
            continuation = true
            pieceOffset = pieceEnd
            body = UnsafeBufferPointer(rebasing: body[take...])
        }
        deliver(body, offset: pieceOffset, end: end, time: lineTime, continuation: continuation, now: now, stream: &stream, sink: sink)
    }

    private func deliver(
        _ body: UnsafeBufferPointer<UInt8>, offset: Int64, end: Int64, time: Int64, continuation: Bool,
        now: ContinuousClock.Instant, stream: inout TailedStream, sink: (TailedLine) -> Void
    ) {
        guard let joiner else {
            sink(TailedLine(
                identity: stream.generation.identity, position: stream.generation, offset: offset, endOffset: end, time: time,
                message: String(decoding: body, as: UTF8.self)))
            return
        }
        let generation = stream.generation
        joiner.add(body, offset: offset, end: end, time: time, continuation: continuation, now: now, pending: &stream.pending) {
            sink(record($0, of: generation))
        }
    }

    private func record(_ pending: PendingRecord, of generation: FilePosition.Generation) -> TailedLine {
        TailedLine(
            identity: generation.identity, position: generation, offset: pending.offset, endOffset: pending.end,
            time: pending.time, message: String(decoding: pending.bytes, as: UTF8.self))
    }

    /// Sends the multiline records whose file has been quiet for the timeout.
    private func flushExpired(
        _ joiner: MultilineJoiner, now: ContinuousClock.Instant, except busy: Set<FilePosition.Generation>,
        sink: (TailedLine) -> Void
    ) {
        let expired = streams.compactMap {
            !busy.contains($0.key) && $0.value.pending.map { joiner.expired($0, now: now) } == true ? $0.key : nil
        }
        for generation in expired {
            guard let pending = streams[generation]?.pending else { continue }
            streams[generation]!.pending = nil
            sink(record(pending, of: generation))
        }
    }

    func expand(_ patterns: [String]) -> [String] {
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

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
    /// The path the file had when the line was read.
    public var path = ""
    /// Set on the pieces of a line longer than the source's `max_line_bytes`, nil otherwise.
    public var piece: LinePiece? = nil
}

/// Which piece of an overlong line a record is.
public enum LinePiece: Sendable, Equatable {
    /// Piece `index` (from 1) of a line cut into pieces; `last` on its final piece, which tells
    /// how many there were.
    case part(index: Int, last: Bool)
    /// The start of a line cut at the limit; the rest of the line was skipped.
    case truncated(lineBytes: Int64)

    /// The field it adds to the record: `line_part` (`2`, or `3/3` on the last piece) or
    /// `truncated` (the line's full length in bytes).
    public var field: (key: String, value: String) {
        switch self {
        case .part(let index, let last): ("line_part", last ? "\(index)/\(index)" : "\(index)")
        case .truncated(let lineBytes): ("truncated", "\(lineBytes)")
        }
    }
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

/// How a tailer learns about changes, and how many files it keeps open (`files:` in the
/// agent's configuration).
public struct TailingSettings: Sendable, Equatable {
    public enum Watch: String, Sendable, Codable {
        /// inotify where the system has it, polling where not.
        case auto
        /// Polling only (filesystems whose changes inotify does not see, like NFS written
        /// from another machine).
        case poll
    }

    public var watch: Watch = .auto
    /// How often the patterns are expanded and every file looked at, when polling.
    public var pollInterval: Duration = .seconds(1)
    /// With inotify, a full look all the same this often: for what events cannot tell (a
    /// directory the patterns reach below the watched ones).
    public var rescanInterval: Duration = .seconds(10)
    /// A file read to its end and quiet this long is closed until it changes.
    public var closeIdleAfter: Duration = .seconds(60)

    public init() {}
}

/// Follows the files matching a source's paths and globs and returns their new complete lines.
///
/// Files are tracked by device and inode, not by name: when a path starts naming a new file
/// (rotation), the old one is read to its end through the descriptor already open, then
/// closed, and the new one is read from its start. New files matching a glob are picked up
/// at the next scan. A file truncated in place starts a new generation. A new file whose
/// bytes are those of a generation already read (a copytruncate copy) continues that
/// generation: see `TailedStream`. Not thread-safe: one task scans and reads.
///
/// With inotify (see `FileWatcher`) only files that changed are read, and new files are found
/// when they appear; without it every open file is read each round and the patterns are
/// scanned every `pollInterval`. Files read to their end are closed when quiet or when the
/// descriptor budget runs short, and opened again when they change: see `FileTailer+Descriptors`.
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
    /// What a line longer than `maxLineBytes` becomes.
    let overlongLines: AgentConfig.OverlongLines
    /// Lines cut into pieces or truncated (since start).
    public internal(set) var overlongLinesSeen = 0

    // Descriptors and change notification (FileTailer+Descriptors, FileWatcher).
    let descriptors: DescriptorBudget?
    let settings: TailingSettings
    var closeIdleAfter: Duration { settings.closeIdleAfter }
    let watcher: FileWatcher?
    /// With a watcher: the generations that may have something to read (an event named their
    /// file, or the last read found data). Without one every generation is read.
    var readable = Set<FilePosition.Generation>()
    /// Paths of the files followed, for the watcher's events.
    var pathIndex: [String: InodeKey] = [:]
    /// Files truncated in place with no first line yet, and files no pattern names any more:
    /// looked at on every read, so kept apart rather than found among all the files each time
    /// (with thousands of idle files, that search was most of the agent's idle CPU).
    var unidentified = Set<InodeKey>()
    var orphans = Set<InodeKey>()
    var lastFullScan: ContinuousClock.Instant?
    /// An event asked for a full scan, or a file waited for a descriptor.
    var scanWanted = true
    var filesWaitingForDescriptor = false
    var lastBudgetWarning: ContinuousClock.Instant?
    /// Files closed while idle, and opened again (since start).
    public internal(set) var closedForNow = 0
    public internal(set) var reopenedFiles = 0

    /// - Parameters:
    ///   - multiline: joins lines into records; nil (the default) costs nothing per line.
    ///   - statePath: where the tailer keeps what it needs to recognise a copy after a restart
    ///     (see `TailerState`); nil keeps it in memory only.
    public init(
        sourceID: String, patterns: [String], format: LineFormat, maxLineBytes: Int = 256 << 10,
        readChunkBytes: Int = 256 << 10, orphanGrace: Duration = .seconds(5), orphanMaxOpen: Duration = .seconds(60),
        multiline: MultilineSettings? = nil, statePath: String? = nil, copyDecisionDelay: Duration = .seconds(3),
        overlongLines: AgentConfig.OverlongLines = .split, settings: TailingSettings = TailingSettings(),
        descriptors: DescriptorBudget? = nil, logger: Logger? = nil,
        resumePosition: @escaping (FileIdentity) -> FilePosition?
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
        self.overlongLines = overlongLines
        self.settings = settings
        self.descriptors = descriptors
        self.watcher = settings.watch == .auto ? FileWatcher(sourceID: sourceID, logger: logger) : nil
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
        source: AgentConfig.FileSourceConfig, stateDirectory: String, settings: TailingSettings = TailingSettings(),
        descriptors: DescriptorBudget? = nil, logger: Logger, resumePosition: @escaping (FileIdentity) -> FilePosition?
    ) {
        self.init(
            sourceID: source.id, patterns: source.paths, format: source.format, maxLineBytes: source.maxLineBytes,
            orphanMaxOpen: .milliseconds(source.maxOrphanOpenMilliseconds), multiline: source.multiline,
            statePath: TailerState.path(directory: stateDirectory, sourceID: source.id),
            overlongLines: source.overlongLines, settings: settings, descriptors: descriptors, logger: logger,
            resumePosition: resumePosition)
    }

    deinit {
        saveState(force: true)
        for file in files.values { closeCounted(file.descriptor) }
    }

    /// Paths of the files followed, open or closed for now.
    public var trackedPaths: [String] { files.values.map(\.path).sorted() }

    /// Files followed, open or closed for now.
    public var followedFiles: Int { files.count }

    /// Files held open.
    public internal(set) var openFiles = 0

    /// Whether changes come from inotify for every directory the patterns need.
    public var isWatching: Bool { watcher?.watchesAll ?? false }

    /// Files open although no pattern names them any more (renamed away or deleted).
    public var orphanedOpen: Int { orphans.count }

    /// Bytes not read yet (size − read offset), by path, for the open files that have any: a
    /// host agent follows thousands of files, most of them idle, and one series per idle file
    /// would only say 0.
    public var lagBytes: [String: Int64] {
        var lag: [String: Int64] = [:]
        guard openFiles > 0 else { return lag }
        for file in files.values where file.isOpen {
            var info = stat()
            guard fstat(file.descriptor, &info) == 0 else { continue }
            let behind = Int64(info.st_size) - (file.generation.flatMap { streams[$0]?.readOffset } ?? 0)
            if behind > 0 { lag[file.path] = behind }
        }
        return lag
    }

    // MARK: Scanning

    /// Looks for new files, rotated paths, truncations and files that went away when that is
    /// due (every `pollInterval` when polling; with inotify when an event asked for it or every
    /// `rescanInterval`), and closes idle files. Called about once a second.
    public func scan() {
        let now = ContinuousClock.now
        takeEvents()
        if fullScanDue(now) { fullScan(now: now) }
        identifyTruncated()
        undecided = undecided.filter { now - $0.value.since < copyDecisionDelay * 10 }
        closeIdleFiles(now: now)
        saveState(force: false)
    }

    func fullScanDue(_ now: ContinuousClock.Instant) -> Bool {
        guard let lastFullScan else { return true }
        if scanWanted || filesWaitingForDescriptor { return true }
        return now - lastFullScan >= (isWatching ? settings.rescanInterval : settings.pollInterval)
    }

    private func fullScan(now: ContinuousClock.Instant) {
        lastFullScan = now
        scanWanted = false
        filesWaitingForDescriptor = false
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
            if let file = files[key] {
                files[key]!.path = path
                if file.orphanedAt != nil {
                    files[key]!.orphanedAt = nil
                    files[key]!.closeAt = nil
                    orphans.remove(key)
                }
                if file.isOpen {
                    checkOriginal(key)
                } else if changedSinceClosed(file, info) {
                    reopen(key, at: path)
                }
            } else {
                fresh.append(path)
            }
        }
        for key in files.keys where !seen.contains(key) && files[key]!.orphanedAt == nil {
            guard files[key]!.isOpen else {
                // Closed, read to its end, and no longer named: nothing more to read in it.
                letGo(key)
                continue
            }
            files[key]!.orphanedAt = now
            files[key]!.lastDataAt = now
            orphans.insert(key)
        }
        // Known files first (above): a truncation they show is seen before a copy is judged.
        // With no descriptor left, the rest wait for the next scan.
        for path in fresh where !filesWaitingForDescriptor { attach(path, now: now) }
        // Not the orphans: the path they had may name a new file already, whose events must
        // not be taken for theirs (it would wait unread for the next full scan).
        pathIndex = Dictionary(
            files.values.filter { $0.orphanedAt == nil }.map { ($0.path, $0.key) }, uniquingKeysWith: { first, _ in first })
        watcher?.watch(FileWatcher.directories(for: patterns + archives.patterns, expand: expand))
        forgetOldGenerations()
    }

    /// With a watcher: takes its events, opens closed files that changed, and notes which
    /// generations to read. Unknown paths (a new file) ask for a scan.
    private func takeEvents() {
        guard let watcher else { return }
        let changes = watcher.drain()
        if changes.rescan { scanWanted = true }
        for path in changes.modified {
            guard let key = pathIndex[path], let file = files[key] else {
                // A file the patterns name that is not followed yet (it had no complete first
                // line); others in the same directory (a log being compressed) are no news.
                if matches(path) { scanWanted = true }
                continue
            }
            if !file.isOpen {
                if !reopen(key, at: path) { scanWanted = true }
                continue
            }
            // Truncated since the last look? Then the new generation is what to read.
            checkOriginal(key)
            if let generation = files[key]?.generation { readable.insert(generation) }
        }
    }

    private func matches(_ path: String) -> Bool {
        (patterns + archives.patterns).contains { fnmatch($0, path, FNM_PATHNAME) == 0 }
    }

    /// Notes that `generation` may have bytes to read.
    func markReadable(_ generation: FilePosition.Generation) {
        if watcher != nil { readable.insert(generation) }
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
        takeEvents()
        // New files are looked for as soon as an event names one, but not more than ten times
        // a second however many arrive.
        if fullScanDue(now), lastFullScan.map({ now - $0 >= .milliseconds(100) }) ?? true { fullScan(now: now) }
        identifyTruncated()
        let order = generationsToRead()
            .compactMap { streams[$0] }
            .filter { $0.carriers.contains { files[$0]?.isOpen == true } }
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

    /// Every generation, or with inotify watching everything, those events or data showed may
    /// have something new, and those of renamed or deleted files (no event names them).
    private func generationsToRead() -> [FilePosition.Generation] {
        guard watcher?.watchesAll == true else { return Array(streams.keys) }
        var wanted = readable
        for key in orphans {
            if let file = files[key], file.isOpen, let generation = file.generation { wanted.insert(generation) }
        }
        return Array(wanted)
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
            guard var file = files[key], file.isOpen else { continue }
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
                file.atEnd = false
                files[key] = file
                stream.path = file.path
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
            if !file.atEnd {
                file.atEnd = true
                files[key] = file
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
        if count > 0 {
            stream.lastActive = now
        } else {
            // Read to its end: with inotify it waits for an event naming its file.
            readable.remove(generation)
        }
        let gone = Set(truncated.map(\.0) + finished.map(\.key))
        stream.carriers.removeAll { gone.contains($0) }
        if stream.carriers.isEmpty {
            stream.lastActive = now
            // Closed for good (not truncated): nothing can follow a pending record any more.
            if truncated.isEmpty, let pending = stream.pending {
                sink(record(pending, of: stream.generation, path: stream.path))
                stream.pending = nil
            }
        }
        streams[generation] = stream
        for (key, atLimit) in finished {
            guard let file = files.removeValue(forKey: key) else { continue }
            orphans.remove(key)
            closeCounted(file.descriptor)
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
            let chunkBytes = UnsafeRawBufferPointer(chunk)
            stream.trail.absorb(chunkBytes)
            stream.trail.mark()
            var cursor = 0
            while cursor < count {
                guard let newline = ByteSearch.firstIndex(of: UInt8(ascii: "\n"), in: chunkBytes, from: cursor) else {
                    keepPartial(chunk[cursor...], in: &stream)
                    break
                }
                let end = chunkBase + Int64(newline) + 1
                if stream.partial.isEmpty, stream.skippedBytes == 0 {
                    let continuation = stream.partialContinues
                    stream.partialContinues = false
                    emit(UnsafeBufferPointer(rebasing: chunk[cursor..<newline]), offset: chunkBase + Int64(cursor),
                         end: end, time: time, continuation: continuation, lineEnds: true, now: now, stream: &stream, sink: sink)
                } else {
                    keepPartial(chunk[cursor..<newline], in: &stream)
                    let offset = end - Int64(stream.partial.count) - stream.skippedBytes - 1
                    // Moved out: `emit` takes the whole stream inout.
                    var line = stream.partial
                    stream.partial = []
                    let continuation = stream.partialContinues
                    stream.partialContinues = false
                    line.withUnsafeBufferPointer {
                        emit($0, offset: offset, end: end, time: time, continuation: continuation, lineEnds: true, now: now,
                             stream: &stream, sink: sink)
                    }
                    line.removeAll(keepingCapacity: true)
                    stream.partial = line
                }
                cursor = newline + 1
            }
        }
        // A line longer than the limit is shipped in pieces rather than held without bound.
        while overlongLines == .split, stream.partial.count >= maxLineBytes {
            let offset = stream.readOffset - Int64(stream.partial.count)
            let piece = Array(stream.partial[0..<maxLineBytes])
            stream.partial.removeFirst(maxLineBytes)
            let continuation = stream.partialContinues
            stream.partialContinues = true
            piece.withUnsafeBufferPointer {
                emit($0, offset: offset, end: offset + Int64(maxLineBytes), time: time, continuation: continuation,
                     lineEnds: false, now: now, stream: &stream, sink: sink)
            }
        }
    }

    /// Keeps the start of a line until its end arrives; when truncating, only the first
    /// `maxLineBytes` of it, counting the rest.
    private func keepPartial(_ bytes: UnsafeBufferPointer<UInt8>.SubSequence, in stream: inout TailedStream) {
        guard overlongLines == .truncate else {
            stream.partial.append(contentsOf: bytes)
            return
        }
        let room = max(0, maxLineBytes - stream.partial.count)
        stream.partial.append(contentsOf: bytes.prefix(room))
        stream.skippedBytes += Int64(max(0, bytes.count - room))
    }

    /// Turns one line's bytes (or, with `lineEnds` false, a piece cut off its start) into
    /// records: strips a trailing CR, decodes an s6 label into the time, and cuts a line longer
    /// than `maxLineBytes` into pieces, each with its own offset and its place among them, or
    /// keeps its start marked `truncated`. `continuation`: the rest of a line whose first
    /// pieces were already cut off (no label, never the start of a multiline record).
    private func emit(
        _ line: UnsafeBufferPointer<UInt8>, offset: Int64, end: Int64, time: Int64, continuation: Bool, lineEnds: Bool,
        now: ContinuousClock.Instant, stream: inout TailedStream, sink: (TailedLine) -> Void
    ) {
        var body = line
        if lineEnds, let last = body.last, last == UInt8(ascii: "\r") { body = UnsafeBufferPointer(rebasing: body.dropLast()) }
        let bodyEnd = offset + Int64(body.count)
        var lineTime = time
        var pieceOffset = offset
        var continuation = continuation
        if format != .plain, !continuation, let labelled = TAI64N.decode(body) {
            lineTime = labelled
            body = UnsafeBufferPointer(rebasing: body[(body.startIndex + TAI64N.labelLength + 1)...])
        }
        if overlongLines == .truncate {
            // `consume` keeps at most `maxLineBytes` of a line across reads; one read may hold more.
            let lineBytes = end - offset - 1
            guard stream.skippedBytes > 0 || body.count > maxLineBytes else {
                deliver(body, offset: offset, end: end, time: lineTime, continuation: continuation, piece: nil, now: now,
                        stream: &stream, sink: sink)
                return
            }
            stream.skippedBytes = 0
            overlongLinesSeen += 1
            deliver(UnsafeBufferPointer(rebasing: body.prefix(maxLineBytes)), offset: offset, end: end, time: lineTime,
                    continuation: continuation, piece: .truncated(lineBytes: lineBytes), now: now, stream: &stream, sink: sink)
            return
        }
        // Cut every `maxLineBytes` of the file's bytes, label included, exactly where `consume`
        // cuts a line that arrives over several reads: the pieces' offsets are their origin
        // coordinates, so they must not depend on how the reads fell.
        while bodyEnd - pieceOffset > Int64(maxLineBytes) {
            let pieceEnd = pieceOffset + Int64(maxLineBytes)
            let take = body.count - Int(bodyEnd - pieceEnd)
            stream.piecesCut += 1
            deliver(UnsafeBufferPointer(rebasing: body[0..<take]), offset: pieceOffset, end: pieceEnd, time: lineTime,
                    continuation: continuation, piece: .part(index: stream.piecesCut, last: false), now: now,
                    stream: &stream, sink: sink)
            continuation = true
            pieceOffset = pieceEnd
            body = UnsafeBufferPointer(rebasing: body[take...])
        }
        var piece: LinePiece?
        if lineEnds {
            if stream.piecesCut > 0 {
                piece = .part(index: stream.piecesCut + 1, last: true)
                overlongLinesSeen += 1
            }
            stream.piecesCut = 0
        } else {
            stream.piecesCut += 1
            piece = .part(index: stream.piecesCut, last: false)
        }
        deliver(body, offset: pieceOffset, end: end, time: lineTime, continuation: continuation, piece: piece, now: now,
                stream: &stream, sink: sink)
    }

    private func deliver(
        _ body: UnsafeBufferPointer<UInt8>, offset: Int64, end: Int64, time: Int64, continuation: Bool, piece: LinePiece?,
        now: ContinuousClock.Instant, stream: inout TailedStream, sink: (TailedLine) -> Void
    ) {
        guard let joiner else {
            sink(TailedLine(
                identity: stream.generation.identity, position: stream.generation, offset: offset, endOffset: end, time: time,
                message: String(decoding: body, as: UTF8.self), path: stream.path, piece: piece))
            return
        }
        let generation = stream.generation
        let path = stream.path
        joiner.add(body, offset: offset, end: end, time: time, continuation: continuation, now: now, pending: &stream.pending) {
            sink(record($0, of: generation, path: path))
        }
    }

    private func record(_ pending: PendingRecord, of generation: FilePosition.Generation, path: String) -> TailedLine {
        TailedLine(
            identity: generation.identity, position: generation, offset: pending.offset, endOffset: pending.end,
            time: pending.time, message: String(decoding: pending.bytes, as: UTF8.self), path: path)
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
            sink(record(pending, of: generation, path: streams[generation]?.path ?? ""))
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

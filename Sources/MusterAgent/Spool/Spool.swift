import Foundation
import MusterWire
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Batches on disk between the batcher and the collector.
///
/// Each compressed batch is appended to the active segment file and fsynced before anything
/// else happens to it: only then do the file checkpoints move past its lines, so from that
/// moment the spool, not the tailed file, is what guarantees delivery (the file may be rotated
/// away or deleted). The shipper takes entries oldest first; an entry is forgotten when the
/// collector acknowledged it, and a segment file is deleted once every entry in it was.
///
/// The spool has a size limit. Above it the batcher stops reading (`waitForSpace`): the lines
/// stay in their files to be read later, and nothing is dropped.
///
/// One task appends; any number of tasks may acknowledge; one task calls `next`.
public final class Spool: Sendable {
    public struct Settings: Sendable, Equatable {
        public var directory: String
        /// Reading stops while the segments add up to this much.
        public var maxBytes: Int64
        /// A segment is closed for appends at this size.
        public var segmentBytes: Int64

        public init(directory: String, maxBytes: Int64 = 256 << 20, segmentBytes: Int64 = 4 << 20) {
            self.directory = directory
            self.maxBytes = maxBytes
            self.segmentBytes = segmentBytes
        }
    }

    /// One spooled batch: where it is and what it holds.
    public struct Entry: Sendable, Hashable {
        public var segment: UInt64
        public var offset: Int64
        public var length: Int
        public var records: Int
    }

    /// A place in the spool: the end of an entry.
    public struct Mark: Sendable, Codable, Equatable {
        public var segment: UInt64
        public var end: Int64
    }

    /// What opening the spool found left by the previous run.
    public struct Recovery: Sendable {
        public var entries = 0
        public var records = 0
        public var bytes: Int64 = 0
        /// Stretches that were not whole entries, in segments written before the newest one:
        /// batches whose lines were already checkpointed, so they are lost.
        public var damaged: [Damage] = []
        /// An append the previous run did not finish (the end of the newest segment). Its lines
        /// were not checkpointed yet, so they are read again from their files: nothing is lost.
        public var unfinishedAppend: Damage?
    }

    public struct Damage: Sendable, CustomStringConvertible {
        public var path: String
        public var offset: Int
        public var bytes: Int
        public var description: String { "\(bytes) bytes at offset \(offset) of \(path)" }
    }

    private struct Segment {
        var path: String
        var bytes: Int64
        /// Entries appended and not yet acknowledged.
        var unacknowledged: Int
    }

    private struct State {
        var segments: [UInt64: Segment] = [:]
        var active: UInt64?
        var activeDescriptor: Int32 = -1
        var nextSegment: UInt64 = 1
        /// Entries not yet handed to the shipper, oldest first, from `unsentStart`.
        var unsent: [Entry] = []
        var unsentStart = 0
        var bytes: Int64 = 0
        var finished = false
    }

    public let settings: Settings
    private let state: Mutex<State>
    private let entriesAdded: AsyncStream<Void>.Continuation
    private let entriesSignal: AsyncStream<Void>
    private let spaceFreed: AsyncStream<Void>.Continuation
    private let spaceSignal: AsyncStream<Void>

    private init(settings: Settings, state: State) {
        self.settings = settings
        self.state = Mutex(state)
        (entriesSignal, entriesAdded) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (spaceSignal, spaceFreed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    deinit {
        state.withLock { state in
            if state.activeDescriptor >= 0 { Glibc.close(state.activeDescriptor) }
        }
    }

    /// Opens the spool directory, checking every segment the previous run left: whole entries
    /// are queued to be sent again (oldest first), damaged stretches are reported and skipped.
    /// `checkpointed` is where the saved checkpoints say the spool had got to: a cut-off end
    /// past it is an append that never finished (its lines are read again), one before it is
    /// damage (its lines were checkpointed, so they are lost).
    public static func open(_ settings: Settings, checkpointed: Mark? = nil) throws(SpoolError) -> (Spool, Recovery) {
        do {
            try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
        } catch {
            throw .unusable(path: settings.directory, detail: error.localizedDescription)
        }
        var state = State()
        var recovery = Recovery()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: settings.directory)) ?? []
        let ids = names.compactMap(segmentID(fromName:)).sorted()
        for id in ids {
            let path = segmentPath(settings.directory, id)
            let bytes: [UInt8]
            do {
                bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                // A segment that cannot be read at all is damage too: set it aside (for a person
                // to look at) rather than stop the agent at every start.
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                let aside = path + ".bad"
                guard rename(path, aside) == 0 else {
                    throw .unusable(path: path, detail: "\(error.localizedDescription); moving it aside failed too: \(String(cString: strerror(errno)))")
                }
                recovery.damaged.append(Damage(path: aside, offset: 0, bytes: size))
                continue
            }
            let scan = bytes.withUnsafeBytes { SpoolEntryFormat.scan($0) }
            var damaged = scan.damaged.map { Damage(path: path, offset: $0.offset, bytes: $0.bytes) }
            let checkpointedPast = checkpointed.map { $0.segment > id || ($0.segment == id && $0.end > Int64(scan.validEnd)) } ?? false
            if id == ids.last, !checkpointedPast, let last = damaged.last, last.offset + last.bytes == bytes.count,
                last.offset == scan.validEnd
            {
                // Cut the unfinished append off, so the segment ends with a whole entry.
                recovery.unfinishedAppend = last
                damaged.removeLast()
                truncate(path, off_t(scan.validEnd))
            }
            recovery.damaged += damaged
            guard !scan.entries.isEmpty else {
                unlink(path)
                continue
            }
            let onDisk = Int64(recovery.unfinishedAppend != nil && id == ids.last ? scan.validEnd : bytes.count)
            state.segments[id] = Segment(path: path, bytes: onDisk, unacknowledged: scan.entries.count)
            state.bytes += onDisk
            for found in scan.entries {
                state.unsent.append(
                    Entry(segment: id, offset: Int64(found.offset), length: found.length, records: found.header.records))
                recovery.entries += 1
                recovery.records += found.header.records
            }
        }
        recovery.bytes = state.bytes
        // Never reuse a segment number the checkpoints still mention: a clean stop deletes the
        // last segment, and reusing its number would make the next start's check misread it.
        state.nextSegment = max(ids.last ?? 0, checkpointed?.segment ?? 0) + 1
        return (Spool(settings: settings, state: state), recovery)
    }

    public var bytes: Int64 { state.withLock { $0.bytes } }
    public var isFull: Bool { state.withLock { $0.bytes >= settings.maxBytes } }
    /// Whether entries wait for the shipper (it has as many in flight as it may, or the
    /// collector is away).
    public var hasUnsent: Bool { state.withLock { $0.unsentStart < $0.unsent.count } }
    /// Entries on disk not yet acknowledged.
    public var entries: Int { state.withLock { state in state.segments.values.reduce(0) { $0 + $1.unacknowledged } } }

    /// Appends a batch and makes it durable. Ignores the size limit (the caller waits for space
    /// before reading more), so a notice about the spool being full always fits.
    @discardableResult
    public func append(_ batch: OutgoingBatch) throws(SpoolError) -> Mark {
        let encoded = batch.body.readableBytesView.withUnsafeBytes {
            SpoolEntryFormat.encode(body: $0, records: batch.records, uncompressedBytes: batch.uncompressedBytes)
        }
        let (id, descriptor, offset) = try activeSegment(forAppending: Int64(encoded.count))
        let written = encoded.withUnsafeBytes { writeAll(descriptor, $0) }
        guard written, fdatasync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            // Leave the segment ending with a whole entry, whatever part of this one got out,
            // and append no more to it: if the truncate failed too, its end is not where this
            // spool thinks, so the next append goes to a new segment.
            _ = ftruncate(descriptor, off_t(offset))
            retireActiveSegment()
            throw .writeFailed(path: Self.segmentPath(settings.directory, id), detail: reason)
        }
        state.withLock { state in
            state.segments[id]!.bytes += Int64(encoded.count)
            state.segments[id]!.unacknowledged += 1
            state.bytes += Int64(encoded.count)
            state.unsent.append(Entry(segment: id, offset: offset, length: encoded.count, records: batch.records))
        }
        entriesAdded.yield()
        return Mark(segment: id, end: offset + Int64(encoded.count))
    }

    /// The segment to append `length` bytes to: the active one, unless it is full, or was
    /// entirely acknowledged (then it is deleted, so a crash does not make its batches go out
    /// again). Only the appending task calls this, so only it writes or deletes the active
    /// segment; acknowledgements delete only segments no longer written to.
    private func activeSegment(forAppending length: Int64) throws(SpoolError) -> (UInt64, Int32, Int64) {
        let current: (UInt64, Int32, Segment)? = state.withLock { state in
            guard let id = state.active, let segment = state.segments[id] else { return nil }
            return (id, state.activeDescriptor, segment)
        }
        if let (id, descriptor, segment) = current {
            let hasRoom = segment.bytes == 0 || segment.bytes + length <= settings.segmentBytes
            let allAcknowledged = segment.bytes > 0 && segment.unacknowledged == 0
            if hasRoom, !allAcknowledged { return (id, descriptor, segment.bytes) }
            retireActiveSegment()
        }
        let id = state.withLock { state in
            defer { state.nextSegment += 1 }
            return state.nextSegment
        }
        let path = Self.segmentPath(settings.directory, id)
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .writeFailed(path: path, detail: String(cString: strerror(errno))) }
        Self.syncDirectory(settings.directory)
        state.withLock { state in
            state.segments[id] = Segment(path: path, bytes: 0, unacknowledged: 0)
            state.active = id
            state.activeDescriptor = descriptor
        }
        return (id, descriptor, 0)
    }

    /// No more appends to the active segment; it goes as soon as all of it is acknowledged.
    private func retireActiveSegment() {
        state.withLock { state in
            guard let id = state.active else { return }
            Glibc.close(state.activeDescriptor)
            state.active = nil
            state.activeDescriptor = -1
            if state.segments[id]?.unacknowledged == 0 { forget(id, in: &state) }
        }
    }

    /// Returns once the spool is under its limit again (or the task is cancelled).
    public func waitForSpace() async {
        var signal = spaceSignal.makeAsyncIterator()
        while isFull, !Task.isCancelled {
            _ = await signal.next()
        }
    }

    /// The oldest entry not yet handed out, waiting for one; nil once `finish` was called and
    /// all were handed out, or when the task is cancelled.
    public func next() async -> Entry? {
        var signal = entriesSignal.makeAsyncIterator()
        while !Task.isCancelled {
            let taken: Entry?? = state.withLock { state in
                if state.unsentStart < state.unsent.count {
                    defer {
                        state.unsentStart += 1
                        if state.unsentStart > 1024, state.unsentStart * 2 > state.unsent.count {
                            state.unsent.removeFirst(state.unsentStart)
                            state.unsentStart = 0
                        }
                    }
                    return .some(state.unsent[state.unsentStart])
                }
                return state.finished ? .some(nil) : nil
            }
            if let taken { return taken }
            _ = await signal.next()
        }
        return nil
    }

    /// No more appends: `next` returns nil once everything was handed out.
    public func finish() {
        state.withLock { $0.finished = true }
        entriesAdded.yield()
    }

    /// Reads an entry's batch back, checking it again: a disk can go bad after the append.
    public func read(_ entry: Entry) throws(SpoolError) -> OutgoingBatch {
        let path = Self.segmentPath(settings.directory, entry.segment)
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { throw .damaged(path: path, offset: entry.offset, detail: "the segment file is gone") }
            throw .readFailed(path: path, detail: String(cString: strerror(errno)))
        }
        defer { Glibc.close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: entry.length)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, entry.length, off_t(entry.offset)) }
        guard count >= 0 else { throw .readFailed(path: path, detail: String(cString: strerror(errno))) }
        guard count == entry.length else {
            throw .damaged(path: path, offset: entry.offset, detail: "the file ends \(entry.length - count) bytes early")
        }
        guard let header = bytes.withUnsafeBytes({ SpoolEntryFormat.entry(in: $0, at: 0) }) else {
            throw .damaged(path: path, offset: entry.offset, detail: "checksum mismatch")
        }
        var body = ByteBufferAllocator().buffer(capacity: header.bodyBytes)
        body.writeBytes(bytes[SpoolEntryFormat.headerBytes...])
        return OutgoingBatch(
            body: body, records: header.records, uncompressedBytes: header.uncompressedBytes, positions: [])
    }

    /// The collector has the entry (or refused it for good and it was kept elsewhere).
    public func acknowledge(_ entry: Entry) {
        let freed = state.withLock { state -> Bool in
            guard var segment = state.segments[entry.segment] else { return false }
            segment.unacknowledged -= 1
            state.segments[entry.segment] = segment
            guard segment.unacknowledged == 0, state.active != entry.segment else { return false }
            forget(entry.segment, in: &state)
            return true
        }
        if freed { spaceFreed.yield() }
    }

    /// At a clean stop: the active segment goes too when everything in it was acknowledged.
    public func close() {
        retireActiveSegment()
    }

    private func forget(_ id: UInt64, in state: inout State) {
        guard let segment = state.segments.removeValue(forKey: id) else { return }
        unlink(segment.path)
        state.bytes -= segment.bytes
    }

    static func segmentPath(_ directory: String, _ id: UInt64) -> String {
        let digits = String(id)
        return directory + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".seg"
    }

    /// Segment numbers have 16 digits; a larger one (a stray file, a damaged checkpoint) is
    /// not a segment of ours, and counting on from it could overflow.
    static let segmentIDs: ClosedRange<UInt64> = 0...9_999_999_999_999_999

    static func segmentID(fromName name: String) -> UInt64? {
        guard name.hasSuffix(".seg"), let id = UInt64(name.dropLast(4)), segmentIDs.contains(id) else { return nil }
        return id
    }

    private func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let count = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return false }
            done += count
        }
        return true
    }

    private static func syncDirectory(_ path: String) {
        let descriptor = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        Glibc.close(descriptor)
    }
}

public enum SpoolError: Error, CustomStringConvertible, Equatable {
    case unusable(path: String, detail: String)
    case writeFailed(path: String, detail: String)
    case readFailed(path: String, detail: String)
    case damaged(path: String, offset: Int64, detail: String)

    public var description: String {
        switch self {
        case .unusable(let path, let detail): "cannot use the spool at \(path): \(detail)"
        case .writeFailed(let path, let detail):
            "cannot append to spool segment \(path): \(detail); reading is paused until it can"
        case .readFailed(let path, let detail): "cannot read spool segment \(path): \(detail)"
        case .damaged(let path, let offset, let detail):
            "spool entry at offset \(offset) of \(path) is damaged (\(detail)); its batch is skipped"
        }
    }
}

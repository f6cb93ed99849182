import Logging
import MusterStore
import MusterWire
import ServiceLifecycle
import Synchronization

/// The store's single writer. Requests hand it decoded batches and wait; it commits
/// everything that queued up meanwhile in one transaction (group commit), then answers
/// each request. An acknowledgement therefore always means "committed".
///
/// With a `commitInterval`, a commit starts at least that long after the one before it
/// started, and batches arriving meanwhile join it: fewer, larger commits, each answered up
/// to one interval later. For a store that pays per commit rather than per line (ClickHouse:
/// a part per insert and shard, its ZooKeeper writes, fetches and merges).
public final class IngestWriter: Service, Sendable {
    private struct Pending: Sendable {
        var batch: IngestBatch
        var continuation: CheckedContinuation<IngestCounts, Error>
    }

    private struct Queue {
        var pending: [Pending] = []
        var records = 0
        /// Set once the writer has stopped: later batches are refused, not left waiting.
        var closed = false
    }

    private let store: any IngestStore
    private let queue = Mutex(Queue())
    /// True while a group of batches is being written.
    private let writing = Mutex(false)
    private let wakeUp: AsyncStream<Void>
    private let wakeUpContinuation: AsyncStream<Void>.Continuation
    private let metrics: CollectorMetrics
    private let logger: Logger
    /// Told after each commit that appended stream events.
    let feed: EventFeed
    /// Upper bound on records per transaction, so one commit never grows without limit.
    private let maxRecordsPerTransaction: Int
    /// Records that may wait for the writer at once; past it, senders are told to come back
    /// later (503) instead of the collector's memory growing with every concurrent request.
    private let maxWaitingRecords: Int
    /// The least time from one commit's start to the next's; zero: as soon as the last ended.
    private let commitInterval: Duration

    init(
        store: any IngestStore & EventLog, metrics: CollectorMetrics, logger: Logger,
        maxRecordsPerTransaction: Int = 200_000, maxWaitingRecords: Int = 1_000_000, commitInterval: Duration = .zero
    ) async throws {
        self.store = store
        feed = EventFeed(latest: try await store.latestEventID())
        self.metrics = metrics
        self.logger = logger
        self.maxRecordsPerTransaction = maxRecordsPerTransaction
        self.maxWaitingRecords = maxWaitingRecords
        self.commitInterval = commitInterval
        (wakeUp, wakeUpContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Stores a validated batch; returns once it is committed. Throws `IngestWriterError`
    /// when too much is already waiting or the writer has stopped: nothing was stored.
    public func submit(_ records: [LogRecord], journal: [Int: JournalEntry] = [:]) async throws -> IngestCounts {
        try await withCheckedThrowingContinuation { continuation in
            let refusal: IngestWriterError? = queue.withLock { queue in
                if queue.closed { return .stopped }
                // One batch is always let in, however large, so a big batch cannot starve.
                if queue.records > 0, queue.records + records.count > maxWaitingRecords { return .overloaded }
                queue.pending.append(Pending(batch: IngestBatch(records: records, journal: journal), continuation: continuation))
                queue.records += records.count
                return nil
            }
            if let refusal {
                continuation.resume(throwing: refusal)
            } else {
                wakeUpContinuation.yield()
            }
        }
    }

    /// Records a mark at the collector's clock and announces it. Marks are rare and tiny, so
    /// they go to the store directly instead of joining a group commit; the store still
    /// serialises them with ingest, so event ids follow commit order.
    public func recordMark(name: String, note: String) async throws -> Mark {
        let mark = try await store.recordMark(name: name, note: note, at: Timestamp.now())
        feed.advance(to: mark.event)
        return mark
    }

    /// True while batches are waiting for the writer or being written: ingest wants the
    /// database now, and background work should step aside.
    var isBusy: Bool {
        queue.withLock { !$0.pending.isEmpty } || writing.withLock { $0 }
    }

    public func run() async throws {
        var lastStart: ContinuousClock.Instant?
        await withGracefulShutdownHandler {
            for await _ in wakeUp {
                await drain(lastStart: &lastStart)
            }
        } onGracefulShutdown: {
            self.wakeUpContinuation.finish()
        }
        // Requests that raced with shutdown still get their answer, without waiting out the interval.
        queue.withLock { $0.closed = true }
        await drain(lastStart: &lastStart)
    }

    /// Commits what is waiting, group by group; `lastStart` is when the last commit started.
    private func drain(lastStart: inout ContinuousClock.Instant?) async {
        while true {
            if let last = lastStart, ContinuousClock.now < last + commitInterval {
                // A full group cannot grow by waiting; a closed writer answers at once.
                let wait = queue.withLock { !$0.pending.isEmpty && !$0.closed && $0.records < maxRecordsPerTransaction }
                if wait { try? await Task.sleep(until: last + commitInterval, clock: .continuous) }
            }
            let group: [Pending] = queue.withLock { queue in
                var taken = 0
                var count = 0
                while taken < queue.pending.count,
                    count == 0 || count + queue.pending[taken].batch.records.count <= maxRecordsPerTransaction
                {
                    count += queue.pending[taken].batch.records.count
                    taken += 1
                }
                let group = Array(queue.pending.prefix(taken))
                queue.pending.removeFirst(taken)
                queue.records -= count
                return group
            }
            guard !group.isEmpty else { return }
            writing.withLock { $0 = true }
            defer { writing.withLock { $0 = false } }
            let started = ContinuousClock.now
            lastStart = started
            do {
                let committed = try await store.commit(group.map(\.batch))
                // Only now is the event committed, and visible to the stream's readers.
                if let newestEvent = committed.newestEvent { feed.advance(to: newestEvent) }
                metrics.recordCommit(results: committed.counts, duration: ContinuousClock.now - started)
                for (pending, result) in zip(group, committed.counts) { pending.continuation.resume(returning: result) }
            } catch {
                logger.error("commit failed", metadata: ["error": "\(error)", "batches": "\(group.count)"])
                metrics.commitFailures.increment()
                for pending in group { pending.continuation.resume(throwing: error) }
            }
        }
    }
}

/// Why the writer did not take a batch; the sender should retry later.
public enum IngestWriterError: Error, CustomStringConvertible {
    case overloaded
    case stopped

    public var description: String {
        switch self {
        case .overloaded: "too many records are waiting to be written"
        case .stopped: "the collector is shutting down"
        }
    }
}

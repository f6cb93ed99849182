import GRDB
import Logging
import MusterStore
import MusterWire
import ServiceLifecycle
import Synchronization

/// The store's single writer. Requests hand it decoded batches and wait; it commits
/// everything that queued up meanwhile in one transaction (group commit), then answers
/// each request. An acknowledgement therefore always means "committed".
public final class IngestWriter: Service, Sendable {
    private struct Pending: Sendable {
        var records: [LogRecord]
        var continuation: CheckedContinuation<IngestCounts, Error>
    }

    private let database: DatabasePool
    private let queue = Mutex<[Pending]>([])
    /// True while a group of batches is being written.
    private let writing = Mutex(false)
    private let wakeUp: AsyncStream<Void>
    private let wakeUpContinuation: AsyncStream<Void>.Continuation
    private let metrics: CollectorMetrics
    private let logger: Logger
    /// Upper bound on records per transaction, so one commit never grows without limit.
    private let maxRecordsPerTransaction: Int

    init(database: DatabasePool, metrics: CollectorMetrics, logger: Logger, maxRecordsPerTransaction: Int = 200_000) {
        self.database = database
        self.metrics = metrics
        self.logger = logger
        self.maxRecordsPerTransaction = maxRecordsPerTransaction
        (wakeUp, wakeUpContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Stores a validated batch; returns once it is committed.
    public func submit(_ records: [LogRecord]) async throws -> IngestCounts {
        try await withCheckedThrowingContinuation { continuation in
            queue.withLock { $0.append(Pending(records: records, continuation: continuation)) }
            wakeUpContinuation.yield()
        }
    }

    /// True while batches are waiting for the writer or being written: ingest wants the
    /// database now, and background work should step aside.
    var isBusy: Bool {
        queue.withLock { !$0.isEmpty } || writing.withLock { $0 }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakeUp {
                await drain()
            }
        } onGracefulShutdown: {
            self.wakeUpContinuation.finish()
        }
        // Requests that raced with shutdown still get their answer.
        await drain()
    }

    private func drain() async {
        while true {
            let group: [Pending] = queue.withLock { pending in
                var taken = 0
                var count = 0
                while taken < pending.count, count == 0 || count + pending[taken].records.count <= maxRecordsPerTransaction {
                    count += pending[taken].records.count
                    taken += 1
                }
                let group = Array(pending.prefix(taken))
                pending.removeFirst(taken)
                return group
            }
            guard !group.isEmpty else { return }
            writing.withLock { $0 = true }
            defer { writing.withLock { $0 = false } }
            let started = ContinuousClock.now
            do {
                let batches = group.map(\.records)
                let results = try await database.write { db in try LogWriter.insert(batches, into: db) }
                metrics.recordCommit(results: results, duration: ContinuousClock.now - started)
                for (pending, result) in zip(group, results) { pending.continuation.resume(returning: result) }
            } catch {
                logger.error("commit failed", metadata: ["error": "\(error)", "batches": "\(group.count)"])
                metrics.commitFailures.increment()
                for pending in group { pending.continuation.resume(throwing: error) }
            }
        }
    }
}

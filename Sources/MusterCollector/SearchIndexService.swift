import GRDB
import Logging
import MusterStore
import ServiceLifecycle

/// Fills the full-text index behind ingest (see `SearchIndexer`).
///
/// Ingest comes first: the index shares the store's single writer. After each chunk, if
/// batches are waiting for the writer, the indexer sleeps in proportion to how long the chunk
/// took, so a saturated writer gives it at most `busyShare` of its time; otherwise it goes on
/// at once, using the writer's idle time. Under a load the writer can carry it keeps within a
/// chunk or two of ingest; during a burst it falls behind, and `logq --match` checks the
/// unindexed rows directly, so answers stay complete.
struct SearchIndexService: Service {
    let database: DatabasePool
    let writer: IngestWriter
    /// Fraction of the writer's time the indexer may use while ingest is busy.
    let busyShare = 0.25
    let interval: Duration
    let chunkRows: Int
    let metrics: CollectorMetrics
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                // Catch up chunk by chunk: each chunk is its own short transaction, so the
                // ingest writer gets the database in between.
                while !Task.isShuttingDownGracefully {
                    let started = ContinuousClock.now
                    let progress = try await database.write { db in
                        try SearchIndexer.indexNextChunk(in: db, maxRows: chunkRows)
                    }
                    metrics.searchIndexPending.set(progress.pending)
                    metrics.searchIndexed.increment(by: Int64(progress.indexed))
                    if progress.pending == 0 { break }
                    if writer.isBusy {
                        let spent = ContinuousClock.now - started
                        try? await gracefulShutdown(orSleep: spent * ((1 - busyShare) / busyShare))
                    }
                }
            } catch {
                logger.error("search indexing failed; will retry", metadata: ["error": "\(error)"])
            }
            try? await gracefulShutdown(orSleep: interval)
        }
    }

    private func gracefulShutdown(orSleep duration: Duration) async throws {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}

import GRDB
import Logging
import MusterStore
import ServiceLifecycle

/// Fills the full-text index behind ingest (see `SearchIndexer`).
///
/// Ingest comes first: the index shares the store's single writer, so while batches are
/// arriving the indexer takes at most `busyShare` of the writer's time (it sleeps after each
/// chunk in proportion to how long the chunk took) and catches up at full speed once ingest
/// quiets down. Under a steady load it stays within a chunk or two of ingest; during a burst
/// it falls behind and `logq --match` scans the unindexed rows, so answers stay complete.
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
                    if writer.isBusy() {
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

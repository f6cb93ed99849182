import GRDB
import Logging
import MusterStore
import ServiceLifecycle

/// Keeps the FTS index a few seconds behind ingest at most (see `SearchIndexer`).
struct SearchIndexService: Service {
    let database: DatabasePool
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
                    let progress = try await database.write { db in
                        try SearchIndexer.indexNextChunk(in: db, maxRows: chunkRows)
                    }
                    metrics.searchIndexPending.set(progress.pending)
                    metrics.searchIndexed.increment(by: Int64(progress.indexed))
                    if progress.pending == 0 { break }
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

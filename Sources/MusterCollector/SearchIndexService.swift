import GRDB
import Logging
import MusterStore
import MusterStoreSQLite
import ServiceLifecycle

/// Fills the full-text index behind ingest (see `SearchIndexer`), sharing the writer as
/// `BehindIngest` says: under a load the writer can carry it keeps within a chunk or two of
/// ingest; during a burst it falls behind, and `logq --match` checks the unindexed rows
/// directly, so answers stay complete.
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
        let share = BehindIngest(writer: writer, busyShare: busyShare)
        await BehindIngest.every(interval, logger: logger, failure: "search indexing failed") {
            try await share.repeatChunks {
                let progress = try await database.write { db in try SearchIndexer.indexNextChunk(in: db, maxRows: chunkRows) }
                metrics.searchIndexPending.set(progress.pending)
                metrics.searchIndexed.increment(by: Int64(progress.indexed))
                return progress.pending > 0
            }
        }
    }
}

import Logging
import MusterStore
import ServiceLifecycle

/// Fills the search index behind ingest (`StoreMaintenance.indexNextChunk`), sharing the writer as
/// `BehindIngest` says: under a load the writer can carry it keeps within a chunk or two of
/// ingest; during a burst it falls behind, and `logq --match` checks the unindexed rows
/// directly, so answers stay complete.
struct SearchIndexService: Service {
    let store: any StoreMaintenance
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
                let progress = try await store.indexNextChunk(maxRows: chunkRows)
                metrics.searchIndexPending.set(progress.pending)
                metrics.searchIndexed.increment(by: Int64(progress.indexed))
                return progress.pending > 0
            }
        }
    }
}

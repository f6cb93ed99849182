import Logging
import MusterStore
import ServiceLifecycle

/// Fills the search index behind ingest (`StoreMaintenance.indexNextChunk`). The index has a
/// writer of its own (the SQLite store's is a file of its own), so this runs beside ingest, on
/// another core when there is one, instead of taking turns with it: after a burst it is a
/// chunk or so behind, not the whole burst. `logq --match` checks the rows not yet indexed
/// directly, so answers stay complete either way.
struct SearchIndexService: Service {
    let store: any StoreMaintenance
    let interval: Duration
    let chunkRows: Int
    let metrics: CollectorMetrics
    let logger: Logger

    func run() async throws {
        await BehindIngest.every(interval, logger: logger, failure: "search indexing failed") {
            while !BehindIngest.isStopping {
                let progress = try await store.indexNextChunk(maxRows: chunkRows)
                metrics.searchIndexPending.set(progress.pending)
                metrics.searchIndexed.increment(by: Int64(progress.indexed))
                guard progress.pending > 0 else { return }
            }
        }
    }
}

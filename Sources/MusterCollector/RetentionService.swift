import Logging
import MusterStore
import MusterWire
import ServiceLifecycle

/// Prunes what `policy` no longer keeps every `interval`, a chunk per transaction, sharing the writer as
/// `BehindIngest` says (at most half of it while batches wait).
struct RetentionService: Service {
    let store: any StoreMaintenance
    let writer: IngestWriter
    let policy: RetentionPolicy
    let interval: Duration
    let chunkRows: Int
    let logger: Logger

    func run() async throws {
        guard policy.isEnabled else {
            // A service that returns ends the whole group (the HTTP server with it), so with
            // nothing to prune it waits for shutdown like the others.
            try? await gracefulShutdown()
            return
        }
        let share = BehindIngest(writer: writer, busyShare: 0.5)
        await BehindIngest.every(interval, logger: logger, failure: "retention failed") {
            var total = PruneProgress()
            var trimming = false
            try await share.repeatChunks {
                let continuing = trimming
                let progress = try await store.pruneChunk(policy, now: Timestamp.now(), maxRows: chunkRows, trimming: continuing)
                trimming = progress.more
                total.logRows += progress.logRows
                total.historyRows += progress.historyRows
                return progress.more
            }
            if total.logRows > 0 || total.historyRows > 0 {
                logger.info("retention pruned", metadata: ["log_rows": "\(total.logRows)", "history_rows": "\(total.historyRows)"])
            }
        }
    }
}

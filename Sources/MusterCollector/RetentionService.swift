import GRDB
import Logging
import MusterStore
import MusterWire
import ServiceLifecycle

/// Runs `Retention` every `interval`, a chunk per transaction, stepping aside for ingest the
/// way the search indexer does: while batches wait for the writer it sleeps as long as the
/// chunk took between chunks.
struct RetentionService: Service {
    let database: DatabasePool
    let writer: IngestWriter
    let policy: RetentionPolicy
    let interval: Duration
    let chunkRows: Int
    let logger: Logger

    func run() async throws {
        guard policy.isEnabled else { return }
        while !Task.isShuttingDownGracefully {
            do {
                var total = Retention.Progress()
                var trimming = false
                while !Task.isShuttingDownGracefully {
                    let started = ContinuousClock.now
                    let continuing = trimming
                    let progress = try await database.write { db in
                        try Retention.pruneChunk(policy, now: Timestamp.now(), maxRows: chunkRows, trimming: continuing, in: db)
                    }
                    trimming = progress.more
                    total.logRows += progress.logRows
                    total.historyRows += progress.historyRows
                    if !progress.more { break }
                    if writer.isBusy { try? await sleep(ContinuousClock.now - started) }
                }
                if total.logRows > 0 || total.historyRows > 0 {
                    logger.info(
                        "retention pruned", metadata: ["log_rows": "\(total.logRows)", "history_rows": "\(total.historyRows)"])
                }
            } catch {
                logger.error("retention failed; will retry", metadata: ["error": "\(error)"])
            }
            try? await sleep(interval)
        }
    }

    private func sleep(_ duration: Duration) async throws {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}

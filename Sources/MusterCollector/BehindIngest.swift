import Logging
import ServiceLifecycle

/// How background work (retention) shares the store's single writer with
/// ingest, which comes first.
///
/// The work goes in chunks, each its own short transaction, so ingest waits behind at most one.
/// While batches wait for the writer, the work sleeps after each chunk in proportion to how long
/// the chunk took, so a saturated writer gives it at most `busyShare` of its time; otherwise it
/// goes on at once, using the writer's idle time.
struct BehindIngest: Sendable {
    let writer: IngestWriter
    let busyShare: Double

    /// Runs `chunk` until it says nothing is left (returns false) or the service shuts down.
    func repeatChunks(_ chunk: () async throws -> Bool) async throws {
        while !Self.isStopping {
            let started = ContinuousClock.now
            guard try await chunk() else { return }
            if writer.isBusy {
                await Self.sleep((ContinuousClock.now - started) * ((1 - busyShare) / busyShare))
            }
        }
    }

    /// Runs `round` now and then every `interval` until shutdown; a failed round is logged and
    /// the next one tries again.
    static func every(_ interval: Duration, logger: Logger, failure: String, _ round: () async throws -> Void) async {
        while !isStopping {
            do {
                try await round()
            } catch {
                logger.error("\(failure); will retry", metadata: ["error": "\(error)"])
            }
            await sleep(interval)
        }
    }

    /// Shutdown is graceful (a signal) or a cancellation (another service of the group ended);
    /// either way the loop ends: a cancelled sleep returns at once, so a loop that only
    /// watched for graceful shutdown would spin.
    static var isStopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    /// Sleeps for `duration`, or less when the service is asked to shut down.
    static func sleep(_ duration: Duration) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}

import Foundation
import Hummingbird
import Logging
import MusterWire
import NIOCore
import Synchronization

/// What `/healthz` reports, updated by the pipeline.
public final class AgentStatus: Sendable {
    struct Snapshot: Encodable {
        var status = "ok"
        var spoolBytes: Int64 = 0
        var spoolFull = false
        /// Why the spool cannot take a batch, while it cannot (disk full, permissions).
        var spoolError: String?
        var collectorReachable = true
        /// Unix seconds of the last acknowledgement.
        var lastAcknowledged: Int64?

        enum CodingKeys: String, CodingKey {
            case status
            case spoolBytes = "spool_bytes"
            case spoolFull = "spool_full"
            case spoolError = "spool_error"
            case collectorReachable = "collector_reachable"
            case lastAcknowledged = "last_acknowledged"
        }
    }

    private let state = Mutex(Snapshot())

    func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }

    /// Unhealthy only when the agent cannot do its job on its own: its spool cannot be
    /// written. A full spool or an unreachable collector are reported but healthy: restarting
    /// the agent would not help with either.
    var snapshot: Snapshot {
        var snapshot = state.withLock { $0 }
        snapshot.status = snapshot.spoolError == nil ? (snapshot.spoolFull ? "spool_full" : "ok") : "spool_unwritable"
        return snapshot
    }
}

/// `GET /metrics` (Prometheus text) and `GET /healthz` (JSON; 503 when the spool cannot be written).
struct AgentHTTPServer {
    let host: String
    let port: Int
    let metrics: AgentMetrics
    let status: AgentStatus

    func application(logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        let registry = metrics.registry
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let status = self.status
        router.get("/healthz") { _, _ in
            let snapshot = status.snapshot
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(snapshot)) ?? Data(#"{"status":"unknown"}"#.utf8)
            return Response(
                status: snapshot.spoolError == nil ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}

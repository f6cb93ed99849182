import Foundation
import Hummingbird
// HTTPServerBuilder and HTTP1Channel, the types HummingbirdTLS wraps, live here.
import HummingbirdCore
import HummingbirdTLS
import Logging
import MusterStore
import MusterStoreSQLite
import NIOCore
import ServiceLifecycle

/// Assembles the collector: the store, its single writer, the search indexer and the HTTP API.
public struct Collector {
    public let config: CollectorConfig
    public let metrics = CollectorMetrics()
    let store: any CollectorStore
    let writer: IngestWriter
    let retention: RetentionPolicy
    let logger: Logger
    /// HTTP/1.1, wrapped in TLS when `config.tls` is set; built (and its files checked) at init.
    let server: HTTPServerBuilder
    /// Shared by every ingest request: memory is bounded across requests, not per request.
    let inflatedBytes: InflatedBytesBudget

    /// Builds a collector over the store `config.database` names (see `openStore`), or over
    /// `store` when one is given.
    public init(config: CollectorConfig, logger: Logger, store: (any CollectorStore)? = nil) async throws {
        guard !config.tokens.isEmpty else { throw CollectorError.noToken }
        // Here as well as in the command, so that no way of starting a collector skips it.
        try config.validate()
        self.config = config
        self.logger = logger
        inflatedBytes = InflatedBytesBudget(capacity: config.limits.maxInflatedBytesInFlight, heldGauge: metrics.inflatedBytesHeld)
        retention = try config.retention.policy
        // Before the database is opened: a broken certificate should not leave a new file behind.
        // The idle timeout also closes a connection whose request head trickles in (the timer
        // stops only once a whole head has arrived), so slow senders cannot hold descriptors.
        let http1 = HTTPServerBuilder.http1(
            configuration: .init(idleTimeout: .milliseconds(Int64(config.limits.idleTimeoutMilliseconds))))
        if let tls = try config.tls?.serverConfiguration() {
            server = try HTTPServerBuilder.tls(http1, tlsConfiguration: tls)
        } else {
            server = http1
        }
        let opened: any CollectorStore
        if let store { opened = store } else { opened = try await Self.openStore(config) }
        self.store = opened
        writer = try await IngestWriter(
            store: opened, metrics: metrics, logger: logger, maxWaitingRecords: config.limits.maxWaitingRecords,
            commitInterval: .milliseconds(config.store?.clickhouse.insertIntervalMilliseconds ?? 0))
    }

    /// The one place the collector chooses its backend: the scale-out store `config.store`
    /// names, or else the embedded SQLite file at `config.database`.
    static func openStore(_ config: CollectorConfig) async throws -> any CollectorStore {
        let ledger = ClusterLedger(snapshotSettle: .milliseconds(config.membership.snapshotSettleMilliseconds))
        if let settings = config.store {
            do {
                return try await settings.openStore(ledger: ledger)
            } catch {
                throw CollectorError.cannotOpenStore(location: "ClickHouse \(settings.clickhouse.database) and etcd", detail: "\(error)")
            }
        }
        let synchronous = try config.synchronousMode
        do {
            return try SQLiteStore(path: config.database, synchronous: synchronous, ledger: ledger)
        } catch {
            throw CollectorError.cannotOpenDatabase(path: config.database, detail: "\(error)")
        }
    }

    /// The HTTP router, separate from `run` so tests can drive it in process.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        IngestRoutes(
            writer: writer, tokens: TokenSet(config.tokens), limits: config.limits,
            wireLimits: config.wireLimits, metrics: metrics, budget: inflatedBytes
        ).register(on: router)
        EventRoutes(events: store, feed: writer.feed, tokens: TokenSet(config.tokens)).register(on: router)
        MarkRoutes(writer: writer, tokens: TokenSet(config.tokens), logger: logger).register(on: router)
        router.get("/healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        let registry = metrics.registry
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }

    /// Services that must run beside the HTTP server (the writer, the indexer, retention).
    func backgroundServices() -> [any Service] {
        // Other collectors append to a shared store's stream: their events wake consumers here too.
        let follower: [any Service] =
            config.store == nil ? [] : [EventFeedFollower(events: store, feed: writer.feed, interval: .milliseconds(200), logger: logger)]
        return follower + [
            writer,
            SearchIndexService(
                store: store, interval: .milliseconds(config.searchIndex.intervalMilliseconds),
                chunkRows: config.searchIndex.chunkRows, metrics: metrics, logger: logger),
            RetentionService(
                store: store, writer: writer, policy: retention, interval: .milliseconds(config.retention.intervalMilliseconds),
                chunkRows: config.retention.chunkRows, logger: logger),
        ]
    }

    /// The HTTP server with the writer and indexer attached; `run` runs it, tests drive it.
    public func application() -> some ApplicationProtocol {
        let portFile = config.listen.portFile
        let host = config.listen.host
        let scheme = config.tls == nil ? "http" : "https"
        let logger = self.logger
        return Application(
            router: router(),
            server: server,
            configuration: .init(
                address: .hostname(config.listen.host, port: config.listen.port), serverName: nil,
                availableConnectionsDelegate: ConnectionLimit(
                    maxConnections: config.limits.maxConnections, metrics: metrics, logger: logger)),
            services: backgroundServices(),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("collector listening", metadata: ["host": "\(host)", "port": "\(port)", "scheme": "\(scheme)"])
                if let portFile {
                    try? "\(port)\n".write(toFile: portFile, atomically: true, encoding: .utf8)
                }
            },
            logger: logger)
    }

    /// Runs until SIGTERM/SIGINT, then stops accepting, commits what was accepted and exits.
    public func run() async throws {
        let descriptors = DescriptorLimit.raiseToHard()
        logger.info(
            "descriptor limit", metadata: ["nofile": "\(descriptors)", "max_connections": "\(config.limits.maxConnections)"])
        // A service group shuts its services down last first: the event feed ends every open
        // stream before the HTTP server waits for its connections to finish, which would
        // otherwise wait forever on streams that only end when the feed does.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: application()), .init(service: writer.feed)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

public enum CollectorError: Error, CustomStringConvertible {
    case noToken
    case cannotOpenDatabase(path: String, detail: String)
    /// The scale-out store's servers did not answer, or refused to create the tables.
    case cannotOpenStore(location: String, detail: String)

    public var description: String {
        switch self {
        case .noToken:
            "no ingest token configured: set 'tokens' in the config file, MUSTER_TOKEN, or --token"
        case .cannotOpenDatabase(let path, let detail):
            "cannot open database \(path): \(detail)"
        case .cannotOpenStore(let location, let detail):
            "cannot open the store in \(location): \(detail)"
        }
    }
}

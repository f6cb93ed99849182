import Foundation
import Hummingbird
// HTTPServerBuilder and HTTP1Channel, the types HummingbirdTLS wraps, live here.
import HummingbirdCore
import HummingbirdTLS
import MusterStore
import MusterStoreSQLite
import MusterStoreScaleOut
import MusterConfigFile
import MusterWire

/// The collector's settings: from a YAML file (see collector/collector.example.yaml), then
/// environment, then flags, each overriding the one before.
public struct CollectorConfig: Codable, Sendable, Equatable {
    public var listen: Listen = .init()
    /// The SQLite file (unless `store` is set).
    public var database: String = "muster.sqlite"
    /// The scale-out store (lines in ClickHouse, the cluster state in etcd) instead of the
    /// SQLite file: docs/scale-out.md.
    public var store: ScaleOutSettings?
    /// Bearer tokens accepted on ingest. Empty means ingest is refused until one is set:
    /// an open collector would accept anyone's lines.
    public var tokens: [String] = []
    public var limits: Limits = .init()
    /// `full`: an acknowledged batch survives power loss. `normal`: it survives a crash of
    /// the process but not of the machine, and commits are cheaper.
    public var synchronous: String = "full"
    public var searchIndex: SearchIndex = .init()
    public var retention: Retention = .init()
    /// HTTPS for the whole API (ingest, the event stream, marks, metrics); absent: plain HTTP.
    public var tls: TLS?

    public struct Listen: Codable, Sendable, Equatable {
        public var host: String = "127.0.0.1"
        /// 0 picks a free port; the chosen one is logged and written to `portFile`.
        public var port: Int = 8088
        public var portFile: String?
    }

    public struct Limits: Codable, Sendable, Equatable {
        /// Largest request body accepted, as sent (compressed).
        public var maxBodyBytes: Int = 8 << 20
        /// Largest batch accepted once inflated; inflating stops at this size.
        public var maxDecompressedBytes: Int = 64 << 20
        public var maxRecordsPerBatch: Int = 100_000
        public var maxLineBytes: Int = 1 << 20
        /// Records that may wait for the writer across all requests; past it, 503 "busy".
        public var maxWaitingRecords: Int = 1_000_000
        /// Inflated batch bytes held at once across all requests (inflating, parsing, waiting
        /// for the writer); a request that would pass it waits for room, so memory is bounded
        /// by bytes, not by record count.
        public var maxInflatedBytesInFlight: Int = 256 << 20
        /// Open client connections; past it new ones wait in the listen backlog until one
        /// closes (logged and counted), so descriptors stay for the store and the connections
        /// in use.
        public var maxConnections: Int = 512
        /// A connection on which nothing usable arrives for this long is closed: no request,
        /// a request head that has not fully arrived (it counts only when complete, so a head
        /// sent a byte at a time is cut off too), or a body that stalls.
        public var idleTimeoutMilliseconds: Int = 30_000
        /// A request's whole body must arrive within this long of its head, however steadily
        /// it trickles; 408 otherwise.
        public var bodyTimeoutMilliseconds: Int = 30_000
    }

    public var membership: Membership = .init()

    public struct Membership: Codable, Sendable, Equatable {
        /// A reconciliation snapshot that contradicts a change younger than this is taken for
        /// the lag between observers' failure detection and ignored (see `ClusterLedger`).
        public var snapshotSettleMilliseconds: Int = 10_000

        enum CodingKeys: String, CodingKey {
            case snapshotSettleMilliseconds = "snapshot_settle_ms"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            snapshotSettleMilliseconds =
                try container.decodeIfPresent(Int.self, forKey: .snapshotSettleMilliseconds) ?? Self().snapshotSettleMilliseconds
        }
    }

    public struct SearchIndex: Codable, Sendable, Equatable {
        /// How often the indexer looks for unindexed rows.
        public var intervalMilliseconds: Int = 500
        /// Rows indexed per transaction of the index's own file. Larger chunks make fewer,
        /// larger index segments to merge (less CPU per line); ingest never waits for them.
        public var chunkRows: Int = 100_000
    }

    /// What is kept, and for how long (see `RetentionPolicy`). 0 means no limit.
    public struct Retention: Codable, Sendable, Equatable {
        /// Log lines older than this are pruned.
        public var logsMaxAgeHours: Int = 14 * 24
        /// Membership changes, inventories, configurations and stream events older than this
        /// are pruned, keeping each member's, node's and load balancer's latest.
        public var historyMaxAgeHours: Int = 180 * 24
        /// Past this many megabytes in use, the oldest log lines are pruned down to 90% of it.
        public var maxDatabaseMegabytes: Int = 0
        /// How often retention runs.
        public var intervalMilliseconds: Int = 60_000
        /// Rows deleted per transaction; bounds how long ingest waits behind a prune.
        public var chunkRows: Int = 10_000

        enum CodingKeys: String, CodingKey {
            case logsMaxAgeHours = "logs_max_age_hours"
            case historyMaxAgeHours = "history_max_age_hours"
            case maxDatabaseMegabytes = "max_database_mb"
            case intervalMilliseconds = "interval_ms"
            case chunkRows = "chunk_rows"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Self()
            logsMaxAgeHours = try container.decodeIfPresent(Int.self, forKey: .logsMaxAgeHours) ?? defaults.logsMaxAgeHours
            historyMaxAgeHours = try container.decodeIfPresent(Int.self, forKey: .historyMaxAgeHours) ?? defaults.historyMaxAgeHours
            maxDatabaseMegabytes = try container.decodeIfPresent(Int.self, forKey: .maxDatabaseMegabytes) ?? defaults.maxDatabaseMegabytes
            intervalMilliseconds = try container.decodeIfPresent(Int.self, forKey: .intervalMilliseconds) ?? defaults.intervalMilliseconds
            chunkRows = try container.decodeIfPresent(Int.self, forKey: .chunkRows) ?? defaults.chunkRows
        }

        /// Each setting against its range; 0 means no limit for the ages and the size.
        func check() throws(YAMLConfigFile.OutOfRange) {
            // A century of hours and a petabyte of megabytes: far past any use, and far from
            // overflowing once turned into nanoseconds and bytes.
            for (key, value) in [
                ("logs_max_age_hours", logsMaxAgeHours), ("history_max_age_hours", historyMaxAgeHours),
            ] {
                try YAMLConfigFile.check(value, in: 0...876_000, key: "retention.\(key)", note: "0: no limit")
            }
            try YAMLConfigFile.check(maxDatabaseMegabytes, in: 0...(1 << 30), key: "retention.max_database_mb", note: "0: no limit")
            try YAMLConfigFile.check(intervalMilliseconds, in: 1...CollectorConfig.dayMilliseconds, key: "retention.interval_ms")
            try YAMLConfigFile.check(chunkRows, in: 1...10_000_000, key: "retention.chunk_rows")
        }

        /// The policy, checked (see `check`).
        var policy: RetentionPolicy {
            get throws(ConfigError) {
                do {
                    try check()
                } catch {
                    throw .invalid(path: error.key, detail: error.requirement)
                }
                let hour = 3_600 * Timestamp.nanosPerSecond
                return RetentionPolicy(
                    logsMaxAge: logsMaxAgeHours > 0 ? Int64(logsMaxAgeHours) * hour : nil,
                    historyMaxAge: historyMaxAgeHours > 0 ? Int64(historyMaxAgeHours) * hour : nil,
                    maxDatabaseBytes: maxDatabaseMegabytes > 0 ? Int64(maxDatabaseMegabytes) << 20 : nil)
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case listen, database, store, tokens, limits, synchronous, membership, retention, tls
        case searchIndex = "search_index"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = CollectorConfig()
        listen = try container.decodeIfPresent(Listen.self, forKey: .listen) ?? defaults.listen
        database = try container.decodeIfPresent(String.self, forKey: .database) ?? defaults.database
        store = try container.decodeIfPresent(ScaleOutSettings.self, forKey: .store)
        tokens = try container.decodeIfPresent([String].self, forKey: .tokens) ?? defaults.tokens
        limits = try container.decodeIfPresent(Limits.self, forKey: .limits) ?? defaults.limits
        synchronous = try container.decodeIfPresent(String.self, forKey: .synchronous) ?? defaults.synchronous
        searchIndex = try container.decodeIfPresent(SearchIndex.self, forKey: .searchIndex) ?? defaults.searchIndex
        membership = try container.decodeIfPresent(Membership.self, forKey: .membership) ?? defaults.membership
        retention = try container.decodeIfPresent(Retention.self, forKey: .retention) ?? defaults.retention
        tls = try container.decodeIfPresent(TLS.self, forKey: .tls)
    }

    /// Reads a YAML file; keys left out keep their defaults.
    public static func load(path: String) throws(ConfigError) -> CollectorConfig {
        var config: CollectorConfig
        do {
            config = try YAMLConfigFile.decode(CollectorConfig.self, fromFileAt: path)
        } catch {
            switch error {
            case .unreadable(let detail): throw .unreadable(path: path, detail: detail)
            case .invalid(let detail): throw .invalid(path: path, detail: detail)
            }
        }
        // Like the agent's token_file: a relative path means next to the config file, so a
        // config directory can be moved whole.
        let directory = (path as NSString).deletingLastPathComponent
        if var tls = config.tls {
            tls.certFile = tls.certFile.map { YAMLConfigFile.path($0, relativeTo: directory) }
            tls.keyFile = tls.keyFile.map { YAMLConfigFile.path($0, relativeTo: directory) }
            config.tls = tls
        }
        config.store = config.store?.resolvingPaths(relativeTo: directory)
        return config
    }

    /// A day, the longest timeout or interval any setting takes, in milliseconds.
    static let dayMilliseconds = 86_400_000

    /// Checks every setting the collector reads, naming the key and what it may be: the
    /// command calls it once the file, the environment and the flags are merged.
    public func validate() throws(ConfigError) {
        do {
            try checkRanges()
        } catch {
            throw .invalid(path: error.key, detail: error.requirement)
        }
        for (index, token) in tokens.enumerated() {
            // A token is sent as `Authorization: Bearer TOKEN`: whitespace or a control
            // character there can never arrive intact, and "" would match nothing.
            guard !token.isEmpty, !token.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
            else {
                throw .invalid(
                    path: "tokens[\(index)]",
                    detail: token.trimmingCharacters(in: .whitespaces).isEmpty
                        ? "is empty or only whitespace: give a secret of visible characters"
                        : "contains whitespace or a control character, which a bearer token cannot carry")
            }
        }
        _ = try synchronousMode
        if let store {
            do {
                try store.validate()
            } catch {
                throw .invalid(path: "store.\(error.key)", detail: error.detail)
            }
            // Refused rather than ignored: a user who set a size expects lines to go.
            if retention.maxDatabaseMegabytes > 0 {
                throw .invalid(
                    path: "retention.max_database_mb",
                    detail: "the ClickHouse and etcd store prunes by age only (size each server's disk): set it to 0 with a store: section")
            }
        }
    }

    private func checkRanges() throws(YAMLConfigFile.OutOfRange) {
        let day = Self.dayMilliseconds
        try YAMLConfigFile.check(listen.port, in: 0...65535, key: "listen.port", note: "0 picks a free port")
        try YAMLConfigFile.check(limits.maxBodyBytes, in: 1...(1 << 30), key: "limits.max_body_bytes")
        try YAMLConfigFile.check(limits.maxDecompressedBytes, in: 1...(1 << 32), key: "limits.max_decompressed_bytes")
        try YAMLConfigFile.check(limits.maxRecordsPerBatch, in: 1...10_000_000, key: "limits.max_records_per_batch")
        try YAMLConfigFile.check(limits.maxLineBytes, in: 1...(1 << 30), key: "limits.max_line_bytes")
        try YAMLConfigFile.check(limits.maxWaitingRecords, in: 1...100_000_000, key: "limits.max_waiting_records")
        try YAMLConfigFile.check(limits.maxInflatedBytesInFlight, in: 1...(1 << 40), key: "limits.max_inflated_bytes_in_flight")
        try YAMLConfigFile.check(limits.maxConnections, in: 1...1_000_000, key: "limits.max_connections")
        try YAMLConfigFile.check(limits.idleTimeoutMilliseconds, in: 100...day, key: "limits.idle_timeout_ms")
        try YAMLConfigFile.check(limits.bodyTimeoutMilliseconds, in: 100...day, key: "limits.body_timeout_ms")
        try YAMLConfigFile.check(searchIndex.intervalMilliseconds, in: 1...day, key: "search_index.interval_ms")
        try YAMLConfigFile.check(searchIndex.chunkRows, in: 1...10_000_000, key: "search_index.chunk_rows")
        try YAMLConfigFile.check(membership.snapshotSettleMilliseconds, in: 0...day, key: "membership.snapshot_settle_ms")
        try retention.check()
    }

    var synchronousMode: Schema.Synchronous {
        get throws(ConfigError) {
            guard let mode = Schema.Synchronous(rawValue: synchronous.uppercased()) else {
                throw .invalid(path: "synchronous", detail: "must be 'full' or 'normal', not '\(synchronous)'")
            }
            return mode
        }
    }

    var wireLimits: BatchCodec.Limits {
        BatchCodec.Limits(maxRecords: limits.maxRecordsPerBatch, maxLineBytes: limits.maxLineBytes)
    }
}

extension CollectorConfig {
    /// The server's certificate and key, PEM. Both or neither: with them the collector speaks
    /// only HTTPS, so an agent cannot fall back to sending its token in the clear.
    public struct TLS: Codable, Sendable, Equatable {
        /// The server certificate, followed by any intermediates, PEM.
        public var certFile: String?
        /// Its private key, PEM (unencrypted: the collector starts unattended).
        public var keyFile: String?

        enum CodingKeys: String, CodingKey {
            case certFile = "cert_file"
            case keyFile = "key_file"
        }

        public init(certFile: String? = nil, keyFile: String? = nil) {
            self.certFile = certFile
            self.keyFile = keyFile
        }

        /// The server's TLS settings, with the files read and checked now: a missing or
        /// broken file, or a key that is not the certificate's, is a startup error rather
        /// than a failure of every connection later.
        public func serverConfiguration() throws(ConfigError) -> TLSConfiguration {
            guard let certFile, !certFile.isEmpty else {
                throw .invalid(path: "tls.cert_file", detail: "missing: TLS needs both cert_file and key_file (--tls-cert, --tls-key)")
            }
            guard let keyFile, !keyFile.isEmpty else {
                throw .invalid(path: "tls.key_file", detail: "missing: TLS needs both cert_file and key_file (--tls-cert, --tls-key)")
            }
            try Self.checkReadable(certFile, key: "tls.cert_file")
            try Self.checkReadable(keyFile, key: "tls.key_file")
            let chain: [NIOSSLCertificate]
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certFile)
            } catch {
                throw .invalid(path: "tls.cert_file", detail: "\(certFile) is not a PEM certificate (\(error))")
            }
            guard !chain.isEmpty else {
                throw .invalid(path: "tls.cert_file", detail: "\(certFile) holds no PEM certificate")
            }
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
            } catch {
                // The error says nothing about the key's bytes, only that parsing failed.
                throw .invalid(path: "tls.key_file", detail: "\(keyFile) is not an unencrypted PEM private key (\(error))")
            }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            do {
                // Builds the SSL context as the server will: this is where a key that does
                // not match the certificate is found.
                _ = try TLSChannel(HTTP1Channel(responder: { _, _, _ in }), tlsConfiguration: configuration)
            } catch {
                throw .invalid(
                    path: "tls", detail: "key_file \(keyFile) does not go with cert_file \(certFile) (\(error))")
            }
            return configuration
        }

        private static func checkReadable(_ path: String, key: String) throws(ConfigError) {
            guard FileManager.default.isReadableFile(atPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
                throw .invalid(path: key, detail: "cannot read \(path): \(reason)")
            }
        }
    }
}

extension CollectorConfig.Listen {
    enum CodingKeys: String, CodingKey {
        case host, port
        case portFile = "port_file"
    }
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? "127.0.0.1"
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? 8088
        portFile = try container.decodeIfPresent(String.self, forKey: .portFile)
    }
}

extension CollectorConfig.Limits {
    enum CodingKeys: String, CodingKey {
        case maxBodyBytes = "max_body_bytes"
        case maxDecompressedBytes = "max_decompressed_bytes"
        case maxRecordsPerBatch = "max_records_per_batch"
        case maxLineBytes = "max_line_bytes"
        case maxWaitingRecords = "max_waiting_records"
        case maxInflatedBytesInFlight = "max_inflated_bytes_in_flight"
        case maxConnections = "max_connections"
        case idleTimeoutMilliseconds = "idle_timeout_ms"
        case bodyTimeoutMilliseconds = "body_timeout_ms"
    }
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = Self()
        maxBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? defaults.maxBodyBytes
        maxDecompressedBytes =
            try container.decodeIfPresent(Int.self, forKey: .maxDecompressedBytes) ?? defaults.maxDecompressedBytes
        maxRecordsPerBatch =
            try container.decodeIfPresent(Int.self, forKey: .maxRecordsPerBatch) ?? defaults.maxRecordsPerBatch
        maxLineBytes = try container.decodeIfPresent(Int.self, forKey: .maxLineBytes) ?? defaults.maxLineBytes
        maxWaitingRecords =
            try container.decodeIfPresent(Int.self, forKey: .maxWaitingRecords) ?? defaults.maxWaitingRecords
        maxInflatedBytesInFlight =
            try container.decodeIfPresent(Int.self, forKey: .maxInflatedBytesInFlight) ?? defaults.maxInflatedBytesInFlight
        maxConnections = try container.decodeIfPresent(Int.self, forKey: .maxConnections) ?? defaults.maxConnections
        idleTimeoutMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .idleTimeoutMilliseconds) ?? defaults.idleTimeoutMilliseconds
        bodyTimeoutMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .bodyTimeoutMilliseconds) ?? defaults.bodyTimeoutMilliseconds
    }
}

extension CollectorConfig.SearchIndex {
    enum CodingKeys: String, CodingKey {
        case intervalMilliseconds = "interval_ms"
        case chunkRows = "chunk_rows"
    }
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = Self()
        intervalMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .intervalMilliseconds) ?? defaults.intervalMilliseconds
        chunkRows = try container.decodeIfPresent(Int.self, forKey: .chunkRows) ?? defaults.chunkRows
    }
}

public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, detail: String)
    case invalid(path: String, detail: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let detail): "cannot read config \(path): \(detail)"
        case .invalid(let path, let detail): "invalid config \(path): \(detail)"
        }
    }
}

import Foundation
import MusterStore
import MusterStoreClickHouse
import MusterStoreEtcd

/// The `store:` section of the collector's config (and what `logq --store` reads from it):
/// the ClickHouse cluster that holds the lines and the etcd cluster that holds the state.
///
/// ```yaml
/// store:
///   clickhouse:
///     cluster: muster
///     database: muster
///     shards:
///       - [http://ch1:8123, http://ch2:8123]
///       - [http://ch3:8123, http://ch4:8123]
///     user: muster
///     password_file: clickhouse-password
///   etcd:
///     endpoints: [http://etcd1:2379, http://etcd2:2379, http://etcd3:2379]
///     max_txn_ops: 128
/// ```
public struct ScaleOutSettings: Codable, Sendable, Equatable {
    public var clickhouse: ClickHouse
    public var etcd: Etcd

    public struct ClickHouse: Codable, Sendable, Equatable {
        /// The cluster's name in the servers' `remote_servers`.
        public var cluster: String = "muster"
        public var database: String = "muster"
        /// Per shard, its replicas' HTTP addresses, preferred first; the same order on every
        /// collector (it decides where each line lives).
        public var shards: [[String]] = []
        public var user: String?
        /// A file holding the password (its first line); relative to the config file.
        public var passwordFile: String?
        /// The longest a statement may take, in milliseconds.
        public var timeoutMilliseconds: Int = 60_000
        /// The longest a commit's statement (an identity lookup, an insert) waits for a replica
        /// to start answering before the shard's next replica is tried, in milliseconds; at most
        /// `timeoutMilliseconds`. A commit makes two per shard, one after the other: should
        /// both replicas of a shard hang, 4 × 5 s stays under agents' 30 s `collector.timeout_ms`.
        /// Also how long a reader waits for each replica's `/ping` before it reads.
        public var commitTimeoutMilliseconds: Int = 5_000
        /// The least time between the starts of a collector's commits, in milliseconds: the
        /// batches that arrive meanwhile go into the next commit, so each shard gets at most one
        /// insert per interval from each collector. Every insert into a replicated table is a part
        /// (written, registered in ZooKeeper, fetched by the other replica, merged), so fewer,
        /// larger ones cost the servers less; each batch is acknowledged up to this much later.
        public var insertIntervalMilliseconds: Int = 250

        enum CodingKeys: String, CodingKey {
            case cluster, database, shards, user
            case passwordFile = "password_file"
            case timeoutMilliseconds = "timeout_ms"
            case commitTimeoutMilliseconds = "commit_timeout_ms"
            case insertIntervalMilliseconds = "insert_interval_ms"
        }

        public init(shards: [[String]], cluster: String = "muster", database: String = "muster") {
            self.shards = shards
            self.cluster = cluster
            self.database = database
        }

        /// The client for `servers` with these timeouts (checked by `resolved`).
        func http(_ servers: ClickHouseServers) -> ClickHouseHTTP {
            ClickHouseHTTP(
                servers: servers, timeout: .milliseconds(Int64(timeoutMilliseconds)),
                commitTimeout: .milliseconds(Int64(commitTimeoutMilliseconds)))
        }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            shards = try container.decode([[String]].self, forKey: .shards)
            cluster = try container.decodeIfPresent(String.self, forKey: .cluster) ?? cluster
            database = try container.decodeIfPresent(String.self, forKey: .database) ?? database
            user = try container.decodeIfPresent(String.self, forKey: .user)
            passwordFile = try container.decodeIfPresent(String.self, forKey: .passwordFile)
            timeoutMilliseconds = try container.decodeIfPresent(Int.self, forKey: .timeoutMilliseconds) ?? timeoutMilliseconds
            commitTimeoutMilliseconds =
                try container.decodeIfPresent(Int.self, forKey: .commitTimeoutMilliseconds) ?? commitTimeoutMilliseconds
            insertIntervalMilliseconds =
                try container.decodeIfPresent(Int.self, forKey: .insertIntervalMilliseconds) ?? insertIntervalMilliseconds
        }
    }

    public struct Etcd: Codable, Sendable, Equatable {
        public var endpoints: [String] = []
        /// The keys' namespace (`/muster/<namespace>/`); the ClickHouse database's name when absent.
        public var namespace: String?
        /// At most etcd's `--max-txn-ops` (128 unless changed there).
        public var maxTxnOps: Int = 128
        /// The longest a request may take, in milliseconds.
        public var timeoutMilliseconds: Int = 10_000

        enum CodingKeys: String, CodingKey {
            case endpoints, namespace
            case maxTxnOps = "max_txn_ops"
            case timeoutMilliseconds = "timeout_ms"
        }

        public init(endpoints: [String], namespace: String? = nil) {
            self.endpoints = endpoints
            self.namespace = namespace
        }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            endpoints = try container.decode([String].self, forKey: .endpoints)
            namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
            maxTxnOps = try container.decodeIfPresent(Int.self, forKey: .maxTxnOps) ?? maxTxnOps
            timeoutMilliseconds = try container.decodeIfPresent(Int.self, forKey: .timeoutMilliseconds) ?? timeoutMilliseconds
        }
    }

    public init(clickhouse: ClickHouse, etcd: Etcd) {
        self.clickhouse = clickhouse
        self.etcd = etcd
    }

    /// The settings with a relative `password_file` made relative to `directory` (the config
    /// file's), as every path a config file names is.
    public func resolvingPaths(relativeTo directory: String) -> ScaleOutSettings {
        var settings = self
        if let file = clickhouse.passwordFile, !file.hasPrefix("/"), !directory.isEmpty {
            settings.clickhouse.passwordFile = directory + "/" + file
        }
        return settings
    }

    /// A setting that is out of its range or does not name a server: the key and why.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var key: String
        public var detail: String
        public var description: String { "store.\(key): \(detail)" }
    }

    /// The settings checked and turned into what the clients take. Reads the password file.
    func resolved() throws(Invalid) -> (servers: ClickHouseServers, etcd: EtcdClient, keys: StateKeys) {
        guard (1_000...3_600_000).contains(clickhouse.timeoutMilliseconds) else {
            throw Invalid(key: "clickhouse.timeout_ms", detail: "must be in 1000...3600000, not \(clickhouse.timeoutMilliseconds)")
        }
        guard (100...clickhouse.timeoutMilliseconds).contains(clickhouse.commitTimeoutMilliseconds) else {
            throw Invalid(
                key: "clickhouse.commit_timeout_ms",
                detail: "must be in 100...\(clickhouse.timeoutMilliseconds) (at most timeout_ms), not \(clickhouse.commitTimeoutMilliseconds)")
        }
        guard (0...5_000).contains(clickhouse.insertIntervalMilliseconds) else {
            throw Invalid(key: "clickhouse.insert_interval_ms", detail: "must be in 0...5000, not \(clickhouse.insertIntervalMilliseconds)")
        }
        guard (100...600_000).contains(etcd.timeoutMilliseconds) else {
            throw Invalid(key: "etcd.timeout_ms", detail: "must be in 100...600000, not \(etcd.timeoutMilliseconds)")
        }
        guard (4...100_000).contains(etcd.maxTxnOps) else {
            throw Invalid(key: "etcd.max_txn_ops", detail: "must be in 4...100000 (and at most etcd's --max-txn-ops), not \(etcd.maxTxnOps)")
        }
        var password: String?
        if let file = clickhouse.passwordFile {
            do {
                password = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).first
                    .map(String.init)
            } catch {
                throw Invalid(key: "clickhouse.password_file", detail: "cannot read \(file): \(error.localizedDescription)")
            }
        }
        let servers: ClickHouseServers
        do {
            servers = try ClickHouseServers(
                shards: clickhouse.shards, cluster: clickhouse.cluster, database: clickhouse.database, user: clickhouse.user,
                password: password)
        } catch {
            throw Invalid(key: "clickhouse", detail: "\(error)")
        }
        do {
            let client = try EtcdClient(endpoints: etcd.endpoints, timeout: .milliseconds(Int64(etcd.timeoutMilliseconds)))
            return (servers, client, try StateKeys(namespace: etcd.namespace ?? clickhouse.database))
        } catch {
            throw Invalid(key: "etcd", detail: "\(error)")
        }
    }

    /// Checks every setting (and that the password file can be read) without connecting.
    public func validate() throws(Invalid) {
        _ = try resolved()
    }

    /// The collector's store; creates the tables and `seq` when absent (every collector may,
    /// at every start).
    public func openStore(ledger: ClusterLedger) async throws -> ScaleOutStore {
        let (servers, client, keys) = try resolved()
        let http = clickhouse.http(servers)
        let store = ScaleOutStore(
            writer: ClickHouseLogWriter(http: http),
            state: try EtcdClusterState(client: client, keys: keys, ledger: ledger, maxTxnOps: etcd.maxTxnOps))
        try await store.create()
        return store
    }

    /// What logq reads.
    public func openHistory() throws(Invalid) -> ScaleOutHistory {
        let (servers, client, keys) = try resolved()
        let http = clickhouse.http(servers)
        return ScaleOutHistory(lines: ClickHouseLogReader(http: http), history: EtcdHistoryReader(client: client, keys: keys))
    }
}

import Foundation
import MusterStore
import MusterStoreClickHouse
import MusterStoreEtcd
import MusterStoreScaleOut
import Synchronization

/// The scale-out store as the conformance suite opens it: a database of its own on the test
/// ClickHouse cluster and a namespace of its own in the test etcd (`ScaleOutServers`), both
/// named after the test's directory, so a reader opened later finds the same store.
enum ScaleOutBackend {
    static func open(_ directory: String) async throws -> any CollectorStore {
        let running = try await ScaleOutServers.shared.servers()
        opened.withLock { $0[directory] = running }
        let (servers, etcd, keys) = try parts(directory, running)
        let store = ScaleOutStore(
            writer: ClickHouseLogWriter(http: ClickHouseHTTP(servers: servers)), state: try EtcdClusterState(client: etcd, keys: keys))
        try await store.create()
        return store
    }

    static func reader(_ directory: String) throws -> any HistoryStore {
        guard let running = opened.withLock({ $0[directory] }) else { throw StoreError.missing(location: directory) }
        let (servers, etcd, keys) = try parts(directory, running)
        let http = ClickHouseHTTP(servers: servers)
        return ScaleOutHistory(lines: ClickHouseLogReader(http: http, followSettling: .zero), history: EtcdHistoryReader(client: etcd, keys: keys))
    }

    /// Drops the test's database and its etcd keys.
    static func remove(_ directory: String) async {
        guard let running = opened.withLock({ $0.removeValue(forKey: directory) }),
            let (servers, etcd, keys) = try? parts(directory, running)
        else { return }
        try? await ClickHouseLogWriter(http: ClickHouseHTTP(servers: servers)).dropDatabase()
        try? await EtcdClusterState(client: etcd, keys: keys).removeAll()
    }

    private static let opened = Mutex<[String: ScaleOutServers.Running]>([:])

    private static func parts(_ directory: String, _ running: ScaleOutServers.Running) throws
        -> (ClickHouseServers, EtcdClient, StateKeys)
    {
        let name = "t_" + URL(fileURLWithPath: directory).lastPathComponent.filter { $0.isLetter || $0.isNumber }.suffix(24).lowercased()
        return (
            try ClickHouseServers(shards: running.shards, cluster: running.cluster, database: name),
            try EtcdClient(endpoints: running.etcd), try StateKeys(namespace: name)
        )
    }
}

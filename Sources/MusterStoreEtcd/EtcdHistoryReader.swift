import Foundation
import MusterStore
import MusterWire
import Synchronization

/// The cluster's history as logq reads it from etcd: membership, inventories, configurations,
/// marks and the event stream (`ClusterHistoryReader`).
///
/// Each call answers from the ledger's rows at one revision (one snapshot per call) with the
/// same rules as the SQLite store: "at T" is the latest row at or before T, ties
/// broken by the later row (ids are event ids, which grow in commit order). Reading never
/// writes. A namespace without `seq` is no store (`StoreError.missing`): a collector writes
/// `seq` when it first opens the store.
///
/// The rows are read once per state of the ledger: every change to it (an append, a prune)
/// writes `seq` in the same transaction, so a call reads `seq` alone and reads the rows again
/// only when `seq`'s revision moved. (`logq export` asks for the members at every task's start
/// and end; reading and decoding the whole ledger each time was half of its CPU.)
public final class EtcdHistoryReader: ClusterHistoryReader {
    let client: EtcdClient
    public let keys: StateKeys
    /// The ledger as of `seq`'s last revision seen (`LedgerCopy.revision`).
    private let latest = Mutex<LedgerCopy?>(nil)

    public init(client: EtcdClient, keys: StateKeys) {
        self.client = client
        self.keys = keys
    }

    /// Where the store is, for messages.
    public var location: String { "etcd \(client.endpoints.joined(separator: ",")) \(keys.root)" }

    public func members(at t: Int64) throws(StoreError) -> [MembershipChange] {
        try ledger().members(at: t)
    }

    public func changes(since: Int64?, until: Int64?, members: [String]) throws(StoreError) -> [MembershipChange] {
        try ledger().changes(since: since, until: until, members: members)
    }

    public func nodes(at t: Int64) throws(StoreError) -> ClusterNodes {
        let copy = try ledger()
        var inventories: [String: ReportedInventory] = [:]
        for node in copy.inventoryNodes {
            guard let row = copy.inventory(of: node, at: t),
                let inventory = try? JSONDecoder().decode(Inventory.self, from: Data(row.body.utf8))
            else { continue }
            inventories[node] = ReportedInventory(t: row.t, inventory: inventory)
        }
        return ClusterNodes(members: copy.members(at: t), inventories: inventories)
    }

    public func inventory(of node: String, at t: Int64) throws(StoreError) -> String? {
        try ledger().inventory(of: node, at: t)?.body
    }

    public func configRecords(node: String?, since: Int64?, until: Int64?, withText: Bool) throws(StoreError) -> [ConfigRecord] {
        try ledger().configRecords.filter { value in
            (node == nil || value.node == node) && value.t >= (since ?? .min) && value.t < (until ?? .max)
        }.map { $0.record(withText: withText) }
    }

    public func configTexts(version: Int, node: String?) throws(StoreError) -> [ConfigText] {
        try ledger().configRecords.filter { $0.apply.version == version && (node == nil || $0.node == node) }
            .map { ConfigText(node: $0.node, text: $0.apply.text) }
    }

    public func configVersions() throws(StoreError) -> [Int] {
        try ledger().configRecords.map(\.apply.version).sorted()
    }

    public func marks() throws(StoreError) -> [Mark] {
        try ledger().markList
    }

    public func events(since: Int64?, until: Int64?) throws(StoreError) -> [StoredEvent] {
        var events: [StoredEvent] = []
        try pages(of: keys.events, at: nil) { kv throws(EtcdError) in
            let event = try EtcdClusterState.event(kv, keys: keys)
            if event.t >= (since ?? .min), event.t < (until ?? .max) { events.append(event) }
        }
        return events.sorted { ($0.t, $0.id) < ($1.t, $1.id) }
    }

    /// The earliest and the latest time of a membership change, a configuration or a mark
    /// (clamped when read back); nil when there is none.
    public func firstInstant() throws(StoreError) -> Int64? {
        try ledger().instants.min()
    }

    public func lastInstant() throws(StoreError) -> Int64? {
        try ledger().instants.max()
    }

    /// The ledger's rows at one revision: the copy read last when `seq` has not moved since.
    func ledger() throws(StoreError) -> LedgerCopy {
        do {
            let seq = try client.rangeWaiting(keys.seq)
            guard let kv = seq.kvs.first else { throw StoreError.missing(location: location) }
            if let copy = latest.withLock({ $0 }), copy.revision == kv.modRevision { return copy }
            var copy = LedgerCopy()
            copy.seq = try EtcdClusterState.parseSeq(kv)
            copy.revision = kv.modRevision
            for prefix in keys.ledgerPrefixes {
                try pages(of: prefix, at: seq.revision) { kv throws(EtcdError) in try copy.absorb(kv, keys: keys) }
            }
            // Two calls that both read the rows: the newer copy stays.
            latest.withLock { if ($0?.revision ?? .min) < copy.revision { $0 = copy } }
            return copy
        } catch let error as StoreError {
            throw error
        } catch {
            throw .unreadable(location: location, detail: "\(error)")
        }
    }

    /// Every key under `prefix`, page by page, at `revision` (when nil, the first page's: one
    /// snapshot either way).
    private func pages(of prefix: String, at revision: Int64?, _ body: (EtcdKeyValue) throws(EtcdError) -> Void) throws(StoreError) {
        do {
            var start = prefix
            var revision = revision
            while true {
                let page = try client.rangeWaiting(
                    start, end: EtcdClient.prefixEnd(prefix), revision: revision, limit: EtcdClusterState.pageSize)
                revision = page.revision
                for kv in page.kvs { try body(kv) }
                guard page.more, let last = page.kvs.last else { return }
                start = last.key + "\u{0}"
            }
        } catch {
            throw .unreadable(location: location, detail: "\(error)")
        }
    }
}

extension ConfigValue {
    func record(withText: Bool) -> ConfigRecord {
        ConfigRecord(
            node: node, version: apply.version, t: t, sha256: apply.sha256, method: apply.method, outcome: apply.outcome,
            trigger: apply.trigger, durationMilliseconds: apply.durationMilliseconds, message: apply.message,
            servers: apply.servers, diff: apply.diff, text: withText ? apply.text : nil)
    }
}

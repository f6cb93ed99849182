import Foundation
import MusterStore
import MusterWire

/// The ledger's rows as read from etcd at one revision: what a collector interprets journal
/// lines against, and what logq's history commands answer from.
///
/// A value type: a commit applies the rules to a copy (`LedgerWrites`) and keeps it only when
/// etcd took the commit's transaction. Its orders are the ones `LedgerRows` states: a member's
/// changes by time then id, and ids are event ids, which grow in commit order.
struct LedgerCopy: Sendable {
    /// The newest event id, and the `mod_revision` of `seq` that says which commits this copy
    /// holds (0 for an empty store).
    var seq: Int64 = 0
    var revision: Int64 = 0
    /// Each member's changes, by time then id.
    private(set) var membership: [String: [MembershipChange]] = [:]
    /// Each node's inventories, by time then event.
    private(set) var inventory: [String: [InventoryValue]] = [:]
    /// Each load balancer's configurations by version.
    private(set) var configs: [String: [Int: ConfigValue]] = [:]
    private(set) var marks: [String: Mark] = [:]

    // MARK: Changing

    mutating func put(_ change: MembershipChange) {
        Self.place(change, in: &membership[change.member, default: []], key: { ($0.t, $0.id) })
    }

    mutating func put(_ value: InventoryValue) {
        Self.place(value, in: &inventory[value.node, default: []], key: { ($0.t, $0.event) })
    }

    /// Puts `row` into `rows` (ordered by `key`: time, then id), replacing the row with its id.
    private static func place<Row>(_ row: Row, in rows: inout [Row], key: (Row) -> (Int64, Int64)) {
        rows.removeAll { key($0).1 == key(row).1 }
        rows.insert(row, at: rows.firstIndex { key($0) > key(row) } ?? rows.endIndex)
    }

    mutating func put(_ value: ConfigValue) {
        configs[value.node, default: [:]][value.apply.version] = value
    }

    mutating func put(_ mark: Mark) {
        marks[mark.name] = mark
    }

    mutating func removeChange(of member: String, id: Int64) {
        membership[member]?.removeAll { $0.id == id }
        if membership[member]?.isEmpty == true { membership[member] = nil }
    }

    mutating func removeInventory(of node: String, event: Int64) {
        inventory[node]?.removeAll { $0.event == event }
        if inventory[node]?.isEmpty == true { inventory[node] = nil }
    }

    mutating func removeConfig(of node: String, version: Int) {
        configs[node]?[version] = nil
        if configs[node]?.isEmpty == true { configs[node] = nil }
    }

    /// Takes in a row read from etcd (a key under one of `keys.ledgerPrefixes`). Rows read back
    /// are outside input: one that does not decode, or whose key is not the one its value
    /// would be stored under, is an error naming its key, never a trap or a row filed wrongly
    /// (pruning deletes rows by the key their value gives).
    mutating func absorb(_ kv: EtcdKeyValue, keys: StateKeys) throws(EtcdError) {
        func check(_ expected: String) throws(EtcdError) {
            guard kv.key == expected else {
                throw .unexpectedAnswer(endpoint: "etcd", detail: "\(kv.key) holds a row that belongs under \(expected)")
            }
        }
        if kv.key.hasPrefix(keys.membership) {
            var change = try StateValue.decode(MembershipChange.self, kv)
            try check(keys.membership(change.member, event: change.id))
            change.t = Timestamp.clamped(change.t)
            put(change)
        } else if kv.key.hasPrefix(keys.inventory) {
            var value = try StateValue.decode(InventoryValue.self, kv)
            try check(keys.inventory(value.node, event: value.event))
            value.t = Timestamp.clamped(value.t)
            put(value)
        } else if kv.key.hasPrefix(keys.configs) {
            var value = try StateValue.decode(ConfigValue.self, kv)
            try check(keys.config(value.node, version: value.apply.version))
            value.t = Timestamp.clamped(value.t)
            put(value)
        } else if kv.key.hasPrefix(keys.marks) {
            let value = try StateValue.decode(MarkValue.self, kv)
            try check(keys.mark(value.name))
            put(Mark(id: value.event, name: value.name, t: Timestamp.clamped(value.t), note: value.note, event: value.event))
        }
    }

    // MARK: Reading

    /// The member's latest change at or before `t`.
    func state(of member: String, at t: Int64) -> MembershipChange? {
        membership[member]?.last { $0.t <= t }
    }

    func nextChange(of member: String, after t: Int64) -> MembershipChange? {
        membership[member]?.first { $0.t > t }
    }

    /// Every member's latest change at or before `t` (reaped members left out), by name.
    func members(at t: Int64) -> [MembershipChange] {
        membership.keys.sorted().compactMap { member in
            guard let state = state(of: member, at: t), state.status != .reaped else { return nil }
            return state
        }
    }

    /// Every change in [since, until) of `members` (all when empty), by time then id.
    func changes(since: Int64?, until: Int64?, members: [String]) -> [MembershipChange] {
        let chosen = members.isEmpty ? Array(membership.values) : members.compactMap { membership[$0] }
        return chosen.joined().filter { $0.t >= (since ?? .min) && $0.t < (until ?? .max) }.sorted { ($0.t, $0.id) < ($1.t, $1.id) }
    }

    /// `node`'s latest inventory at or before `t`.
    func inventory(of node: String, at t: Int64 = .max) -> InventoryValue? {
        inventory[node]?.last { $0.t <= t }
    }

    var inventoryNodes: [String] { Array(inventory.keys) }

    /// Every configuration record, by time then event.
    var configRecords: [ConfigValue] {
        configs.values.flatMap(\.values).sorted { ($0.t, $0.event) < ($1.t, $1.event) }
    }

    /// The times of every membership change, configuration and mark.
    var instants: [Int64] {
        membership.values.joined().map(\.t) + configs.values.flatMap(\.values).map(\.t) + marks.values.map(\.t)
    }

    /// The marks, oldest first.
    var markList: [Mark] {
        marks.values.sorted { ($0.t, $0.id) < ($1.t, $1.id) }
    }
}

/// A stream event as stored under `events/<id>`.
struct StoredEventValue: Codable, Equatable {
    var t: Int64
    var kind: String
    var body: String
}

/// A node's inventory as stored under `inventory/<node>/<event>`: `body` is the canonical JSON
/// of `Inventory`, as the SQLite store keeps it.
struct InventoryValue: Codable, Equatable, Sendable {
    var node: String
    var t: Int64
    var body: String
    var event: Int64
}

/// A load balancer's configuration record as stored under `configs/<node>/<version>`.
struct ConfigValue: Codable, Equatable, Sendable {
    var node: String
    var t: Int64
    var event: Int64
    var apply: ConfigApply
}

/// A mark as stored under `marks/<name>`; its id is its event's.
struct MarkValue: Codable, Equatable {
    var name: String
    var t: Int64
    var note: String
    var event: Int64
}

/// Values to and from etcd: JSON with sorted keys.
enum StateValue {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value here is plain strings and integers, which always encode.
        return Array((try? encoder.encode(value)) ?? Data())
    }

    static func decode<T: Decodable>(_ type: T.Type, _ kv: EtcdKeyValue) throws(EtcdError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(kv.value))
        } catch {
            throw .unexpectedAnswer(endpoint: "etcd", detail: "the value of \(kv.key) is not a \(type): \(error)")
        }
    }
}

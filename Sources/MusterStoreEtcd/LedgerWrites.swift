import MusterStore
import MusterWire

/// `ClusterLedger`'s rules applied to a copy of the ledger, with the etcd writes that make the
/// same changes: the success branch of one commit's transaction.
///
/// Event ids continue from the copy's `seq`; `finish()` adds the write of `seq` itself, which
/// every commit makes (even one that appended no event), so that any two commits are ordered
/// by the compare on its revision.
struct LedgerWrites: LedgerRows {
    private(set) var copy: LedgerCopy
    /// The value each key is given, in the order first written: etcd refuses a transaction
    /// that writes one key twice (a change recorded and moved back in the same commit).
    private var values: [String: [UInt8]] = [:]
    private var order: [String] = []
    let keys: StateKeys

    init(copy: LedgerCopy, keys: StateKeys) {
        self.copy = copy
        self.keys = keys
    }

    /// Events appended so far.
    var appendedEvents = 0

    func state(of member: String, at t: Int64) -> MembershipChange? { copy.state(of: member, at: t) }

    func nextChange(of member: String, after t: Int64) -> MembershipChange? { copy.nextChange(of: member, after: t) }

    func members(seenAt address: String, except: String, until t: Int64) -> [String] {
        copy.membership.compactMap { member, changes in
            member != except && changes.contains { $0.address == address && $0.t <= t } ? member : nil
        }.sorted()
    }

    func latestInventory(of node: String) -> String? { copy.inventory(of: node)?.body }

    mutating func appendEvent(kind: EventKind, t: Int64, body: String) -> Int64 {
        copy.seq += 1
        appendedEvents += 1
        write(keys.event(copy.seq), value: StateValue.encode(StoredEventValue(t: t, kind: kind.rawValue, body: body)))
        return copy.seq
    }

    mutating func insertChange(_ change: MembershipChange) {
        var change = change
        change.id = change.event
        put(change)
    }

    mutating func moveChange(id: Int64, of member: String, to t: Int64, observer: String, cause: String) {
        guard var change = copy.membership[member]?.first(where: { $0.id == id }) else { return }
        change.t = t
        change.observer = observer
        change.cause = cause
        put(change)
    }

    mutating func insertInventory(node: String, t: Int64, body: String, event: Int64) {
        let value = InventoryValue(node: node, t: t, body: body, event: event)
        copy.put(value)
        write(keys.inventory(node, event: event), value: StateValue.encode(value))
    }

    mutating func putConfig(_ config: ConfigApply, node: String, t: Int64, event: Int64) {
        let value = ConfigValue(node: node, t: t, event: event, apply: config)
        copy.put(value)
        write(keys.config(node, version: config.version), value: StateValue.encode(value))
    }

    /// Records a mark (its id is its event's).
    mutating func putMark(_ mark: Mark) {
        copy.put(mark)
        write(keys.mark(mark.name), value: StateValue.encode(MarkValue(name: mark.name, t: mark.t, note: mark.note, event: mark.event)))
    }

    /// Marks a journal line interpreted.
    mutating func putJournalKey(_ key: String) {
        write(key, value: [UInt8]())
    }

    /// How many writes the transaction has so far (`seq`'s not counted).
    var writeCount: Int { order.count }

    /// The bytes of their keys and values.
    private(set) var byteCount = 0

    /// The transaction's writes: the changes, then `seq`.
    func finish() -> [EtcdOperation] {
        order.map { EtcdOperation.put($0, value: values[$0]!) } + [.put(keys.seq, value: Array(String(copy.seq).utf8))]
    }

    private mutating func write(_ key: String, value: [UInt8]) {
        if let replaced = values.updateValue(value, forKey: key) {
            byteCount += value.count - replaced.count
        } else {
            order.append(key)
            byteCount += key.utf8.count + value.count
        }
    }

    private mutating func put(_ change: MembershipChange) {
        copy.put(change)
        write(keys.membership(change.member, event: change.id), value: StateValue.encode(change))
    }
}

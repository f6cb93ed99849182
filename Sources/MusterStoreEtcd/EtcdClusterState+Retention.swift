import MusterStore
import MusterWire

/// Pruning the cluster state by age, with the SQLite store's rules: history rows (membership
/// changes, inventories, configurations) before the cutoff go, except each member's, node's
/// and load balancer's latest one before it, so the state at every kept instant answers as
/// before; events before the cutoff go unless a kept row or a mark points at them; marks stay.
extension EtcdClusterState {
    /// Deletes up to `maxRows` history rows and events before `cutoff` in one transaction
    /// (at most `maxTxnOps` − 2 deletions); `more` when a full chunk was deleted.
    public func pruneHistory(before cutoff: Int64, maxRows: Int) async throws(EtcdError) -> (rows: Int, more: Bool) {
        // Two more writes: `pruned` and `seq`.
        let budget = max(1, min(maxRows, maxTxnOps - 2))
        for _ in 0..<Self.maxAttempts {
            try await catchUp()
            // The copy as of now: other calls on this actor may change `copy` while this one
            // awaits, and the transaction must compare the revision these rows are of.
            let base = copy
            var pruned = base
            var deletions: [String] = []
            for (member, changes) in base.membership {
                for change in Self.superseded(changes, before: cutoff, time: \.t) where deletions.count < budget {
                    deletions.append(keys.membership(member, event: change.id))
                    pruned.removeChange(of: member, id: change.id)
                }
            }
            for (node, rows) in base.inventory {
                for row in Self.superseded(rows, before: cutoff, time: \.t) where deletions.count < budget {
                    deletions.append(keys.inventory(node, event: row.event))
                    pruned.removeInventory(of: node, event: row.event)
                }
            }
            for (node, versions) in base.configs {
                let byTime = versions.values.sorted { ($0.t, $0.event) < ($1.t, $1.event) }
                for value in Self.superseded(byTime, before: cutoff, time: \.t) where deletions.count < budget {
                    deletions.append(keys.config(node, version: value.apply.version))
                    pruned.removeConfig(of: node, version: value.apply.version)
                }
            }
            if deletions.count < budget {
                deletions += try await unreferencedEvents(before: cutoff, in: pruned, limit: budget - deletions.count)
            }
            guard !deletions.isEmpty else { return (0, false) }
            let result = try await client.txn(
                compare: [.modRevision(keys.seq, equals: base.revision)],
                // `seq` is written again (same value) so that every other collector's next
                // commit fails its compare and reads the ledger anew (`pruned` tells it to).
                success: deletions.map { .delete($0) } + [.put(keys.pruned, value: [UInt8]()), .put(keys.seq, value: String(base.seq))])
            if result.succeeded {
                adopt(pruned, at: result.revision)
                return (deletions.count, deletions.count == budget)
            }
            stale = true
        }
        throw .contended(attempts: Self.maxAttempts, what: "pruning history")
    }

    /// Forgets which journal lines were interpreted on days wholly before `cutoff`: a line
    /// resent after that is interpreted again, as the SQLite store does once the line is pruned.
    public nonisolated func pruneJournal(before cutoff: Int64) async throws(EtcdError) {
        let day = Timestamp.clamped(cutoff) / (86_400 * Timestamp.nanosPerSecond)
        guard day > 0 else { return }
        _ = try await client.txn(compare: [], success: [.deleteRange(keys.journal, end: keys.journalDay(day))])
    }

    /// The rows of one subject before `cutoff` except the latest of them (rows in time order).
    static func superseded<Row>(_ rows: [Row], before cutoff: Int64, time: KeyPath<Row, Int64>) -> ArraySlice<Row> {
        let before = rows.prefix { $0[keyPath: time] < cutoff }
        return before.dropLast()
    }

    /// Keys of events before `cutoff` that no row of `ledger` and no mark points at. Read at
    /// the newest revision, not the ledger's (which etcd may have compacted in a quiet
    /// cluster): events change only with `seq`, which the prune's transaction compares.
    private func unreferencedEvents(before cutoff: Int64, in ledger: LedgerCopy, limit: Int) async throws(EtcdError) -> [String] {
        var referenced = Set(ledger.markList.map(\.event))
        referenced.formUnion(ledger.membership.values.joined().map(\.event))
        referenced.formUnion(ledger.inventory.values.joined().map(\.event))
        referenced.formUnion(ledger.configs.values.flatMap(\.values).map(\.event))
        var found: [String] = []
        var start = keys.events
        let end = EtcdClient.prefixEnd(keys.events)
        while found.count < limit {
            let page = try await client.range(start, end: end, limit: Self.pageSize)
            for kv in page.kvs where found.count < limit {
                let event = try Self.event(kv, keys: keys)
                if event.t < cutoff, !referenced.contains(event.id) { found.append(kv.key) }
            }
            guard page.more, let last = page.kvs.last else { break }
            start = last.key + "\u{0}"
        }
        return found
    }
}

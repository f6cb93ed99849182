import Foundation
import GRDB
import LogQuery
import MusterStore
import MusterStoreClickHouse
import MusterStoreEtcd
import MusterStoreSQLite
import MusterWire

extension FuzzTarget {
    /// Lines from the `events` source: each is decoded and range-checked as the collector does,
    /// and the entries that pass are applied to the membership ledger, then read back as logq
    /// reads them. Every input starts from the same empty store (its transaction is rolled back).
    static let journal = FuzzTarget(
        name: "journal", maxLength: 4096, summary: "JournalEntry.decode, then ClusterLedger.apply and members(at:) on an in-memory store"
    ) { input in
        let entries = input.text.split(separator: "\n").compactMap { try? JournalEntry.decode(line: String($0)) }
        guard !entries.isEmpty else { return }
        do {
            try journalStore.inDatabase { db in
                try db.inTransaction {
                    try ClusterLedger().apply(entries, in: db)
                    for entry in entries {
                        for member in try ClusterLedger.members(at: entry.t, in: db) {
                            precondition(member.t <= entry.t, "members(at: \(entry.t)) gave a change at \(member.t)")
                        }
                    }
                    return .rollback
                }
            }
        } catch {
            // A refused write is an answer; only a trap is a finding.
        }
    }

    /// Migrated once per process; each input's changes are rolled back.
    private static let journalStore: DatabaseQueue = {
        do {
            let store = try DatabaseQueue()
            try Schema.migrator().migrate(store)
            return store
        } catch {
            fatalError("cannot create the in-memory store: \(error)")
        }
    }()

    /// Rows read back from ClickHouse (another collector's version wrote them, or something
    /// else answered in ClickHouse's place): decoded as the readers decode them, and what is
    /// decoded is used as logq uses a line.
    static let clickhouseAnswer = FuzzTarget(
        name: "clickhouse-answer", maxLength: 2048, summary: "ClickHouseAnswer.lines (JSONEachRow rows of the scale-out store's lines)"
    ) { input in
        guard let lines = try? ClickHouseAnswer.lines(Array(input)) else { return }
        for line in lines {
            _ = try? TextMatch(line.message)
            precondition(line.fields == nil || !line.fields!.isEmpty, "an empty fields column must read as no fields")
        }
    }

    /// Answers of etcd's HTTP/JSON gateway (another etcd version, or something else answering in
    /// its place): the same bytes decoded as a range's answer, as a txn's and as a watch
    /// stream's line, and what decodes checked against the promises `EtcdKeyValue`, `EtcdRange`
    /// and `EtcdWatchMessage` make.
    static let etcdAnswer = FuzzTarget(
        name: "etcd-answer", maxLength: 2048, summary: "EtcdAnswer.range, .txn and .watch (the etcd gateway's JSON answers)"
    ) { input in
        let bytes = Array(input)
        if let message = try? EtcdAnswer.watch(bytes, from: "fuzz") {
            for (change, next) in zip(message.changes, message.changes.dropFirst()) {
                precondition(change.modRevision <= next.modRevision, "changes out of revision order")
            }
            for change in message.changes {
                precondition(1 <= change.modRevision && change.modRevision <= message.revision, "\(change) after revision \(message.revision)")
                if let kv = change.kv { precondition(kv.key == change.key && kv.modRevision == change.modRevision, "\(change) disagrees with its kv") }
            }
        }
        var ranges = (try? EtcdAnswer.txn(bytes, from: "fuzz"))?.ranges.compactMap { $0 } ?? []
        if let range = try? EtcdAnswer.range(bytes, from: "fuzz") { ranges.append(range) }
        for range in ranges {
            precondition(range.count >= range.kvs.count, "count \(range.count) below \(range.kvs.count) keys")
            for (kv, next) in zip(range.kvs, range.kvs.dropFirst()) {
                precondition(Array(kv.key.utf8).lexicographicallyPrecedes(Array(next.key.utf8)), "keys out of order")
            }
            for kv in range.kvs {
                precondition(kv.version >= 1 && 1 <= kv.createRevision && kv.createRevision <= kv.modRevision, "\(kv) cannot exist")
                precondition(kv.modRevision <= range.revision, "\(kv) written after revision \(range.revision)")
            }
        }
    }

    /// What `--since`, `--until`, `--at` and the other time options of logq accept.
    static let logqTime = FuzzTarget(
        name: "logq-time", maxLength: 64, summary: "TimeExpression.parse (logq's time options) in UTC and in a zone with DST"
    ) { input in
        let text = input.text
        for zone in logqTimeZones {
            guard let nanos = try? TimeExpression.parse(text, now: receivedAt, timeZone: zone) else { continue }
            precondition(Timestamp.supportedRange.contains(nanos), "'\(text)' parsed to \(nanos), outside the supported range")
        }
    }

    private static let logqTimeZones = [TimeZone(identifier: "UTC"), TimeZone(identifier: "Europe/Berlin")].compactMap { $0 }
}

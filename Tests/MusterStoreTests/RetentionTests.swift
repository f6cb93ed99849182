import Foundation
import GRDB
import MusterWire
import Testing

@testable import MusterStore
@testable import MusterStoreSQLite

/// Pruning by age and by size: logs first, history kept longer and never so that an answer
/// about the kept period changes.
@Suite struct RetentionTests {
    let path: String
    let pool: DatabasePool
    static let second = Timestamp.nanosPerSecond

    init() throws {
        (path, pool) = try temporaryStore("retention")
    }

    /// `count` lines, one a second from t = 1 s, with words to search for.
    func insertLines(_ count: Int64) throws {
        let records = (0..<count).map { i in
            LogRecord(
                time: (i + 1) * Self.second, node: "s1", origin: Origin(agent: "a", source: "webapp", generation: "g", offset: i),
                message: "request \(i) word\(i % 10) " + String(repeating: "padding ", count: 20))
        }
        _ = try pool.write { db in try LogWriter.insert([records], into: db) }
        let index = try SearchIndex(storePath: path)
        while try index.indexNextChunk(maxRows: 10_000).pending > 0 {}
    }

    func count(_ sql: String) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: sql) ?? 0 }
    }

    func meta(_ key: String) throws -> Int64? {
        try pool.read { db in try db.meta(key) }
    }

    func prune(_ policy: RetentionPolicy, now: Int64, chunk: Int = 1_000) throws -> (logs: Int, history: Int) {
        var total = (logs: 0, history: 0)
        var trimming = false
        while true {
            let continuing = trimming
            let progress = try pool.write { db in
                try Retention.pruneChunk(policy, now: now, maxRows: chunk, trimming: continuing, in: db)
            }
            total.logs += progress.logRows
            total.history += progress.historyRows
            if !progress.more { return total }
            trimming = true
        }
    }

    @Test func logsOlderThanTheAgeAreGoneAndSearchesNoLongerFindThem() throws {
        try insertLines(5_000)
        let pruned = try prune(RetentionPolicy(logsMaxAge: 1_000 * Self.second), now: 5_001 * Self.second)
        #expect(pruned.logs == 4_000)
        #expect(try count("SELECT count(*) FROM logs") == 1_000)
        #expect(try count("SELECT min(t) FROM logs") == 4_001 * Int(Self.second))
        // A word of every tenth line: its pruned lines are still in the index's partition (it
        // goes whole, once all its rows are pruned) but a search finds only the kept ones.
        var filter = LogFilter()
        filter.match = "word3"
        var found: [Int64] = []
        try SQLiteHistoryReader(path: path).scan(filter) { found.append($0.offset) }
        #expect(found.count == 100 && found.allSatisfy { $0 >= 4_000 })
        #expect(try meta(MetaKey.prunedLogRows) == 4_000)
        #expect(try meta(MetaKey.prunedLogsBefore) == 4_001 * Self.second)
        #expect(try meta(MetaKey.lastPruneAt) == 5_001 * Self.second)
    }

    @Test func overTheSizeLimitTheOldestLinesGoUntilBelowTheTarget() throws {
        try insertLines(20_000)
        let used = try pool.read { db in try Retention.usedBytes(db) }
        let limit = used / 2
        let pruned = try prune(RetentionPolicy(maxDatabaseBytes: limit), now: 30_000 * Self.second)
        let after = try pool.read { db in try Retention.usedBytes(db) }
        #expect(after <= Int64(Double(limit) * 0.9), "used \(after) of a \(limit) limit")
        // Oldest first, and not everything: the newest lines stay.
        #expect(pruned.logs > 0 && pruned.logs < 20_000)
        #expect(try count("SELECT max(t) FROM logs") == 20_000 * Int(Self.second))
        #expect(try count("SELECT count(*) FROM logs") == 20_000 - pruned.logs)
        #expect(try count("SELECT min(t) FROM logs") == (pruned.logs + 1) * Int(Self.second))
    }

    @Test func historyKeepsEachMembersLatestSoAnswersAboutTheKeptPeriodStay() throws {
        func entry(_ event: JournalEvent, _ name: String, _ t: Int64) -> JournalEntry {
            JournalEntry(t: t * Self.second, event: event, observer: "ha", member: Member(name: name, address: "10.0.0.\(name.dropFirst())", role: "web", tags: [:]))
        }
        try pool.write { db in
            _ = try ClusterLedger().apply(
                [entry(.memberJoin, "s1", 10), entry(.memberJoin, "s2", 20), entry(.memberLeave, "s2", 30), entry(.memberJoin, "s2", 40),
                 entry(.memberJoin, "s4", 450), entry(.memberFailed, "s4", 550), entry(.memberJoin, "s3", 500)], in: db)
            _ = try Mark.record(name: "task-0", note: "", at: 5 * Self.second, in: db)
        }
        let instants: [Int64] = [500, 520, 549, 550, 600].map { $0 * Self.second }
        let before = try instants.map { t in try pool.read { db in try ClusterLedger.members(at: t, in: db) } }
        // The cutoff is 500 s: s2's join at 20 and leave at 30 go; s1's only row, s2's latest
        // before the cutoff, s4's join at 450 (its state until it fails at 550) and every
        // later row stay.
        let pruned = try prune(RetentionPolicy(historyMaxAge: 100 * Self.second), now: 600 * Self.second)
        #expect(pruned.history >= 2)
        #expect(try count("SELECT count(*) FROM membership") == 5)
        let after = try instants.map { t in try pool.read { db in try ClusterLedger.members(at: t, in: db) } }
        #expect(after == before, "members at an instant after the cutoff changed")
        #expect(after[1].contains { $0.member == "s4" && $0.status == .alive })
        // Every kept row still has its event; the mark and its event stay.
        #expect(try count("SELECT count(*) FROM membership WHERE event NOT IN (SELECT id FROM events)") == 0)
        #expect(try count("SELECT count(*) FROM marks") == 1)
        #expect(try count("SELECT count(*) FROM events WHERE kind = 'mark'") == 1)
        #expect(try meta(MetaKey.prunedHistoryRows) == Int64(pruned.history))
    }

    @Test func theNewestRowStaysSoIdsAreNeverHandedOutAgain() throws {
        try insertLines(100)
        let newest = try count("SELECT max(id) FROM logs")
        _ = try prune(RetentionPolicy(logsMaxAge: Self.second), now: 1_000_000 * Self.second)
        #expect(try count("SELECT count(*) FROM logs") == 1)
        #expect(try count("SELECT max(id) FROM logs") == newest)
    }

    @Test func aStoreUnderItsSizeLimitIsNotTrimmed() throws {
        try insertLines(5_000)
        let used = try pool.read { db in try Retention.usedBytes(db) }
        // Above 90% of the limit but below it: nothing goes.
        let pruned = try prune(RetentionPolicy(maxDatabaseBytes: Int64(Double(used) / 0.95)), now: 10_000 * Self.second)
        #expect(pruned.logs == 0)
    }

    @Test func noPolicyPrunesNothing() throws {
        try insertLines(100)
        #expect(try prune(RetentionPolicy(), now: 1_000_000 * Self.second) == (0, 0))
        #expect(try count("SELECT count(*) FROM logs") == 100)
    }
}

import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

@Suite struct HistogramTests {
    let store: QueryStoreFixture
    let minute = 60 * Timestamp.nanosPerSecond

    init() throws {
        store = try QueryStoreFixture()
        // s1: 3 lines in minute 0, none in minute 1, 1 in minute 2; s2: 1 line in minute 0 (an error).
        try store.lines("s1", [(0, "a"), (10, "b"), (59, "request failed"), (150, "c")])
        try store.lines("s2", [(30, "GET / 503 1.0ms")])
    }

    func histogram(
        _ by: String = "1m", since: Int64? = nil, until: Int64? = nil, nodes: [String] = [], errors: Bool = false
    ) throws -> Histogram {
        try Histogram.build(
            store: try store.reader(), interval: try Histogram.parseInterval(by), since: since, until: until, nodes: nodes,
            errorsOnly: errors, now: QueryStoreFixture.at(200))
    }

    @Test func oneBucketPerIntervalEmptyOnesIncluded() throws {
        let histogram = try histogram()
        #expect(histogram.nodes == ["s1", "s2"])
        #expect(histogram.buckets.map(\.start) == [0, 1, 2].map { QueryStoreFixture.base + $0 * minute })
        #expect(histogram.buckets.map(\.counts) == [[3, 1], [0, 0], [1, 0]])
        #expect(try self.histogram("30s").buckets.map(\.total) == [2, 2, 0, 0, 0, 1])
        #expect(try self.histogram(nodes: ["s2"]).buckets.map(\.counts) == [[1]])
        #expect(try self.histogram(errors: true).buckets.map(\.counts) == [[1, 1]])
    }

    @Test func sinceAndUntilBoundTheRange() throws {
        let bounded = try histogram(since: QueryStoreFixture.at(10), until: QueryStoreFixture.at(60))
        #expect(bounded.buckets.map(\.counts) == [[2, 1]], "from 10 s (in minute 0) to 60 s exclusive")
        let toNow = try histogram(since: QueryStoreFixture.at(120))
        #expect(toNow.buckets.map(\.counts) == [[1], [0]], "minutes 2 and 3: without --until it runs to now (200 s)")
        #expect(toNow.nodes == ["s1"], "the nodes with lines in range")
        #expect(try histogram(since: QueryStoreFixture.at(1_000), until: QueryStoreFixture.at(1_060)).buckets.map(\.total) == [0, 0])
    }

    @Test func numbersAndPicture() throws {
        let histogram = try histogram()
        #expect(histogram.table().render(.csv) == [
            "time,node,lines", "2026-11-22T10:00:00.000000000Z,s1,3", "2026-11-22T10:00:00.000000000Z,s2,1",
            "2026-11-22T10:01:00.000000000Z,s1,0", "2026-11-22T10:01:00.000000000Z,s2,0", "2026-11-22T10:02:00.000000000Z,s1,1",
            "2026-11-22T10:02:00.000000000Z,s2,0",
        ])
        #expect(try self.histogram(errors: true).table().columns == ["time", "node", "errors"])
        let text = histogram.textLines(colors: nil, barWidth: 8)
        #expect(text == [
            "TIME                            LINES            █ s1  ▓ s2",
            "2026-11-22T10:00:00.000000000Z      4  ██████▓▓     3     1",
            "2026-11-22T10:01:00.000000000Z      0               0     0",
            "2026-11-22T10:02:00.000000000Z      1  ██           1     0",
        ])
        let painted = histogram.textLines(colors: NodeColors(), barWidth: 8)
        #expect(painted[1].contains("\u{1B}[34m██████\u{1B}[0m\u{1B}[32m██\u{1B}[0m"), "s1 blue, s2 green, stacked")
    }

    @Test func intervalsAndLimits() throws {
        #expect(try Histogram.parseInterval("30s") == 30 * Timestamp.nanosPerSecond)
        #expect(try Histogram.parseInterval("1h") == 3_600 * Timestamp.nanosPerSecond)
        for bad in ["", "0s", "1x", "-1m", "m"] {
            #expect(throws: QueryError.self, "\(bad)") { try Histogram.parseInterval(bad) }
        }
        #expect(throws: QueryError.self) { try histogram("1ms") }
        #expect(throws: QueryError.unknownNode("s9", known: ["s1", "s2"])) { try histogram(nodes: ["s9"]) }
    }
}

@Suite struct StoreStatsTests {
    let store: QueryStoreFixture

    init() throws {
        store = try QueryStoreFixture()
        try store.lines("s1", [(0, "12345"), (3_000, "héllo")])  // 5 + 6 bytes
        try store.lines("s1", source: "serf", [(3_590, "x")])
        try store.lines("s2", [(3_570, "abc"), (3_599, "de")])
    }

    func stats() throws -> StoreStats {
        try StoreStats.read(try store.reader(), now: QueryStoreFixture.at(3_600))
    }

    @Test func linesAndBytesPerNodeAndSource() throws {
        let stats = try stats()
        #expect(stats.sources.map { [$0.node, $0.source, String($0.lines), String($0.bytes)] } == [
            ["s1", "serf", "1", "1"], ["s1", "webapp", "2", "11"], ["s2", "webapp", "2", "5"],
        ])
        #expect(stats.lines == 5 && stats.bytes == 17)
        #expect(stats.sourceTable().rows[1][4] == .text(Timestamp.format(QueryStoreFixture.at(0))))
    }

    @Test func ingestRateAndIndexLag() throws {
        var stats = try stats()
        #expect(stats.linesLastMinute == 3, "3570, 3590 and 3599 s are within a minute of 3600 s")
        #expect(stats.linesLastHour == 5)
        #expect(stats.ratePerSecondLastMinute == 0.05)
        #expect(stats.notIndexed == 5 && stats.indexedThrough == 0)
        try store.indexAll()
        try store.lines("s2", source: "late", [(3_600, "new")])
        stats = try self.stats()
        #expect(stats.notIndexed == 1 && stats.indexedThrough == 5)
        #expect(stats.summaryTable(readable: false).rows.first { $0[0] == .text("search_index_lag_rows") }?[1] == .integer(1))
    }

    @Test func sizeAndRetention() throws {
        var stats = try stats()
        let pages = try store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")! }
        #expect(stats.databaseBytes == pages && pages > 0)
        let wal = try FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? Int64
        #expect(stats.walBytes == wal && stats.walBytes > 0)
        #expect(stats.prunedLogRows == 0 && stats.prunedHistoryRows == 0 && stats.prunedLogsBefore == nil && stats.lastPruneAt == nil)
        let readable = stats.summaryTable(readable: true)
        #expect(readable.rows.first { $0[0] == .text("last_prune_at") }?[1] == .text("never"))
        #expect(stats.table().rows.first { $0[0] == .text("last_prune_at") } == [.text("last_prune_at"), .null, .null, .null])

        try store.pool.write { db in
            try db.setMeta(MetaKey.prunedLogRows, 1_234)
            try db.setMeta(MetaKey.prunedHistoryRows, 56)
            try db.setMeta(MetaKey.prunedLogsBefore, QueryStoreFixture.at(-86_400))
            try db.setMeta(MetaKey.lastPruneAt, QueryStoreFixture.at(3_000))
        }
        stats = try self.stats()
        #expect(stats.prunedLogRows == 1_234 && stats.prunedHistoryRows == 56)
        #expect(stats.prunedLogsBefore == QueryStoreFixture.at(-86_400) && stats.lastPruneAt == QueryStoreFixture.at(3_000))
        let json = stats.table().render(.json)
        #expect(json.contains(#"{"metric":"pruned_log_rows","node":null,"source":null,"value":1234}"#))
        #expect(json.contains(#"{"metric":"last_prune_at","node":null,"source":null,"value":"2026-11-22T10:50:00.000000000Z"}"#))
        #expect(json.contains(#"{"metric":"lines","node":"s2","source":"webapp","value":2}"#))
        #expect(StoreStats.describe(bytes: 1_536) == "1.5 KiB (1536 bytes)")
    }
}

import Foundation
@testable import MusterStore
@testable import MusterStoreClickHouse
import MusterStoreSQLite
import MusterWire
import NIOCore
import Testing

/// `AggregateReader` on ClickHouse gives what SQLite gives for the same batches: the same lines
/// stored in both (resends, copies planted side by side in ClickHouse as two racing collectors
/// store them, error lines of every kind `ErrorRule` tells apart, the journal's samples, times
/// at and past the ends of the supported range), then every figure compared.
@Suite struct ClickHouseAggregateTests {
    static let second: Int64 = 1_000_000_000
    static let t0: Int64 = 1_700_000_000 * second
    /// `stats(now:)`'s instant for the recent lines.
    static let now: Int64 = t0 + 10_000 * second
    static let upper = Timestamp.supportedRange.upperBound

    /// A line of `node`'s file (agent = node, one generation per source).
    static func record(
        _ node: String, source: String = "webapp", _ offset: Int64, at t: Int64, _ message: String, _ fields: [String: FieldValue] = [:]
    ) -> LogRecord {
        LogRecord(time: t, node: node, origin: Origin(agent: node, source: source, generation: "g1", offset: offset), message: message, fields: fields)
    }

    /// Messages and fields `ErrorRule` must tell apart, each in its own second on `web1`, with
    /// what it says where that is certain (nil: whatever Swift's Unicode rules say, which
    /// SQLite's `is_error` calls too).
    static let errorCases: [(message: String, fields: [String: FieldValue], error: Bool?)] = [
        ("GET /index 200", [:], false),
        ("ERROR: disk full", [:], true),
        ("connection FAILED", [:], true),
        ("[ERR] x", [:], true),
        ("[err x", [:], false),
        ("[alert] y", [:], true),
        ("[Emerg]", [:], true),
        ("Exception in thread main", [:], true),
        ("CRITICAL", [:], true),
        ("Fatal", [:], true),
        ("panic: nil", [:], true),
        ("GET /a HTTP/1.1 503 8979", [:], true),
        ("code 503 x", [:], false),
        (" 599 1", [:], true),
        (" 600 1", [:], false),
        ("x 5001 2", [:], false),
        ("GET / 500 1.04ms", [:], true),
        ("tab\terror\nnext", [:], true),
        ("Échec: ERROR", [:], true),
        ("naïve panic", [:], true),
        ("café 500 1.04ms", [:], true),
        ("erro\u{301}r", [:], false),
        ("error\u{301}", [:], nil),
        ("FA\u{130}L", [:], nil),
        ("\u{212A}ERROR", [:], true),
        ("日本語のエラー", [:], false),
        ("GET /error 200", ["status": .int(200)], false),
        ("GET / ok", ["status": .int(503)], true),
        ("ok", ["status": .string("503")], true),
        ("error", ["status": .string("oops")], true),
        ("ok", ["status": .string(" 503")], false),
        ("error", ["status": .bool(true)], false),
        ("ok", ["status": .double(503.7)], true),
        ("error", ["status": .double(99.5)], false),
        ("ok", ["status": .double(500)], true),
        ("ok", ["status": .double(1e20)], false),
        ("fatal", ["status": .double(1e20)], true),
        ("error", ["status": .int(-503)], false),
        ("fine", ["bytes": .int(10), "status": .int(599)], true),
        ("ok", ["status": .int(500), "z": .string("x")], true),
        ("error", ["status": .int(Int64.max)], false),
        ("error", ["x\"status": .int(200)], true),
        ("ok", ["x\"status": .int(503)], false),
        ("ok", ["astatus": .int(503)], false),
        ("ok", ["note": .string("{\"status\":503}")], false),
        ("Échec", ["status": .int(502)], true),
        ("Échec error", ["status": .int(404)], false),
    ]

    /// The lines, as groups the collector commits one after the other.
    static var groups: [[IngestBatch]] {
        var web1: [LogRecord] = []
        for (index, item) in errorCases.enumerated() {
            web1.append(record("web1", Int64(index) * 100, at: t0 + Int64(index) * second, item.message, item.fields))
        }
        // Several lines in one second, errors among them.
        for index in 0..<6 {
            web1.append(record("web1", 10_000 + Int64(index), at: t0 + 90 * second + Int64(index), index % 2 == 0 ? "failed \(index)" : "ok \(index)"))
        }
        let web2 = (0..<40).map { index in
            record("web2", source: "app", Int64(index), at: t0 + Int64(index) * 7 * second, index % 5 == 0 ? "timeout error \(index)" : "served \(index)")
        }
        // The journal: samples (one with no servers, two at one instant from two balancers), a
        // line that names the event and is none, one in capitals, a membership change, a
        // journal line saying `error` (never an error line); and a web line quoting a sample.
        func sample(_ observer: String, at t: Int64, total: Int) -> JournalEntry {
            JournalEntry(
                t: t, event: .haproxyStats, observer: observer,
                stats: total < 0
                    ? [] : [ServerStats(proxy: "nodes", name: "web1", status: "UP", currentSessions: 1, totalSessions: total, responses2xx: total, responses5xx: 0)])
        }
        var journal: [LogRecord] = []
        var lb2: [LogRecord] = []
        for index in 0..<12 {
            let entry = sample("lb", at: t0 + Int64(index) * 5 * second, total: index == 3 ? -1 : index * 10)
            journal.append(record("lb", source: JournalEntry.sourceID, Int64(index) * 1_000, at: entry.t, entry.encodedLine()))
        }
        let twin = sample("lb2", at: t0 + 20 * second, total: 7)
        lb2.append(record("lb2", source: JournalEntry.sourceID, 0, at: twin.t, twin.encodedLine()))
        journal.append(record("lb", source: JournalEntry.sourceID, 50_000, at: t0 + 21 * second, "{\"event\":\"haproxy-stats\" broken"))
        journal.append(record("lb", source: JournalEntry.sourceID, 50_100, at: t0 + 22 * second, "{\"event\":\"HAPROXY-STATS\",\"observer\":\"lb\",\"t\":1}"))
        let join = Fixtures.join("web1", at: t0 + 23 * second, seenBy: "lb")
        journal.append(record("lb", source: JournalEntry.sourceID, 50_200, at: join.t, join.encodedLine()))
        journal.append(record("lb", source: JournalEntry.sourceID, 50_300, at: t0 + 24 * second, "{\"event\":\"error\",\"note\":\"fatal error\"}"))
        let quoted = sample("lb", at: t0 + 95 * second, total: 1)
        web1.append(record("web1", source: "quotes", 0, at: quoted.t, quoted.encodedLine()))
        // Times at and past the ends of the supported range.
        let edge = [Int64.min, -5, 0, 1, upper, upper + 1, Int64.max].enumerated().map { index, t in
            record("edge", Int64(index), at: t, index % 2 == 0 ? "edge error \(index)" : "edge \(index)")
        }
        // Around `now`: the last minute and hour include both ends.
        let recentTimes: [Int64] = [
            now - 3_600 * second - 1, now - 3_600 * second, now - 61 * second, now - 60 * second - 1, now - 60 * second, now - 1, now,
            now + 1,
        ]
        let recent = recentTimes.enumerated().map { index, t in record("recent", Int64(index), at: t, "recent \(index)") }
        let first = [IngestBatch(records: web1), IngestBatch(records: web2), IngestBatch(records: journal + lb2)]
        // A resend of everything, and one line read again with a new time (an agent that lost
        // its checkpoint): duplicates, stored once.
        var again = web1[1]
        again.time += 1_000 * second
        return [first, [IngestBatch(records: edge), IngestBatch(records: recent)], first, [IngestBatch(records: [again])]]
    }

    /// Lines planted again in ClickHouse under later ids, beside their first copies.
    static var copied: [LogRecord] {
        let groups = groups
        let all = groups[0].flatMap(\.records) + groups[1].flatMap(\.records)
        return all.filter { record in
            record.origin.offset % 300 == 0 || record.origin.source == JournalEntry.sourceID && record.origin.offset % 2_000 == 0
                || record.node == "edge" || record.node == "recent" && record.origin.offset % 3 == 0
                || record.message.unicodeScalars.contains { !$0.isASCII }
        }
    }

    /// Runs `body` with readers of a SQLite store and of a ClickHouse database holding `groups`
    /// (and `copies` planted in ClickHouse).
    func withBoth(
        _ groups: [[IngestBatch]] = Self.groups, copies: [LogRecord] = Self.copied,
        _ body: (_ sqlite: SQLiteHistoryReader, _ clickhouse: ClickHouseHTTP) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-aggregates-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStore(path: directory + "/store.sqlite", synchronous: .normal)
        for group in groups { _ = try await store.commit(group) }

        let servers = try await ScaleOutServers.shared.database()
        let http = ClickHouseHTTP(servers: servers)
        let writer = ClickHouseLogWriter(http: http)
        try await writer.createTables()
        do {
            // No merge removes the copies while the test reads them.
            for replica in servers.replicas {
                _ = try await http.run("SYSTEM STOP MERGES \(servers.database).logs_local", on: [replica])
            }
            for group in groups { _ = try await writer.store(group) }
            try await plant(copies, http: http)
            try await body(try SQLiteHistoryReader(path: directory + "/store.sqlite"), http)
        } catch {
            try? await writer.dropDatabase()
            throw error
        }
        try await writer.dropDatabase()
    }

    /// Copies of `records` inserted straight into their shards under ids later than any the
    /// writer gave (as a second collector racing the first would store them).
    func plant(_ records: [LogRecord], http: ClickHouseHTTP) async throws {
        let encoder = StoredFieldsEncoder()
        for (index, record) in records.enumerated() {
            let identity = LineIdentity(record.origin)
            let copyID = Int64(4_000_000_000_000_000_000) + Int64(index)
            var rows = JSONRows()
            rows.begin()
            rows.string("agent", record.origin.agent)
            rows.string("src", record.origin.source)
            rows.string("gen", record.origin.generation)
            rows.number("off", record.origin.offset)
            rows.number("t", record.time)
            rows.string("node", record.node)
            rows.string("msg", record.message)
            rows.string("fields", try encoder.encode(record) ?? "")
            rows.number("id", copyID)
            rows.number("rank", UInt64.max - UInt64(copyID))
            rows.end()
            let replicas = http.servers.shards[identity.shard(of: http.servers.shards.count)]
            _ = try await http.run("INSERT INTO logs_local FORMAT JSONEachRow", on: replicas, body: ByteBuffer(bytes: rows.bytes))
        }
    }

    @Test func lineCountsAreSQLitesWithCopiesCountedOnce() async throws {
        try await withBoth { sqlite, http in
            let clickhouse = ClickHouseLogReader(http: http)
            // The copies are there, beside their first copies (read as the reader does: from
            // the replica each was inserted into).
            let (answer, _) = try await http.run("SELECT count() FROM logs", on: http.servers.replicas, settings: LogTables.readSettings)
            let rows = Int64(String(buffer: answer).trimmingCharacters(in: .whitespacesAndNewlines))
            let lines = try clickhouse.storedLineCount()
            #expect(rows == lines + Int64(Self.copied.count), "\(String(describing: rows)) rows, \(lines) lines")
            let intervals: [Int64] = [1, 7, Self.second, 60 * Self.second, 86_400 * Self.second, Int64.max]
            let nodeSets: [[String]] = [[], ["web1"], ["web1", "edge", "lb"]]
            let ranges: [(Int64?, Int64?)] = [
                (nil, nil), (Self.t0 + 5 * Self.second, Self.t0 + 30 * Self.second), (nil, 0), (-10, 10), (Self.upper, nil),
                (Self.t0, Self.t0),
            ]
            var compared = 0
            for interval in intervals {
                for nodes in nodeSets {
                    for (since, until) in ranges {
                        for errorsOnly in [false, true] {
                            let request = LineCountRequest(interval: interval, nodes: nodes, since: since, until: until, errorsOnly: errorsOnly)
                            let expected = try sqlite.lineCounts(request)
                            #expect(try clickhouse.lineCounts(request) == expected, "\(request)")
                            compared += expected.count
                        }
                    }
                }
            }
            #expect(compared > 100)
            // Every error case in its own second: the ones whose answer is certain, on both.
            let perSecond = try sqlite.lineCounts(LineCountRequest(interval: Self.second, nodes: ["web1"], until: Self.t0 + 60 * Self.second, errorsOnly: true))
            let errorSeconds = Set(perSecond.map { ($0.bucket - Self.t0) / Self.second })
            for (index, item) in Self.errorCases.enumerated() {
                guard let error = item.error else { continue }
                #expect(errorSeconds.contains(Int64(index)) == error, "\(item.message) \(item.fields)")
            }
            #expect(
                try ClickHouseLogReader(http: http).lineCounts(
                    LineCountRequest(interval: Self.second, nodes: ["web1"], until: Self.t0 + 60 * Self.second, errorsOnly: true)) == perSecond)
            // Lines ClickHouse leaves to Swift, read in parts of one line.
            let inParts = ClickHouseLogReader(http: http, pageRows: 1)
            for interval in intervals {
                let request = LineCountRequest(interval: interval, errorsOnly: true)
                #expect(try inParts.lineCounts(request) == (try sqlite.lineCounts(request)), "\(request)")
            }
        }
    }

    @Test func anUnknownNodeIsTheSameError() async throws {
        try await withBoth { sqlite, http in
            let request = LineCountRequest(interval: Self.second, nodes: ["web1", "nope"], errorsOnly: true)
            let expected = StoreError.unknownNode("nope", known: ["edge", "lb", "lb2", "recent", "web1", "web2"])
            #expect(throws: expected) { try sqlite.lineCounts(request) }
            #expect(throws: expected) { try ClickHouseLogReader(http: http).lineCounts(request) }
        }
    }

    @Test func statsAreSQLitesWhereTheyCompare() async throws {
        try await withBoth { sqlite, http in
            let clickhouse = ClickHouseLogReader(http: http)
            for now in [Self.now, Self.now + 59 * Self.second, Self.now + 3_600 * Self.second, Int64.min, -1, Int64.max, Self.upper] {
                let expected = try sqlite.stats(now: now)
                let stats = try clickhouse.stats(now: now)
                #expect(stats.sources == expected.sources)
                #expect(stats.linesLastMinute == expected.linesLastMinute, "now \(now)")
                #expect(stats.linesLastHour == expected.linesLastHour, "now \(now)")
                let newest = try clickhouse.largestID()
                #expect(stats.notIndexed == 0 && stats.indexedThrough == newest)
                #expect(stats.databaseBytes > 0 && stats.walBytes == 0)
                #expect(stats.prunedLogRows == 0 && stats.prunedHistoryRows == 0 && stats.prunedLogsBefore == nil && stats.lastPruneAt == nil)
            }
            let stats = try clickhouse.stats(now: Self.now)
            #expect(stats.linesLastMinute == 3 && stats.linesLastHour == 6)
            #expect(stats.lines == (try clickhouse.storedLineCount()))
            // Bytes per replica: every replica holds its shard's parts.
            #expect(stats.databaseBytes > 4 * 1_000)
            #expect(try clickhouse.firstInstant() == sqlite.firstInstant())
            #expect(try clickhouse.lastInstant() == sqlite.lastInstant())
            #expect(try clickhouse.firstInstant() == 0 && clickhouse.lastInstant() == Self.upper)
        }
    }

    @Test func haproxySamplesAreSQLites() async throws {
        try await withBoth { sqlite, http in
            let ranges: [(Int64, Int64)] = [
                (Int64.min, Int64.max), (Self.t0, Self.t0 + 31 * Self.second), (Self.t0 + 5 * Self.second, Self.t0 + 20 * Self.second),
                (Self.t0 + 20 * Self.second, Self.t0 + 21 * Self.second), (Self.t0 + 60 * Self.second, Int64.max), (Self.t0, Self.t0),
            ]
            for pageRows in [1, 5, 10_000] {
                let clickhouse = ClickHouseLogReader(http: http, pageRows: pageRows)
                for (since, until) in ranges {
                    let expected = try sqlite.haproxySamples(since: since, until: until)
                    #expect(try clickhouse.haproxySamples(since: since, until: until) == expected, "\(since)..<\(until), pages of \(pageRows)")
                }
            }
            let all = try sqlite.haproxySamples(since: Int64.min, until: Int64.max)
            #expect(all.count == 13 && all.contains { $0.stats == [] })
            #expect(all.filter { $0.t == Self.t0 + 20 * Self.second }.map(\.observer) == ["lb", "lb2"])
        }
    }

    @Test func anEmptyStoreHasNoFigures() async throws {
        try await withBoth([], copies: []) { sqlite, http in
            let clickhouse = ClickHouseLogReader(http: http)
            let request = LineCountRequest(interval: Self.second, errorsOnly: true)
            #expect(try clickhouse.lineCounts(request) == [] && sqlite.lineCounts(request) == [])
            #expect(throws: StoreError.unknownNode("web1", known: [])) {
                try clickhouse.lineCounts(LineCountRequest(interval: Self.second, nodes: ["web1"]))
            }
            let stats = try clickhouse.stats(now: Self.now)
            #expect(stats.sources == [] && stats.linesLastHour == 0 && stats.indexedThrough == 0)
            #expect(try clickhouse.firstInstant() == nil && clickhouse.lastInstant() == nil)
            #expect(try sqlite.firstInstant() == nil)
            #expect(try clickhouse.haproxySamples(since: Int64.min, until: Int64.max) == [])
        }
    }
}

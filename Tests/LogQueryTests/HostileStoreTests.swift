import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// A store holding what a careless or hostile sender left there before times were range-checked:
/// lines at the ends of `Int64`, a member that joined at `Int64.min`, a mark at `Int64.max`.
/// Every command that computes with times (hist, report, export, stats) must answer, not trap.
@Suite struct StoredExtremeTimesTests {
    let store: QueryStoreFixture
    let minute = 60 * Timestamp.nanosPerSecond
    let now = QueryStoreFixture.at(600)

    init() throws {
        store = try QueryStoreFixture()
        try store.lines("s1", [(0, "a"), (590, "b")])
        try store.storedAsIs(line: Int64.max, message: "from the far future")
        try store.storedAsIs(line: Int64.min, message: "from before time")
        try store.storedAsIs(member: "s9", at: Int64.min)
        try store.storedAsIs(member: "s8", at: Int64.max)
    }

    /// Before: with `--since 1h` the line at Int64.max fell in a bucket past the last one
    /// (index out of range); without a range the span of the two extremes overflowed.
    @Test func histogramCountsInRangeAndRefusesAHugeSpanClearly() throws {
        let database = try store.reader()
        let recent = try Histogram.build(store: database, interval: minute, since: now - 60 * minute, until: nil, now: now)
        #expect(recent.buckets.count == 61)
        #expect(recent.buckets.map(\.total).reduce(0, +) == 2, "the far-future line is after now, left out")
        #expect(throws: QueryError.self) { try Histogram.build(store: database, interval: minute, since: nil, until: nil, now: now) }
        do {
            _ = try Histogram.build(store: database, interval: minute, since: nil, until: nil, now: now)
        } catch {
            #expect(error.description.contains("intervals of 1m; choose a longer --by"))
            #expect(error.exitCode == 65)
        }
        // Weeks of 1000: the extremes count at the ends of the supported range.
        let whole = try Histogram.build(store: database, interval: try Histogram.parseInterval("1000w"), since: nil, until: nil, now: now)
        #expect(whole.buckets.first?.start == Timestamp.supportedRange.lowerBound)
        #expect(whole.buckets.map(\.total).reduce(0, +) == 4)
        #expect(whole.buckets.last?.total == 1)
        // A caller's own extreme bounds are clamped, not overflowed.
        let clamped = try Histogram.build(
            store: database, interval: try Histogram.parseInterval("1000w"), since: Int64.min, until: Int64.max, now: Int64.max)
        #expect(clamped.buckets.map(\.total).reduce(0, +) == 2, "[1970, the range's last instant): not before 1970, not at Int64.max")
    }

    @Test func intervalsTooLongToCountAreRefused() {
        #expect(throws: QueryError.self) { try Histogram.parseInterval("100000000000w") }
        do {
            _ = try Histogram.parseInterval("100000000000w")
        } catch {
            #expect(error.description == "interval '100000000000w' is too long to count in nanoseconds: use e.g. 1h, 1d, 1w")
            #expect(error.exitCode == 65)
        }
    }

    /// Before: `end - start` of the data's extremes overflowed (ReportData.range), and the time
    /// axis stepped past Int64.max (ReportCharts' tick loop).
    @Test func reportCoversTheSupportedRange() throws {
        let report = ClusterReport(store: try store.reader())
        let whole = try report.render(ReportScope())
        #expect(whole.html.contains("data-member=\"s9\""))
        #expect(whole.html.contains("data-member=\"s8\""))
        let since = try report.render(ReportScope(since: Int64.min))
        #expect(since.html.contains("data-member=\"s8\""))
        let until = try report.render(ReportScope(until: Int64.max))
        #expect(until.html.contains("data-member=\"s9\""))
    }

    @Test func marksAtTheEndsOfTimeMakeTasksThatReportAndExport() throws {
        try store.storedAsIs(mark: "first", at: Int64.min)
        try store.storedAsIs(mark: "last", at: Int64.max)
        let database = try store.reader()
        let tasks = try ClusterHistory(store: database).tasks()
        #expect(tasks.map(\.since) == [Timestamp.supportedRange.lowerBound, Timestamp.supportedRange.upperBound])
        for mark in ["first", "last"] {
            _ = try ClusterReport(store: database).render(ReportScope(mark: mark))
        }
        let out = store.directory + "/export"
        let result = try EvidenceExport(store: database).export(to: out)
        #expect(result.failures.isEmpty)
        #expect(result.summaries.map(\.folder) == ["first", "last"])
    }

    /// HAProxy samples whose counters and times a sender chose: the rate between them is
    /// beyond Int64 (Int.max sessions in a nanosecond), a counter is negative, a sample is at
    /// Int64.min. Before: the rate's label trapped converting to Int64, the differences overflowed.
    @Test func reportRatesFromHostileSamples() throws {
        func sample(_ t: Int64, _ total: Int) -> String {
            JournalEntry(
                t: t, event: .haproxyStats, observer: "ha",
                stats: [ServerStats(proxy: "nodes", name: "s1", status: "UP", currentSessions: 0, totalSessions: total, responses2xx: 0, responses5xx: 0)]
            ).encodedLine()
        }
        let t = QueryStoreFixture.at(1)
        try store.lines(
            "ha", source: JournalEntry.sourceID,
            [(1, sample(Int64.min, Int.min)), (2, sample(t, Int.min)), (3, sample(t + 1, Int.max)), (4, sample(t + 2, 0)), (5, sample(Int64.max, Int.max))])
        let page = try ClusterReport(store: try store.reader()).render(ReportScope())
        #expect(page.html.contains("data-server=\"nodes/s1\""))
    }

    @Test func statsWithAClockAtTheEndOfTime() throws {
        let stats = try StoreStats.read(try store.reader(), now: Int64.max)
        #expect(stats.lines == 4)
        #expect(stats.sourceTable().render(.text).count == 2)
    }
}

/// `logq export` with names from the store that are no file names: separators, dots, control
/// characters, 10,000 characters. Before: the config file took the load balancer's name as is
/// and a long node name failed with ENAMETOOLONG, ending the export (exit 73, no index.log).
@Suite struct ExportNameTests {
    @Test func safeNamesAreBoundedUniqueAndStable() {
        var names = SafeFileNames(reserved: EvidenceExport.ownFiles)
        #expect(names.name(for: "s1") == "s1")
        #expect(names.name(for: "events") == "events~2")
        #expect(names.name(for: "s/1") == "s_1")
        #expect(names.name(for: "s_1") == "s_1~2")
        #expect(names.name(for: "../x") == "_.._x")
        #expect(names.name(for: "") == "_")
        #expect(names.name(for: "é\u{1B}") == "__")
        #expect(names.name(for: "s/1") == "s_1")
        let long = String(repeating: "a", count: 10_000)
        let longer = long + "b"
        let first = names.name(for: long)
        let second = names.name(for: longer)
        #expect(first.utf8.count == SafeFileNames.maxBytes && second.utf8.count == SafeFileNames.maxBytes)
        #expect(first != second, "names that share their first 100 bytes still differ")
        #expect(first.hasPrefix("aaaa") && first.contains("~"))
        #expect(SafeFileNames.sanitised(long) == first, "the same name in every export")
        #expect(names.names.count == 9)
    }

    @Test func hostileNodeAndBalancerNamesAllGetTheirFiles() throws {
        let store = try QueryStoreFixture()
        let long = String(repeating: "n", count: 10_000)
        try store.storedAsIs(line: QueryStoreFixture.at(1), node: long, message: "long")
        try store.storedAsIs(line: QueryStoreFixture.at(2), node: "../../etc/x", message: "climb")
        try store.storedAsIs(config: 1, node: "lb/one", at: QueryStoreFixture.at(3))
        try store.storedAsIs(config: 1, node: long, at: QueryStoreFixture.at(4))
        let out = store.directory + "/export"
        let result = try EvidenceExport(store: try store.reader()).export(to: out)
        #expect(result.failures.isEmpty)
        let files = try FileManager.default.subpathsOfDirectory(atPath: out + "/all").sorted()
        let cut = SafeFileNames.sanitised(long)
        #expect(files.contains("\(cut).log"))
        #expect(files.contains("_.._.._etc_x.log"))
        #expect(files.contains("1_lb_one_haproxy.cfg"))
        #expect(files.contains("2_\(cut)_haproxy.cfg"), "a balancer's config takes the name its log file has")
        #expect(files.allSatisfy { $0.utf8.count < 255 })
        #expect(FileManager.default.fileExists(atPath: out + "/index.log"))
        #expect(result.summaries.first?.lines == 2)
    }

    /// A file that cannot be written is reported and the others are written: here a folder so
    /// deep that only the long node's file passes PATH_MAX.
    @Test func aFileThatCannotBeWrittenDoesNotStopTheOthers() throws {
        let store = try QueryStoreFixture()
        let node = String(repeating: "n", count: 90)
        try store.storedAsIs(line: QueryStoreFixture.at(1), node: node, message: "too deep")
        try store.storedAsIs(line: QueryStoreFixture.at(2), node: "s1", message: "fits")
        var out = store.directory
        let pathMax = Int(PATH_MAX)
        // DIR/all/<90 n>.log must exceed PATH_MAX while DIR/all/membership.log fits.
        while out.utf8.count + "/all/".utf8.count + node.utf8.count + ".log".utf8.count < pathMax {
            let room = pathMax - out.utf8.count - 100
            out += "/" + String(repeating: "d", count: min(200, max(1, room)))
        }
        #expect(out.utf8.count + "/all/membership.log".utf8.count < pathMax)
        let result = try EvidenceExport(store: try store.reader()).export(to: out)
        #expect(result.failures.count == 1)
        #expect(result.failures.first?.exitCode == 73)
        #expect(result.failures.first?.description.contains(node) == true)
        #expect(FileManager.default.fileExists(atPath: out + "/all/s1.log"))
        #expect(FileManager.default.fileExists(atPath: out + "/all/membership.log"))
        #expect(FileManager.default.fileExists(atPath: out + "/index.log"))
        #expect(result.summaries.first?.lines == 1, "the line that was written")
        #expect(QueryError.exportIncomplete(directory: out, failed: 1).exitCode == 73)
    }
}

/// What text and CSV output make of control characters and formulas from the store.
@Suite struct DisplayTextTests {
    @Test func controlsAreShownNotSent() {
        #expect(DisplayText.escapingControls("plain text, ünïcode ✓", keepingLineFeeds: false) == "plain text, ünïcode ✓")
        #expect(DisplayText.escapingControls("\u{1B}[2Jx\u{7}", keepingLineFeeds: false) == "\\x1b[2Jx\\x07")
        #expect(DisplayText.escapingControls("a\tb\nc\rd", keepingLineFeeds: true) == "a\tb\nc\\x0dd")
        #expect(DisplayText.escapingControls("a\tb\nc", keepingLineFeeds: false) == "a\tb\\x0ac")
        #expect(DisplayText.escapingControls("\u{0}\u{7F}\u{9B}31m\u{85}\u{A0}", keepingLineFeeds: false) == "\\x00\\x7f\\x9b31m\\x85\u{A0}")
        #expect(DisplayText.escapingControls("{\"a\":\"\u{1B}\u{9B}\"}\r\n", keepingLineFeeds: true, notation: .json) == "{\"a\":\"\\u001b\\u009b\"}\r\n")
    }

    @Test func logLinesAndTablesInText() {
        let line = LogLine(id: 1, time: 0, node: "n\u{1B}]0;x\u{7}", source: "src\u{9B}", message: "one\u{1B}[2J\ntwo")
        #expect(OutputFormat.text.render(line) == "1970-01-01T00:00:00.000000000Z n\\x1b]0;x\\x07 src\\x9b: one\\x1b[2J\ntwo")
        let painted = OutputFormat.text.render(line, colors: NodeColors())
        #expect(painted.components(separatedBy: "\u{1B}").count == 3, "only the colour's own two sequences: \(painted)")
        let table = Table(columns: ["name\u{1B}"], rows: [[.text("a\nb\u{1B}")]])
        #expect(table.render(.text) == ["NAME\\x1b", "a\\x0ab\\x1b"])
        #expect(table.render(.json) == [#"{"name\u001b":"a\nb\u001b"}"#])
    }

    @Test func csvCellsNeverRunAsFormulas() {
        let table = Table(
            columns: ["text", "number", "real"],
            rows: [
                [.text("=HYPERLINK(\"http://x\")"), .integer(-5), .real(-1.5)],
                [.text("+1+1"), .integer(5), .null],
                [.text("-5"), .integer(0), .null],
                [.text("-2+3"), .integer(0), .null],
                [.text("@SUM(A1)"), .integer(0), .null],
                [.text("\tx"), .integer(0), .null],
                [.text("\r=1"), .integer(0), .null],
                [.text("a=b, \u{1B}"), .integer(0), .null],
            ])
        #expect(table.render(.csv) == [
            "text,number,real",
            #""'=HYPERLINK(""http://x"")",-5,-1.5"#,
            "'+1+1,5,",
            "-5,0,",
            "'-2+3,0,",
            "'@SUM(A1),0,",
            "'\tx,0,",
            "\\x0d=1,0,",
            "\"a=b, \\x1b\",0,",
        ])
        let line = LogLine(id: 1, time: 0, node: "=cmd", source: "s", message: "-1")
        #expect(OutputFormat.csv.render(line) == "1970-01-01T00:00:00.000000000Z,'=cmd,s,-1")
    }
}

/// `logq sql --timeout`: a statement that would run forever is stopped.
@Suite struct SQLTimeoutTests {
    static let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"

    @Test func aRecursiveCTEStopsWithinTheTimeout() throws {
        let store = try QueryStoreFixture()
        let sql = try StoreLocation(path: store.path).openSQLConsole(timeout: 0.5)
        let started = ContinuousClock.now
        #expect(throws: QueryError.timedOut(seconds: 0.5)) { try sql.table(Self.forever) }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(QueryError.timedOut(seconds: 0.5).exitCode == 75)
        #expect(QueryError.timedOut(seconds: 0.5).description.hasPrefix("the statement ran longer than 0.5 s and was stopped"))
        // The connection is still good, and the time is counted per statement.
        #expect(try sql.table("SELECT 1 AS one").rows == [[.integer(1)]])
    }

    @Test func rowsHandedOverSlowlyDoNotCount() throws {
        let store = try QueryStoreFixture()
        let sql = try StoreLocation(path: store.path).openSQLConsole(timeout: 0.2)
        var rows = 0
        try sql.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4) SELECT x FROM c", chunkRows: 1) { _ in
            rows += 1
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(rows == 4)
    }

    @Test(arguments: [-1.0, .infinity, .nan, 1e12])
    func aTimeoutOutOfRangeIsRefused(seconds: Double) throws {
        let store = try QueryStoreFixture()
        #expect(throws: QueryError.self) { try StoreLocation(path: store.path).openSQLConsole(timeout: seconds) }
    }
}

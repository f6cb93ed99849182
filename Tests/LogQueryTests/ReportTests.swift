import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// `logq report` on a small history: three tasks, members joining, leaving and failing (one
/// with a hostile name), two configuration versions, and HAProxy samples every two seconds.
@Suite struct ReportTests {
    static let t0: Int64 = 1_795_000_000_000_000_000
    static let second = Timestamp.nanosPerSecond
    static let hostile = "<script>alert(1)</script>"

    let directory: String
    let report: ClusterReport

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pool = try Schema.openForWriting(path: directory + "/store.sqlite", synchronous: .normal)
        let (t0, second) = (Self.t0, Self.second)
        func change(_ event: JournalEvent, _ name: String, _ address: String, at seconds: Int64) -> JournalEntry {
            JournalEntry(t: t0 + seconds * second, event: event, observer: "ha", member: Member(name: name, address: address, role: "web"))
        }
        func config(_ version: Int, _ method: String, trigger: String, diff: String, at seconds: Int64) -> JournalEntry {
            let apply = ConfigApply(
                version: version, sha256: String(repeating: "\(version)", count: 64), text: "backend nodes\n", diff: diff,
                trigger: [trigger], method: method, durationMilliseconds: 12, outcome: .applied, message: nil, servers: ["s1", "s2"])
            return JournalEntry(t: t0 + seconds * second, event: .config, observer: "ha", config: apply)
        }
        // Samples every 2 s: s1 takes 20 sessions per sample, s2 10 (10/s and 5/s); HAProxy
        // reloads (counters restart from 0) just after the sample at 14 s.
        var lines: [LogRecord] = []
        for index in 0...15 {
            let seconds = Int64(index) * 2
            let base = index >= 8 ? index - 7 : index
            var stats = [
                ServerStats(proxy: "http-in", name: "FRONTEND", status: "OPEN", currentSessions: 0, totalSessions: 30 * base, responses2xx: 30 * base, responses5xx: 0),
                ServerStats(proxy: "nodes", name: "s1", status: "UP", currentSessions: 0, totalSessions: 20 * base, responses2xx: 20 * base, responses5xx: 0),
                ServerStats(proxy: "nodes", name: "s2", status: "UP", currentSessions: 0, totalSessions: 10 * base, responses2xx: 10 * base, responses5xx: 0),
            ]
            // s3 (2/s) is left out of the samples at 8 and 10 s and comes back with its counter
            // where it was: no burst when it returns.
            if index < 4 || index >= 6 {
                let present = index < 4 ? index : index - 2
                stats.append(ServerStats(proxy: "nodes", name: "s3", status: "UP", currentSessions: 0, totalSessions: 4 * present, responses2xx: 0, responses5xx: 0))
            }
            let entry = JournalEntry(t: t0 + seconds * second, event: .haproxyStats, observer: "ha", stats: stats)
            lines.append(
                LogRecord(time: entry.t, node: "ha", origin: Origin(agent: "ha", source: JournalEntry.sourceID, generation: "g", offset: Int64(index)),
                          message: entry.encodedLine()))
        }
        // Not a journal entry, though it names the event: skipped, not an error.
        lines.append(
            LogRecord(time: t0 + 5 * second, node: "ha", origin: Origin(agent: "ha", source: JournalEntry.sourceID, generation: "g", offset: 99),
                      message: "{\"event\":\"haproxy-stats\" broken"))
        lines.append(LogRecord(time: t0 + 3 * second, node: "s1", origin: Origin(agent: "s1", source: "webapp", generation: "g", offset: 0), message: "GET / 200"))
        try pool.write { db in
            _ = try LogWriter.insert([lines], into: db)
            _ = try Mark.record(name: "task-0", note: "three members <img src=x onerror=alert(1)>", at: t0, in: db)
            try ClusterLedger().apply(
                [change(.memberJoin, "s1", "10.0.0.1", at: 1), change(.memberJoin, "s2", "10.0.0.2", at: 1),
                 change(.memberJoin, Self.hostile, "10.0.0.9", at: 2),
                 config(1, "reload", trigger: "s1 joined", diff: "--- previous\n+++ new\n@@\n+backend nodes\n+    server <b>s1</b>\n", at: 3)],
                in: db)
            _ = try Mark.record(name: "task-1", note: "s2 leaves", at: t0 + 10 * second, in: db)
            try ClusterLedger().apply(
                [change(.memberLeave, "s2", "10.0.0.2", at: 12),
                 config(2, "runtime", trigger: "s2 left", diff: "--- previous\n+++ new\n@@\n backend nodes\n-    server s2\n", at: 13)],
                in: db)
            _ = try Mark.record(name: "task-2", note: "", at: t0 + 20 * second, in: db)
            try ClusterLedger().apply([change(.memberFailed, "s1", "10.0.0.1", at: 22), change(.memberJoin, "s2", "10.0.0.2", at: 25)], in: db)
        }
        report = ClusterReport(store: try SQLiteHistoryReader(path: directory + "/store.sqlite"))
    }

    func html(_ scope: ReportScope = ReportScope()) throws -> String { try report.render(scope).html }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    /// The main timeline (task sections have timelines of their own).
    static func timeline(_ page: String) -> String {
        page.components(separatedBy: "<section id=\"timeline\">").last?.components(separatedBy: "</section>").first ?? ""
    }

    @Test func oneMembershipMarkPerChangeInTheRange() throws {
        let page = try html()
        #expect(Self.count("class=\"membership-mark\"", in: page) == 6)
        #expect(Self.count("data-change=\"joined\"", in: page) >= 4)
        #expect(Self.count("class=\"mark-line\"", in: Self.timeline(page)) == 3)
        #expect(Self.count("class=\"config-line\"", in: Self.timeline(page)) == 2)
        // [10 s, 23 s): s2 left at 12, s1 failed at 22.
        let part = try html(ReportScope(since: Self.t0 + 10 * Self.second, until: Self.t0 + 23 * Self.second))
        #expect(Self.count("class=\"membership-mark\"", in: part) == 2)
        #expect(part.contains("data-member=\"s2\" data-change=\"left\""))
        #expect(part.contains("data-member=\"s1\" data-change=\"failed\""))
    }

    @Test func everythingFromAgentsIsEscaped() throws {
        let page = try html()
        #expect(!page.contains("<script"), "a member's name became markup")
        #expect(!page.contains("<img"), "a mark's note became markup")
        #expect(!page.contains("<b>s1</b>"), "a config diff became markup")
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(page.contains("data-member=\"&lt;script&gt;alert(1)&lt;/script&gt;\""))
        #expect(page.contains("<span class=\"add\">+    server &lt;b&gt;s1&lt;/b&gt;\n</span>"))
        #expect(page.contains("<span class=\"del\">-    server s2\n</span>"))
        #expect(ReportText.escape("a\"b'c&\u{0}") == "a&quot;b&#39;c&amp;\u{FFFD}")
    }

    @Test func thePageFetchesNothing() throws {
        let page = try html()
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(!page.contains("<link"))
        #expect(page.firstMatch(of: /<[a-z][^>]*\ssrc=/) == nil)
        #expect(!page.contains("url("))
        let addresses = page.components(separatedBy: "http").dropFirst().map { String($0.prefix(24)) }
        #expect(addresses.allSatisfy { $0.hasPrefix("://www.w3.org/2000/svg") }, "only the SVG namespace: \(addresses)")
    }

    @Test func aMarkRestrictsTheWholeReportToItsTask() throws {
        let page = try html(ReportScope(mark: "task-1"))
        #expect(Self.count("class=\"membership-mark\"", in: page) == 1)
        #expect(page.contains("data-member=\"s2\" data-change=\"left\""))
        #expect(Self.count("class=\"config-line\"", in: Self.timeline(page)) == 1)
        #expect(page.contains("id=\"config-ha-v2\"") && !page.contains("id=\"config-ha-v1\""))
        #expect(page.contains("<section class=\"task\" id=\"task-task-1\""))
        #expect(!page.contains("id=\"task-task-0\"") && !page.contains("id=\"task-task-2\""))
        #expect(page.contains("<h1>Cluster report: task-1</h1>"))
        // The node table is taken just before the next mark: s2 has left, s1 not yet failed.
        let nodes = try #require(page.components(separatedBy: "<section id=\"nodes\">").last)
        #expect(nodes.contains("<td>s2</td><td>10.0.0.2</td><td>web</td><td><span class=\"state left\">left</span>"))
        #expect(nodes.contains("<td>s1</td><td>10.0.0.1</td><td>web</td><td><span class=\"state alive\">alive</span>"))
        // The last task lasts to the end of the history.
        let last = try html(ReportScope(mark: "task-2"))
        #expect(Self.count("class=\"membership-mark\"", in: last) == 2)
    }

    @Test func sameStoreAndArgumentsGiveTheSamePage() throws {
        let first = try html()
        let again = try ClusterReport(store: try SQLiteHistoryReader(path: directory + "/store.sqlite")).render(ReportScope()).html
        #expect(first == again)
        #expect(try html(ReportScope(mark: "task-0")) == (try html(ReportScope(mark: "task-0"))))
        let out = directory + "/report.html"
        let summary = try report.write(ReportScope(), to: out)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == first)
        #expect(summary.changes == 6 && summary.configs == 2 && summary.marks == 3 && summary.samples == 16 && summary.servers == 3)
    }

    @Test func requestRatesComeFromCounterDifferences() throws {
        let reader = try SQLiteHistoryReader(path: directory + "/store.sqlite")
        let found = try reader.haproxySamples(since: Self.t0, until: Self.t0 + 31 * Self.second)
        let (series, samples) = (ReportData.rates(found), found.count)
        #expect(samples == 16)
        #expect(series.map(\.label) == ["nodes/s1", "nodes/s2", "nodes/s3"])
        #expect(series[0].intervals.count == 15)
        #expect(series[0].intervals.allSatisfy { $0.rate == 10 }, "\(series[0].intervals.map(\.rate))")
        #expect(series[1].intervals.allSatisfy { $0.rate == 5 }, "\(series[1].intervals.map(\.rate))")
        #expect(series[2].intervals.count == 13)
        #expect(series[2].intervals.allSatisfy { $0.rate == 2 }, "\(series[2].intervals.map(\.rate))")
        // Bounded by time: the samples at 4, 6 and 8 s make two intervals.
        let foundInPart = try reader.haproxySamples(since: Self.t0 + 4 * Self.second, until: Self.t0 + 9 * Self.second)
        let (part, partSamples) = (ReportData.rates(foundInPart), foundInPart.count)
        #expect(partSamples == 3 && part[0].intervals.count == 2)
        #expect(try html().contains("<b>nodes/s1</b>&nbsp;<span class=\"muted\">mean 10/s, peak 10/s</span>"))
    }

    @Test func refusalsAreOneLineWithTheirExitCodes() throws {
        func refusal(_ scope: ReportScope, out: String? = nil) -> QueryError? {
            do {
                if let out { try report.write(scope, to: out) } else { _ = try report.render(scope) }
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal(ReportScope(mark: "task-9")) == .badArgument("no mark named 'task-9' (marks: task-0, task-1, task-2)"))
        #expect(refusal(ReportScope(since: Self.t0, mark: "task-1"))?.exitCode == 65)
        #expect(refusal(ReportScope(since: Self.t0 + 5, until: Self.t0))?.exitCode == 65)
        let unwritable = refusal(ReportScope(), out: directory + "/missing/report.html")
        #expect(unwritable == .cannotWrite(path: directory + "/missing/report.html", detail: "No such file or directory"))
        #expect(unwritable?.exitCode == 73)
        #expect(refusal(ReportScope(), out: directory)?.exitCode == 73)
        #expect(!FileManager.default.fileExists(atPath: directory + "/missing"))
        for error in [refusal(ReportScope(mark: "task-9")), unwritable].compactMap({ $0 }) {
            #expect(!error.description.contains("\n"))
        }
    }
}

import AsyncHTTPClient
import Foundation
import MusterAgent
import Testing

/// The scale-out path with the real binaries: three collectors over one ClickHouse + etcd
/// store (`store:` in their configs), three agents, logq reading the store with `--store`.
/// Lines arrive once each whichever collector took them, also when a collector is killed
/// mid-stream and its agent moves to another; the event stream is one for all collectors.
@Suite(.serialized, .scaleOutServers) final class ScaleOutTests {
    let directory: String
    let token = "scale-out-token-\(UUID().uuidString.prefix(8))"
    /// The test's own ClickHouse database and etcd namespace.
    let database = "e2e_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    var collectors: [ScaleOutCollector] = []
    var agents: [String: RunningProcess] = [:]
    var others: [RunningProcess] = []

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-e2e-scaleout-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        for agent in agents.values { agent.stop() }
        for process in others { process.stop() }
        for collector in collectors { collector.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    static let nodes = ["n1", "n2", "n3"]
    static let linesPerNode = 2_000
    static let linesAfterKill = 3_000

    @Test func threeCollectorsShareOneStoreLinesOnceThroughAKilledCollectorAndOneEventStream() async throws {
        let servers = try #require(ScaleOutTestServers.current, "the suite's .scaleOutServers trait started no servers")
        let started = Date()
        var phases: [String] = []
        func phase(_ name: String) { phases.append("\(name) \(String(format: "%.1f", Date().timeIntervalSince(started)))s") }

        // Three collectors, the same store: section, each its port and port file, one token.
        let store = servers.storeSection(database: database)
        collectors = try (1...3).map { try ScaleOutCollector(name: "c\($0)", directory: directory, storeSection: store, token: token) }
        for collector in collectors { try collector.launch() }
        for collector in collectors { try collector.waitUntilListening() }
        phase("collectors up")

        // One agent per collector, each its node and its file; 2,000 lines each.
        var expected: [String: [String]] = [:]
        for (index, node) in Self.nodes.enumerated() {
            try FileManager.default.createDirectory(atPath: "\(directory)/logs-\(node)", withIntermediateDirectories: true)
            try startAgent(node, collector: collectors[index])
        }
        var writers: [SteadyWriter] = []
        for node in Self.nodes {
            let writer = SteadyWriter(path: logFile(node), prefix: node, total: Self.linesPerNode, linesPerSecond: 8_000)
            writer.start()
            writers.append(writer)
            expected[node] = writer.expected()
        }
        for writer in writers { writer.wait() }
        try waitForLines(expected, timeout: 60, "the first 6,000 lines")
        try expectExactlyOnce(expected, "after the first 6,000 lines")
        try expectStats(expected)
        try expectStoredOnce(servers, expected, "after the first 6,000 lines")
        phase("6,000 lines stored")

        // Collector 3 killed while its agent ships more lines; the agent restarted with the
        // same state directory and collector 2's URL resends what was not acknowledged.
        let (accepted2, duplicates2) = (collectors[1].counter(Self.accepted), collectors[1].counter(Self.duplicates))
        let more = SteadyWriter(path: logFile("n3"), prefix: "n3-after", total: Self.linesAfterKill, linesPerSecond: 1_000)
        expected["n3", default: []] += more.expected()
        let acceptedBeforeKill = collectors[2].counter(Self.accepted)
        more.start()
        let shipping = waitUntil(timeout: 30, interval: 0.01) {
            more.written >= 800 && collectors[2].counter(Self.accepted) >= acceptedBeforeKill + 300
        }
        try #require(shipping, "collector 3 stored none of the new lines:\n\(collectors[2].log().suffix(2000))")
        let killedAt = (written: more.written, accepted: collectors[2].counter(Self.accepted))
        collectors[2].killHard()
        agents["n3"]?.stop(grace: 20)
        try startAgent("n3", collector: collectors[1])
        more.wait()
        try waitForLines(expected, timeout: 60, "the lines written around the kill")
        try expectExactlyOnce(expected, "after collector 3 was killed")
        try expectStoredOnce(servers, expected, "after collector 3 was killed")
        let resent = (
            accepted: collectors[1].counter(Self.accepted) - accepted2, duplicates: collectors[1].counter(Self.duplicates) - duplicates2
        )
        phase("failover: \(resent.accepted) accepted and \(resent.duplicates) duplicates on collector 2 after the kill")

        // A resend every line of which is stored already: an agent for n1 that lost its state
        // reads n1's file again and ships it to collector 2, which counts each line a duplicate.
        let settled = (accepted: collectors[1].counter(Self.accepted), duplicates: collectors[1].counter(Self.duplicates))
        let reread = try RunningProcess(
            try Binaries.path("muster-agent"),
            [
                "--node", "n1", "--collector-url", collectors[1].url, "--token", token, "--state-dir", "\(directory)/state-n1-lost",
                "--file", "app=\(directory)/logs-n1/*.log",
            ],
            logPath: "\(directory)/agent-n1-reread.log")
        others.append(reread)
        let counted = waitUntil(timeout: 60, interval: 0.1) {
            collectors[1].counter(Self.duplicates) >= settled.duplicates + Self.linesPerNode
        }
        reread.stop()
        #expect(
            counted && collectors[1].counter(Self.duplicates) == settled.duplicates + Self.linesPerNode,
            "collector 2 counted \(collectors[1].counter(Self.duplicates) - settled.duplicates) of n1's \(Self.linesPerNode) lines as duplicates:\n\(reread.log().suffix(2000))"
        )
        #expect(collectors[1].counter(Self.accepted) == settled.accepted, "a line read again was accepted as new")
        try expectExactlyOnce(expected, "after n1's file was read again")
        try expectStoredOnce(servers, expected, "after n1's file was read again")
        phase("re-read counted as duplicates")

        // The killed collector started again on the same store; then a mark through collector
        // 1, and the stream read from every collector with one cursor: the same event.
        try collectors[2].launch()
        try collectors[2].waitUntilListening()
        let stream1 = EventStreamClient(baseURL: collectors[0].url, token: token, client: .shared)
        let cursor = try await withTimeout(seconds: 20, "reading collector 1's stream to its end") {
            var last: Int64 = 0
            try await stream1.events(since: 0, follow: false) { event in
                last = event.id
                return true
            }
            return last
        }
        let mark = try logq(["mark", "task-1", "--collector-url", collectors[0].url, "--format", "json"], environment: ["MUSTER_TOKEN": token])
        try #require(mark.status == 0, "logq mark: \(mark.stderr)\(mark.stdout)")
        let recorded = try #require(
            try JSONSerialization.jsonObject(with: Data(mark.stdout.utf8)) as? [String: Any], "logq mark printed \(mark.stdout)")
        let markEvent = try #require((recorded["event"] as? NSNumber)?.int64Value, "logq mark printed no event id: \(mark.stdout)")
        #expect(markEvent > cursor)
        var seen: [String: StreamEvent] = [:]
        for collector in collectors {
            let stream = EventStreamClient(baseURL: collector.url, token: token, client: .shared)
            let first = try await withTimeout(seconds: 20, "waiting for the mark on collector \(collector.name)'s stream") {
                var first: StreamEvent?
                try await stream.events(since: cursor, follow: true) { event in
                    first = event
                    return false
                }
                return first
            }
            let event: StreamEvent = try #require(first, "collector \(collector.name)'s stream ended without an event")
            seen[collector.name] = event
        }
        for (name, event) in seen.sorted(by: { $0.key < $1.key }) {
            #expect(event.id == markEvent && event.kind == "mark", "collector \(name) gave \(event) after \(cursor), not mark \(markEvent)")
            #expect(event.data == seen["c1"]?.data, "collector \(name)'s event body differs from collector c1's: \(event.data)")
        }
        #expect(seen["c1"]?.data.contains("\"name\":\"task-1\"") == true, "the mark event's body: \(seen["c1"]?.data ?? "")")
        phase("mark on every stream")

        // logq --store: the mark is listed; SQL is SQLite's and refused here.
        let marks = try logq(["marks", "--store", collectors[0].configPath, "--format", "json"])
        #expect(marks.status == 0, "\(marks.stderr)")
        let markRows = marks.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(markRows.count == 1 && markRows.first?["name"] as? String == "task-1", "logq marks printed: \(marks.stdout)")
        #expect((markRows.first?["event"] as? NSNumber)?.int64Value == markEvent, "logq marks printed: \(marks.stdout)")
        let sql = try logq(["sql", "--store", collectors[1].configPath, "select 1"])
        #expect(sql.status == 69, "logq sql --store exited \(sql.status): \(sql.stderr)")
        #expect(sql.stderr.contains("SQLite") && sql.stderr.contains("--db"), "logq sql --store said: \(sql.stderr)")
        #expect(sql.stdout.isEmpty)
        phase("logq marks and sql")

        // logq logs --tail 2 -f: the two newest lines, then only lines stored after it began
        // (none come now). Following starts below the lines of the last 10 s on this store;
        // those are history, not new lines.
        let follower = try RunningProcess(
            try Binaries.path("logq"), ["logs", "--store", collectors[0].configPath, "--source", "app", "--tail", "2", "-f", "--format", "json"],
            logPath: "\(directory)/follow.out", environment: ["NO_COLOR": "1"])
        func followed() -> [Substring] { follower.log().split(separator: "\n").filter { $0.hasPrefix("{") } }
        _ = waitUntil(timeout: 60, interval: 0.2) { followed().count >= 2 }
        try await Task.sleep(for: .seconds(3))  // a dozen polls: anything more would be printed by now
        follower.stop()
        #expect(followed().count == 2, "logq logs --tail 2 -f printed \(followed().count) lines: \(followed().prefix(4))")
        phase("logq logs --tail 2 -f")

        print(
            "ScaleOutTests: collector 3 killed with \(killedAt.written) of \(Self.linesAfterKill) new lines written and "
                + "\(killedAt.accepted - acceptedBeforeKill) of them stored by it; timeline: \(phases.joined(separator: ", "))")
    }

    // MARK: helpers

    static let accepted = "muster_ingest_records_accepted_total"
    static let duplicates = "muster_ingest_records_duplicate_total"

    func logFile(_ node: String) -> String { "\(directory)/logs-\(node)/app.log" }

    /// (Re)starts `node`'s agent on `collector`, with its state directory kept across restarts.
    func startAgent(_ node: String, collector: ScaleOutCollector) throws {
        agents[node] = try RunningProcess(
            try Binaries.path("muster-agent"),
            [
                "--node", node, "--collector-url", collector.url, "--token", token, "--state-dir", "\(directory)/state-\(node)",
                "--file", "app=\(directory)/logs-\(node)/*.log",
            ],
            logPath: "\(directory)/agent-\(node).log")
    }

    func logq(_ arguments: [String], environment: [String: String] = [:]) throws -> FinishedCommand {
        try FinishedCommand.run(
            try Binaries.path("logq"), arguments, environment: ["NO_COLOR": "1", "TZ": "UTC"].merging(environment) { $1 },
            directory: directory)
    }

    /// The app lines `logq logs --store` prints, as (node, message).
    func storedLines() throws -> [(node: String, message: String)] {
        let result = try logq(["logs", "--store", collectors[0].configPath, "--source", "app", "--format", "json"])
        guard result.status == 0 else { throw TestSetupError("logq logs --store exited \(result.status): \(result.stderr)") }
        return try result.stdout.split(separator: "\n").map { line in
            guard let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let node = row["node"] as? String, let message = row["message"] as? String
            else { throw TestSetupError("logq logs printed a line that is not a log row: \(line)") }
            return (node, message)
        }
    }

    /// Waits (bounded, by outcome) until logq shows every expected line.
    func waitForLines(_ expected: [String: [String]], timeout: TimeInterval, _ what: String) throws {
        let total = expected.values.reduce(0) { $0 + $1.count }
        var shown = 0
        let arrived = try waitUntil(timeout: timeout, interval: 0.5) {
            shown = Set(try storedLines().map { "\($0.node) \($0.message)" }).count
            return shown >= total
        }
        if !arrived {
            let logs = (collectors.map { "\($0.name):\n\($0.log().suffix(1500))" } + agents.sorted { $0.key < $1.key }.map {
                "agent \($0.key):\n\($0.value.log().suffix(1500))"
            }).joined(separator: "\n")
            Issue.record("\(what): logq shows \(shown) of \(total) lines after \(Int(timeout)) s\n\(logs)")
            throw TestSetupError("\(what) did not arrive")
        }
    }

    /// Every expected line shown once under its node, none twice, none other.
    func expectExactlyOnce(_ expected: [String: [String]], _ when: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var counts: [String: Int] = [:]
        for line in try storedLines() { counts["\(line.node) \(line.message)", default: 0] += 1 }
        let wanted = Set(expected.flatMap { node, messages in messages.map { "\(node) \($0)" } })
        let missing = wanted.subtracting(counts.keys)
        let twice = counts.filter { $0.value > 1 }
        let unexpected = Set(counts.keys).subtracting(wanted)
        #expect(
            missing.isEmpty && twice.isEmpty && unexpected.isEmpty,
            "\(when): \(wanted.count) lines written, \(counts.values.reduce(0, +)) shown; missing \(missing.count) (e.g. \(missing.sorted().prefix(3))), shown more than once \(twice.count) (e.g. \(twice.keys.sorted().prefix(3))), not written \(unexpected.count) (e.g. \(unexpected.sorted().prefix(3)))",
            sourceLocation: sourceLocation)
    }

    /// `logq stats --store`: each node's line count.
    func expectStats(_ expected: [String: [String]], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let stats = try logq(["stats", "--store", collectors[2].configPath])
        #expect(stats.status == 0, "\(stats.stderr)", sourceLocation: sourceLocation)
        var lines: [String: Int] = [:]
        for row in stats.stdout.split(separator: "\n") {
            let cells = row.split(separator: " ", omittingEmptySubsequences: true)
            if cells.count >= 3, cells[1] == "app", let count = Int(cells[2]) { lines[String(cells[0])] = count }
        }
        #expect(lines == expected.mapValues(\.count), "logq stats --store printed:\n\(stats.stdout)", sourceLocation: sourceLocation)
    }

    /// What ClickHouse physically holds: one row per line in `logs_local` and `ids_local` (on
    /// the replicas the collectors insert into), so a resend was not stored a second time.
    func expectStoredOnce(
        _ servers: ScaleOutTestServers, _ expected: [String: [String]], _ when: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let total = expected.values.reduce(0) { $0 + $1.count }
        for table in ["logs_local", "ids_local"] {
            let counts = try servers.physicalCount(
                "SELECT count(), uniqExact(agent, src, gen, off) FROM \(database).\(table) WHERE src = 'app'")
            #expect(
                counts == [total, total], "\(when): \(table) holds \(counts[0]) rows for \(counts[1]) lines, \(total) written",
                sourceLocation: sourceLocation)
        }
    }
}

/// `body`'s result, or a failure when it takes longer than `seconds` (it is then cancelled).
func withTimeout<T: Sendable>(seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw TestSetupError("\(what): no outcome within \(Int(seconds)) s")
        }
        return result
    }
}

import AsyncHTTPClient
import Foundation
import MusterWire
import NIOCore
import Synchronization
import Testing

/// The two stores side by side: one scripted history (log lines of several nodes and sources,
/// every kind of event-journal line, resends, a partial resend, a racing resend) posted as
/// ingest batches to a SQLite collector and, batch for batch, to one of three collectors on the
/// scale-out store (ClickHouse + etcd); then every logq command against `--db` and against
/// `--store` must print the same bytes and exit with the same code.
///
/// What is not compared byte for byte, and why:
/// - `logq mark` takes no time: a mark is the collector's clock when it is recorded, so the two
///   sides' marks are milliseconds apart. Everything time-dependent (logs, hist, report, export)
///   is compared before the marks exist; after them `marks` and the per-task export are
///   compared with each side's mark instants replaced by placeholders (`MARK-1`, `MARK-2`).
/// - `stats`: database and WAL bytes, ingest rates and the search index lag are the backend's
///   own numbers; only the per-node/source table (lines, bytes, first, last) is compared.
/// - `export --out DIR` and `report --out FILE` print the path they wrote: each side's path is
///   replaced by `OUT` before comparing; the files themselves are compared byte for byte.
/// - No logq output prints line ids (SQLite's rowid against the collector's clock on the
///   scale-out side), so no id needs normalising.
/// - A racing resend (one batch posted to the three scale-out collectors at once) may be counted
///   `accepted` by more than one (docs/scale-out.md, "A line stored once"): its answers are
///   checked for consistency rather than against SQLite's (accepted, then duplicates). What the
///   race stored twice every reader must still show once, and that is compared.
@Suite(.serialized, .scaleOutServers) final class ScaleOutDifferentialTests {
    let directory: String
    let token = "differential-token-\(UUID().uuidString.prefix(8))"
    /// The test's own ClickHouse database and etcd namespace.
    let database = "diff_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    var sqlite: LoopbackPipeline?
    var collectors: [ScaleOutCollector] = []

    /// Retention off on both sides: the history is dated November 2026, past the default 14 days.
    static let noRetention = """
        retention:
          logs_max_age_hours: 0
          history_max_age_hours: 0

        """

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-e2e-differential-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        for collector in collectors { collector.stop() }
        sqlite?.stopCollector()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func theSameHistoryGivesTheSameLogqOutputFromSQLiteAndFromTheScaleOutStore() async throws {
        let servers = try #require(ScaleOutTestServers.current, "the suite's .scaleOutServers trait started no servers")
        let started = Date()
        var phases: [String] = []
        func phase(_ name: String) { phases.append("\(name) \(String(format: "%.1f", Date().timeIntervalSince(started)))s") }

        // One SQLite collector, three collectors on one scale-out store (fresh database/namespace).
        let pipeline = try LoopbackPipeline("differential")
        pipeline.collectorConfig = Self.noRetention
        sqlite = pipeline
        let store = servers.storeSection(database: database) + "\n" + Self.noRetention
        collectors = try (1...3).map { try ScaleOutCollector(name: "d\($0)", directory: directory, storeSection: store, token: token) }
        for collector in collectors { try collector.launch() }
        try pipeline.startCollector()
        for collector in collectors { try collector.waitUntilListening() }
        let sqliteURL = "http://127.0.0.1:\(pipeline.port)"
        phase("collectors up")

        // The history, posted step by step to both sides.
        let script = DifferentialHistory.script()
        var rotation = 0
        var sentTo: [Int: Int] = [:]
        for (number, step) in script.steps.enumerated() {
            let batch = script.batches[step.batch]
            let body = try BatchCompressor().compress(batch.encoded())
            switch step.kind {
            case .send, .resend:
                // New batches rotate over the collectors; a resend goes to another one than its first send.
                var target = rotation % collectors.count
                if case .resend = step.kind, let first = sentTo[step.batch], first == target { target = (target + 1) % collectors.count }
                rotation += 1
                if sentTo[step.batch] == nil { sentTo[step.batch] = target }
                let expected = try await Self.post(body, to: sqliteURL, token: pipeline.token)
                let answer = try await Self.post(body, to: collectors[target].url, token: token)
                #expect(
                    expected.status == 200 && answer.status == 200 && expected.counts == answer.counts,
                    "step \(number) (\(step.kind) of \(batch.label), \(batch.records.count) records): SQLite answered \(expected.status) \(expected.text), collector \(collectors[target].name) \(answer.status) \(answer.text)"
                )
            case .race:
                // The same batch to the three scale-out collectors at once; SQLite gets it twice in turn.
                let first = try await Self.post(body, to: sqliteURL, token: pipeline.token)
                let second = try await Self.post(body, to: sqliteURL, token: pipeline.token)
                #expect(first.counts == Counts(accepted: batch.records.count, duplicates: 0), "SQLite: \(first.text)")
                #expect(second.counts == Counts(accepted: 0, duplicates: batch.records.count), "SQLite resend: \(second.text)")
                let urls = collectors.map(\.url)
                let token = token
                let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                    for url in urls { group.addTask { try await Self.post(body, to: url, token: token) } }
                    return try await group.reduce(into: [Answer]()) { $0.append($1) }
                }
                for answer in answers {
                    #expect(
                        answer.status == 200 && answer.counts.accepted + answer.counts.duplicates == batch.records.count,
                        "racing resend of \(batch.label): \(answer.status) \(answer.text)")
                }
                #expect(
                    answers.map(\.counts.accepted).reduce(0, +) >= batch.records.count,
                    "racing resend of \(batch.label): fewer lines accepted than sent: \(answers.map(\.text))")
                print("ScaleOutDifferentialTests: racing resend of \(batch.label): \(answers.map(\.text).joined(separator: " and "))")
            }
        }
        // What the races left: rows in ClickHouse beyond one per line (copies every reader must hide).
        let rows = try servers.physicalCount("SELECT count(), uniqExact(agent, src, gen, off) FROM \(database).logs_local")
        print("ScaleOutDifferentialTests: ClickHouse holds \(rows[0]) rows for \(rows[1]) lines (\(rows[0] - rows[1]) copies from the races)")
        phase("\(script.steps.count) posts (\(script.batches.map(\.records.count).reduce(0, +)) records in \(script.batches.count) batches)")

        let db = pipeline.database
        let configs = collectors.map(\.configPath)
        var checker = DifferentialChecker(directory: directory, db: db, storeConfigs: configs)
        func t(_ seconds: Int, ms: Int = 0, ns: Int64 = 0) -> String { DifferentialHistory.time(seconds, ms: ms, ns: ns) }

        // logq logs. Scans of every line (16,000 lines; with the race's copies up to 31,000 rows)
        // are few: each costs the scale-out side seconds of a debug build's CPU (decoding rows);
        // the other filters leave the busy nodes out with a range or a node.
        let quiet = t(100)
        checker.compare("logs", ["logs"])
        checker.compare("logs json", ["logs", "--format", "json"])
        checker.compare("logs csv (before the busy nodes)", ["logs", "--until", quiet, "--format", "csv"])
        checker.compare("logs --node web1", ["logs", "--node", "web1"])
        checker.compare("logs --node web2 --node lb json", ["logs", "--node", "web2", "--node", "lb", "--format", "json"])
        checker.compare("logs --node bulk csv", ["logs", "--node", "bulk", "--format", "csv"])
        checker.compare("logs --node burst json", ["logs", "--node", "burst", "--format", "json"])
        checker.compare("logs --source haproxy json", ["logs", "--source", "haproxy", "--format", "json"])
        checker.compare("logs --source events json", ["logs", "--source", "events", "--format", "json"])
        checker.compare("logs --source worker --source app", ["logs", "--source", "worker", "--source", "app", "--until", quiet])
        checker.compare("logs --node with non-ASCII and a slash", ["logs", "--node", "café/01", "--format", "csv"])
        checker.compare("logs --node web3 --source worker json", ["logs", "--node", "web3", "--source", "worker", "--format", "json"])
        checker.compare("logs --since/--until", ["logs", "--since", t(20), "--until", t(31)])
        checker.compare("logs --since into the busy nodes", ["logs", "--since", t(95), "--until", t(100, ms: 20), "--format", "json"])
        checker.compare("logs --since (open end)", ["logs", "--since", t(125)])
        checker.compare("logs --until (open start)", ["logs", "--until", t(5, ms: 500)])
        checker.compare("logs the tie instant", ["logs", "--since", t(20), "--until", t(20, ns: 1), "--format", "json"])
        checker.compare("logs --since = --until", ["logs", "--since", t(20), "--until", t(20)])
        checker.compare("logs --match deadlock", ["logs", "--match", "deadlock"])
        checker.compare("logs --match two words json", ["logs", "--match", "Deadlock detected", "--format", "json"])
        checker.compare("logs --match diacritics", ["logs", "--match", "cafe creme"])
        checker.compare("logs --match non-ASCII", ["logs", "--match", "東京", "--until", quiet])
        checker.compare("logs --match --node", ["logs", "--match", "payment gateway", "--node", "web1"])
        checker.compare("logs --match --since/--until", ["logs", "--match", "timeout", "--since", t(10), "--until", t(50)])
        checker.compare("logs --match --grep", ["logs", "--match", "GET", "--grep", "id=1[0-9] ", "--until", quiet])
        checker.compare("logs --grep 5xx", ["logs", "--grep", " 50[0-9] ", "--until", quiet])
        checker.compare("logs --grep case-insensitive", ["logs", "--grep", "(?i)café", "--until", quiet, "--format", "csv"])
        checker.compare("logs --grep --source --node", ["logs", "--grep", "^GET .*id=1[0-9]{2} ", "--source", "app", "--node", "web1", "--node", "web4"])
        checker.compare("logs --tail 5", ["logs", "--tail", "5"])
        checker.compare("logs --tail 10005 --node bulk csv", ["logs", "--tail", "10005", "--node", "bulk", "--format", "csv"])
        checker.compare("logs --tail --node", ["logs", "--tail", "7", "--node", "web2"])
        checker.compare("logs --tail 0", ["logs", "--tail", "0"])
        checker.compare("logs --limit 3", ["logs", "--limit", "3"])
        checker.compare("logs --limit 10005 --node burst", ["logs", "--limit", "10005", "--node", "burst"])
        checker.compare("logs --limit --since", ["logs", "--limit", "4", "--since", t(21)])
        checker.compare("logs --limit inside a tie", ["logs", "--node", "bulk", "--since", t(100, ms: 9_990), "--limit", "5"])
        checker.compare("logs --tail inside a tie", ["logs", "--node", "bulk", "--until", t(100, ms: 9_991), "--tail", "5"])
        checker.compare("logs --tail 10005 --node burst", ["logs", "--tail", "10005", "--node", "burst", "--format", "json"])
        // `-C` where the race planted copies (burst's lines): the scale-out reader once took a
        // hit's neighbours with `LIMIT 1 BY off LIMIT n` on the Distributed table, which 18.16
        // limits on each shard first, so a context line was skipped next to a copied one
        // (`ClickHouseLogTests.contextNextToACopiedLineHasAllItsNeighbours` pins it down).
        checker.compare("logs --match -C 2", ["logs", "--match", "deadlock", "-C", "2"])
        checker.compare("logs --grep -C 2 json", ["logs", "--grep", "ERROR", "-C", "2", "--format", "json"])
        checker.compare("logs -C 2 across a rotation", ["logs", "--node", "web2", "--grep", "rotat", "-C", "2"])
        checker.compare("logs -C 2 on ties", ["logs", "--match", "tie", "-C", "2", "--format", "csv"])
        checker.compare("logs -C 2 --tail", ["logs", "--match", "deadlock", "-C", "2", "--tail", "2"])
        checker.compare("logs -C 2 on a tie at a page boundary", ["logs", "--node", "bulk", "--grep", "line 0(099[89]|1000[01])[0-9] ", "-C", "2"])
        checker.compare("logs -C 2 on copies", ["logs", "--node", "burst", "--grep", "line 0049[0-9][05] ", "-C", "2"])
        checker.compare("logs unknown node", ["logs", "--node", "nope"])
        checker.compare("logs unknown source", ["logs", "--source", "nope"])
        checker.compare("logs bad regex", ["logs", "--grep", "("])
        checker.compare("logs --match without words", ["logs", "--match", "!!!"])
        phase("logs compared")

        // Membership, nodes, inventories, the timeline.
        let instants: [(String, String)] = [
            ("before anything", t(0, ns: -1)), ("the first change", t(0)), ("web1 joined", t(1)), ("a late report moved back", t(30)),
            ("before the first report of web3", t(29, ms: 999)), ("readdressed", t(36)), ("updated", t(46)), ("left", t(50)),
            ("left, then reported failed", t(52)), ("failed", t(60)), ("a snapshot too soon", t(66)), ("a snapshot in time", t(76)),
            ("replaced", t(80)), ("reaped", t(86)), ("updated in a raced batch", t(92)), ("the end", t(200)),
        ]
        for (name, instant) in instants {
            checker.compare("members --at \(name)", ["members", "--at", instant])
        }
        checker.compare("members (now)", ["members"])
        checker.compare("members --at json", ["members", "--at", t(36), "--format", "json"])
        checker.compare("members --at csv", ["members", "--at", t(80), "--format", "csv"])
        for (name, instant) in instants where ["the first change", "updated", "left", "failed", "replaced", "reaped", "the end"].contains(name) {
            checker.compare("nodes --at \(name)", ["nodes", "--at", instant])
        }
        checker.compare("nodes (now)", ["nodes"])
        checker.compare("nodes json", ["nodes", "--at", t(63), "--format", "json"])
        checker.compare("nodes csv", ["nodes", "--format", "csv"])
        checker.compare("inspect lb", ["inspect", "lb"])
        checker.compare("inspect web1 --at 10s", ["inspect", "web1", "--at", t(10)])
        checker.compare("inspect web1 --at 63s", ["inspect", "web1", "--at", t(63)])
        checker.compare("inspect web1 (now)", ["inspect", "web1"])
        checker.compare("inspect before its inventory", ["inspect", "web2", "--at", t(1)])
        checker.compare("inspect unknown node", ["inspect", "nope"])
        checker.compare("inspect a node not in serf", ["inspect", "collector"])
        checker.compare("inspect web4 after the race", ["inspect", "web4", "--at", t(93)])
        checker.compare("timeline", ["timeline"])
        checker.compare("timeline json", ["timeline", "--format", "json"])
        checker.compare("timeline csv", ["timeline", "--format", "csv"])
        checker.compare("timeline --since/--until", ["timeline", "--since", t(30), "--until", t(60)])
        checker.compare("timeline --member", ["timeline", "--member", "web3"])
        checker.compare("timeline --member twice", ["timeline", "--member", "web1", "--member", "web4", "--format", "json"])
        checker.compare("timeline --member unknown", ["timeline", "--member", "nope"])

        // Configurations.
        checker.compare("configs", ["configs"])
        checker.compare("configs list json", ["configs", "list", "--format", "json"])
        checker.compare("configs list csv --node", ["configs", "list", "--node", "lb", "--format", "csv"])
        checker.compare("configs list --node unknown", ["configs", "list", "--node", "nope"])
        for version in 1...5 { checker.compare("configs show \(version)", ["configs", "show", String(version)]) }
        checker.compare("configs show --node", ["configs", "show", "2", "--node", "lb"])
        checker.compare("configs show --node lb2", ["configs", "show", "2", "--node", "lb2"])
        checker.compare("configs diff --node lb2", ["configs", "diff", "1", "2", "--node", "lb2"])
        checker.compare("configs list --node lb2 json", ["configs", "list", "--node", "lb2", "--format", "json"])
        checker.compare("configs show unknown", ["configs", "show", "99"])
        checker.compare("configs diff 1 2", ["configs", "diff", "1", "2"])
        checker.compare("configs diff 2 3", ["configs", "diff", "2", "3"])
        checker.compare("configs diff 1 5", ["configs", "diff", "1", "5"])
        checker.compare("configs diff 3 3", ["configs", "diff", "3", "3"])
        checker.compare("configs diff unknown", ["configs", "diff", "1", "42"])
        checker.compare("marks (none yet)", ["marks"])
        phase("history compared")

        // Histograms, stats.
        checker.compare("hist", ["hist"])
        checker.compare("hist --by 10s", ["hist", "--by", "10s"])
        checker.compare("hist --by 1s --since/--until", ["hist", "--by", "1s", "--since", t(0), "--until", t(30)])
        checker.compare("hist --by 1h", ["hist", "--by", "1h", "--format", "json"])
        checker.compare("hist --errors", ["hist", "--errors"])
        checker.compare("hist --errors --by 10s --node", ["hist", "--errors", "--by", "10s", "--node", "web1", "--node", "lb"])
        checker.compare("hist json", ["hist", "--by", "30s", "--format", "json"])
        checker.compare("hist csv", ["hist", "--by", "5s", "--since", t(15), "--until", t(65), "--format", "csv"])
        checker.compare("hist --errors csv", ["hist", "--errors", "--by", "20s", "--format", "csv"])
        checker.compare("hist unknown node", ["hist", "--node", "nope"])
        // stats: the per-node/source table only (see the type's comment).
        checker.compare("stats (per node and source)", ["stats"]) { $0.components(separatedBy: "\n\n").first ?? "" }
        checker.compare("stats json (per node and source)", ["stats", "--format", "json"]) { text in
            text.split(separator: "\n").filter { !$0.contains("\"node\":null") }.joined(separator: "\n")
        }

        // Report and export (whole history, no marks yet).
        checker.compareReport("report", [])
        checker.compareReport("report --since/--until", ["--since", t(10), "--until", t(60)])
        checker.compareReport("report --mark unknown", ["--mark", "nope"])
        checker.compareExport("export", [])
        checker.compareExport("export --mark unknown", ["--mark", "nope"])
        phase("hist, stats, report, export compared")

        // Marks: two through the SQLite collector, the same two through one scale-out collector.
        // Their times are each collector's clock, so only names, events and notes can agree.
        let marks = [("task-a", "first task ✓"), ("task-b", "second task")]
        var markTimes: (sqlite: [String], scaleOut: [String]) = ([], [])
        for (name, note) in marks {
            for side in 0..<2 {
                let url = side == 0 ? sqliteURL : collectors[1].url
                let result = try checker.logq(
                    ["mark", name, "--note", note, "--collector-url", url, "--format", "json"],
                    environment: ["MUSTER_TOKEN": side == 0 ? pipeline.token : token])
                try #require(result.status == 0, "logq mark \(name) through \(url): \(result.stderr)\(result.stdout)")
                let object = try #require(
                    try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "logq mark printed \(result.stdout)")
                let time = try #require(object["time"] as? String, "logq mark printed \(result.stdout)")
                if side == 0 { markTimes.sqlite.append(time) } else { markTimes.scaleOut.append(time) }
            }
        }
        // From here each side's mark instants (RFC 3339, and as nanoseconds in JSON) read
        // `MARK-1`, `MARK-2`: names, notes, event ids and everything around them must agree.
        // The history lies before both sides' marks, so the tasks hold the same (no) lines.
        checker.markInstants = (markTimes.sqlite, markTimes.scaleOut)
        checker.compare("marks", ["marks"])
        checker.compare("marks json", ["marks", "--format", "json"])
        checker.compare("marks csv", ["marks", "--format", "csv"])
        checker.compareExport("export per task", [])
        checker.compareExport("export --mark task-b", ["--mark", "task-b"])
        // (Not `report --mark`: its axis ticks and the task's duration come from the span
        // between the marks, which differs between the sides by a few milliseconds.)
        phase("marks compared")

        print(
            "ScaleOutDifferentialTests: \(checker.compared) logq invocations compared on both stores, \(checker.differences.count) differing; "
                + "timeline: \(phases.joined(separator: ", "))")
        let slowest = checker.timings.sorted { $0.1 > $1.1 }.prefix(8).map { "\($0.0) \(String(format: "%.2f", $0.1))s" }
        print("ScaleOutDifferentialTests: slowest comparisons: \(slowest.joined(separator: "; "))")
        for difference in checker.differences {
            Issue.record(Comment(rawValue: difference.description))
        }
    }

    // MARK: posting

    struct Counts: Equatable {
        var accepted: Int
        var duplicates: Int
    }

    struct Answer {
        var status: UInt
        var counts: Counts
        var text: String
    }

    static func post(_ body: ByteBuffer, to url: String, token: String) async throws -> Answer {
        var request = HTTPClientRequest(url: url + "/v1/ingest")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/x-ndjson")
        request.headers.add(name: "Content-Encoding", value: "deflate")
        request.body = .bytes(body)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        let counts = Counts(
            accepted: (object?["accepted"] as? NSNumber)?.intValue ?? -1, duplicates: (object?["duplicates"] as? NSNumber)?.intValue ?? -1)
        return Answer(status: response.status.code, counts: counts, text: text)
    }
}

// MARK: - Running logq on both sides

/// Runs logq against `--db` and `--store` (at once) and keeps what differs.
struct DifferentialChecker {
    let directory: String
    let db: String
    let storeConfigs: [String]
    var compared = 0
    var differences: [Difference] = []
    /// Each side's mark times (RFC 3339 as logq prints them), replaced by `MARK-1`, `MARK-2` …
    /// once set.
    var markInstants: (sqlite: [String], scaleOut: [String])?
    private var outputs = 0

    struct Difference: CustomStringConvertible {
        var label: String
        var command: String
        var detail: String
        var description: String { "logq \(command): SQLite and scale-out differ (\(label)): \(detail)" }
    }

    init(directory: String, db: String, storeConfigs: [String]) {
        self.directory = directory
        self.db = db
        self.storeConfigs = storeConfigs
    }

    func logq(_ arguments: [String], environment: [String: String] = [:]) throws -> FinishedCommand {
        try FinishedCommand.run(
            try Binaries.path("logq"), arguments, environment: ["NO_COLOR": "1", "TZ": "UTC"].merging(environment) { $1 },
            directory: directory)
    }

    /// Both sides at once: (SQLite, scale-out).
    mutating func both(_ arguments: [String]) -> (FinishedCommand, FinishedCommand) {
        let store = storeConfigs[compared % storeConfigs.count]
        compared += 1
        let started = Date()
        defer { timings.append((arguments.joined(separator: " "), Date().timeIntervalSince(started))) }
        return Self.runSides([arguments + ["--db", db], arguments + ["--store", store]], directory: directory)
    }

    /// How long each comparison took (both sides at once), for the slowest ones in the log.
    var timings: [(String, TimeInterval)] = []

    /// `MUSTER_DIFFERENTIAL_KEEP=DIR` keeps both sides' outputs of each differing comparison there.
    static let keep = ProcessInfo.processInfo.environment["MUSTER_DIFFERENTIAL_KEEP"]

    func keepOutputs(_ label: String, _ sqlite: String, _ scaleOut: String) {
        guard let keep = Self.keep else { return }
        try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
        let name = label.map { $0.isLetter || $0.isNumber ? $0 : "_" }
        try? sqlite.write(toFile: "\(keep)/\(String(name)).sqlite", atomically: true, encoding: .utf8)
        try? scaleOut.write(toFile: "\(keep)/\(String(name)).scaleout", atomically: true, encoding: .utf8)
    }

    /// Two logq runs at once (each blocks a thread until its process ends).
    static func runSides(_ sides: [[String]], directory: String) -> (FinishedCommand, FinishedCommand) {
        let results = Mutex<[Int: FinishedCommand]>([:])
        DispatchQueue.concurrentPerform(iterations: 2) { side in
            let result: FinishedCommand
            do {
                result = try FinishedCommand.run(
                    try Binaries.path("logq"), sides[side], environment: ["NO_COLOR": "1", "TZ": "UTC"], directory: directory)
            } catch {
                result = FinishedCommand(status: -1, stdout: "", stderr: "logq could not be run: \(error)")
            }
            results.withLock { $0[side] = result }
        }
        let finished = results.withLock { $0 }
        return (finished[0]!, finished[1]!)
    }

    /// Replaces each side's mark instants by placeholders (after the marks exist).
    func normaliseMarks(_ text: String, sqlite: Bool) -> String {
        guard let markInstants else { return text }
        var text = text
        for (index, instant) in (sqlite ? markInstants.sqlite : markInstants.scaleOut).enumerated() {
            text = text.replacingOccurrences(of: instant, with: "MARK-\(index + 1)")
            // The instant as a number of nanoseconds, as JSON prints it.
            if let nanos = Timestamp.parseRFC3339(instant) { text = text.replacingOccurrences(of: String(nanos), with: "MARK-\(index + 1)-NS") }
        }
        return text
    }

    /// One command on both sides: exit codes, stdout (after `normalise`) and stderr compared.
    mutating func compare(_ label: String, _ arguments: [String], normalise: (String) -> String = { $0 }) {
        let (sqlite, scaleOut) = both(arguments)
        let command = arguments.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
        if sqlite.status != scaleOut.status {
            note(label, command, "exit \(sqlite.status) against \(scaleOut.status); stderr: «\(sqlite.stderr.trimmed)» against «\(scaleOut.stderr.trimmed)»")
        }
        let (left, right) = (normalise(normaliseMarks(sqlite.stdout, sqlite: true)), normalise(normaliseMarks(scaleOut.stdout, sqlite: false)))
        if left != right {
            note(label, command, "stdout " + Self.firstDifference(left, right))
            keepOutputs(label, left, right)
        }
        if sqlite.stderr != scaleOut.stderr {
            note(label, command, "stderr " + Self.firstDifference(sqlite.stderr, scaleOut.stderr))
        }
        if sqlite.status != 0, ![64, 65].contains(sqlite.status) {
            note(label, command, "SQLite side exited \(sqlite.status): \(sqlite.stderr.trimmed)")
        }
    }

    /// `logq report --out FILE …` on both sides; the files compared byte for byte.
    mutating func compareReport(_ label: String, _ arguments: [String]) {
        outputs += 1
        for side in ["sqlite", "scaled"] { try? FileManager.default.createDirectory(atPath: "\(directory)/\(side)", withIntermediateDirectories: true) }
        // The same length on both sides: text output pads columns to the path's width.
        let files = ["\(directory)/sqlite/report-\(outputs).html", "\(directory)/scaled/report-\(outputs).html"]
        let (sqlite, scaleOut) = bothWithOut(["report"] + arguments, outs: files)
        let command = (["report"] + arguments).joined(separator: " ")
        compareFinished(label, command, sqlite, scaleOut, outs: files)
        let contents = files.map { (try? String(contentsOfFile: $0, encoding: .utf8)) }
        if contents[0] != nil || contents[1] != nil {
            let left = normaliseMarks(contents[0] ?? "<no file>", sqlite: true)
            let right = normaliseMarks(contents[1] ?? "<no file>", sqlite: false)
            if left != right {
                note(label, command, "the HTML file " + Self.firstDifference(left, right))
                keepOutputs(label + " html", left, right)
            }
        }
    }

    /// `logq export --out DIR …` on both sides; every file compared byte for byte.
    mutating func compareExport(_ label: String, _ arguments: [String]) {
        outputs += 1
        let folders = ["\(directory)/sqlite/export-\(outputs)", "\(directory)/scaled/export-\(outputs)"]
        let (sqlite, scaleOut) = bothWithOut(["export"] + arguments, outs: folders)
        let command = (["export"] + arguments).joined(separator: " ")
        compareFinished(label, command, sqlite, scaleOut, outs: folders)
        let trees = folders.map(Self.files(under:))
        let names = Set(trees[0].keys).union(trees[1].keys).sorted()
        for name in names {
            guard let left = trees[0][name], let right = trees[1][name] else {
                note(label, command, "\(name) written only \(trees[0][name] == nil ? "from the scale-out store" : "from SQLite")")
                continue
            }
            let (a, b) = (normaliseMarks(String(decoding: left, as: UTF8.self), sqlite: true), normaliseMarks(String(decoding: right, as: UTF8.self), sqlite: false))
            if a != b {
                note(label, command, "file \(name) " + Self.firstDifference(a, b))
                keepOutputs(label + " " + name, a, b)
            }
        }
    }

    private mutating func bothWithOut(_ arguments: [String], outs: [String]) -> (FinishedCommand, FinishedCommand) {
        let store = storeConfigs[compared % storeConfigs.count]
        compared += 1
        let started = Date()
        defer { timings.append((arguments.joined(separator: " "), Date().timeIntervalSince(started))) }
        return Self.runSides(
            [arguments + ["--out", outs[0], "--db", db], arguments + ["--out", outs[1], "--store", store]], directory: directory)
    }

    private mutating func compareFinished(_ label: String, _ command: String, _ sqlite: FinishedCommand, _ scaleOut: FinishedCommand, outs: [String]) {
        if sqlite.status != scaleOut.status {
            note(label, command, "exit \(sqlite.status) against \(scaleOut.status); stderr: «\(sqlite.stderr.trimmed)» against «\(scaleOut.stderr.trimmed)»")
        }
        if sqlite.status != 0, ![64, 65].contains(sqlite.status) {
            note(label, command, "SQLite side exited \(sqlite.status): \(sqlite.stderr.trimmed)")
        }
        // Each side names its own --out path.
        let left = normaliseMarks(sqlite.stdout.replacingOccurrences(of: outs[0], with: "OUT"), sqlite: true)
        let right = normaliseMarks(scaleOut.stdout.replacingOccurrences(of: outs[1], with: "OUT"), sqlite: false)
        if left != right { note(label, command, "stdout " + Self.firstDifference(left, right)) }
        let errors = (sqlite.stderr.replacingOccurrences(of: outs[0], with: "OUT"), scaleOut.stderr.replacingOccurrences(of: outs[1], with: "OUT"))
        if errors.0 != errors.1 { note(label, command, "stderr " + Self.firstDifference(errors.0, errors.1)) }
    }

    private mutating func note(_ label: String, _ command: String, _ detail: String) {
        differences.append(Difference(label: label, command: command, detail: detail))
    }

    /// Every regular file under `root`, by path relative to it.
    static func files(under root: String) -> [String: Data] {
        var files: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return files }
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = root + "/" + relative
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            files[relative] = FileManager.default.contents(atPath: path) ?? Data()
        }
        return files
    }

    /// Where two outputs first differ: the line number and both lines (cut at 600 characters).
    static func firstDifference(_ left: String, _ right: String) -> String {
        let a = left.split(separator: "\n", omittingEmptySubsequences: false)
        let b = right.split(separator: "\n", omittingEmptySubsequences: false)
        func shown(_ lines: [Substring], _ index: Int) -> String {
            guard index < lines.count else { return "<end of output>" }
            let line = String(lines[index])
            return line.count > 600 ? String(line.prefix(600)) + "…" : line
        }
        let index = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        return "at line \(index + 1) of \(a.count) (SQLite) and \(b.count) (scale-out):\n  SQLite:    \(shown(a, index))\n  scale-out: \(shown(b, index))"
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

// MARK: - The history

/// A deterministic cluster history as ingest batches, and the order they are posted in.
struct DifferentialHistory {
    struct Batch {
        var label: String
        var records: [LogRecord]

        func encoded() -> [UInt8] {
            var encoder = BatchEncoder(capacity: 1 << 16)
            for record in records { encoder.append(record) }
            return encoder.bytes
        }
    }

    enum Kind: CustomStringConvertible {
        case send, resend, race
        var description: String {
            switch self {
            case .send: "send"
            case .resend: "resend"
            case .race: "racing resend"
            }
        }
    }

    struct Step {
        var batch: Int
        var kind: Kind
    }

    var batches: [Batch] = []
    var steps: [Step] = []
    private var pending: [String: [LogRecord]] = [:]
    private var nextOffset: [String: Int64] = [:]
    private var generation: [String: String] = [:]

    /// 2026-11-20T10:00:00Z: every time of the history is this plus a few seconds.
    static let base = Timestamp.nanos(year: 2026, month: 11, day: 20, hour: 10, minute: 0, second: 0)!

    static func at(_ seconds: Int, ms: Int = 0, ns: Int64 = 0) -> Int64 {
        base + Int64(seconds) * Timestamp.nanosPerSecond + Int64(ms) * 1_000_000 + ns
    }

    /// An instant of the history as logq prints it (RFC 3339, nanoseconds).
    static func time(_ seconds: Int, ms: Int = 0, ns: Int64 = 0) -> String { Timestamp.format(at(seconds, ms: ms, ns: ns)) }

    // MARK: building

    /// Appends a line of `node`'s `source` (its current generation) to what `node` ships next,
    /// at the offset the file would give it.
    mutating func line(_ node: String, _ source: String, _ t: Int64, _ message: String, fields: [String: FieldValue] = [:]) {
        let gen = generation["\(node)|\(source)"] ?? "\(node)-\(source)-1"
        let key = "\(node)|\(source)|\(gen)"
        let offset = nextOffset[key] ?? 0
        nextOffset[key] = offset + Int64(message.utf8.count) + 1
        pending[node, default: []].append(
            LogRecord(time: t, node: node, origin: Origin(agent: node, source: source, generation: gen, offset: offset), message: message, fields: fields))
    }

    mutating func rotate(_ node: String, _ source: String, to gen: String) { generation["\(node)|\(source)"] = gen }

    /// A journal line of `entry.observer`'s journal.
    mutating func journal(_ entry: JournalEntry) {
        line(entry.observer, JournalEntry.sourceID, entry.t, entry.encodedLine())
    }

    /// `node`'s pending lines as one batch (after `repeating` earlier records), posted next.
    @discardableResult
    mutating func ship(_ node: String, _ label: String, repeating: [LogRecord] = []) -> Int {
        batches.append(Batch(label: label, records: repeating + (pending[node] ?? [])))
        pending[node] = nil
        steps.append(Step(batch: batches.count - 1, kind: .send))
        return batches.count - 1
    }

    mutating func resend(_ batch: Int) { steps.append(Step(batch: batch, kind: .resend)) }

    mutating func race(_ batch: Int) { steps.append(Step(batch: batch, kind: .race)) }

    // MARK: the script

    static let lb = Member(name: "lb", address: "10.0.0.2", role: "ha", tags: ["role": "ha"])
    static let web1 = Member(name: "web1", address: "10.0.0.11", role: "web", tags: ["role": "web"])
    static let web2 = Member(name: "web2", address: "10.0.0.12", role: "web", tags: ["role": "web"])
    static let web3 = Member(name: "web3", address: "10.0.0.13", role: "web", tags: ["role": "web", "zone": "b"])
    static let web4 = Member(name: "web4", address: "10.0.0.11", role: "web", tags: ["role": "web"])

    static func inventory(_ member: Member, image: String?, services: [(String, Bool)], since: Int) -> Inventory {
        Inventory(
            node: member.name, hostname: "\(member.name).lab.internal", addresses: [member.address, "fe80::\(member.name.count)"],
            role: member.role, tags: member.tags, image: image, agentVersion: "0.9.0-test",
            services: services.enumerated().map { index, service in
                ServiceState(name: service.0, up: service.1, pid: service.1 ? 100 + index : nil, since: at(since, ms: index), wantedUp: true)
            })
    }

    static func haproxyConfig(_ servers: [(String, String)], maxconn: Int = 256) -> String {
        var text = "global\n    maxconn \(maxconn)\n    stats socket /run/haproxy/admin.sock mode 600 level admin\n\n"
        text += "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n"
        text += "frontend http-in\n    bind *:80\n    default_backend web\n\nbackend web\n    balance roundrobin\n"
        for (name, address) in servers { text += "    server \(name) \(address):8080 check\n" }
        return text
    }

    static func config(
        _ version: Int, _ servers: [(String, String)], previous: String?, trigger: [String], method: String, outcome: ConfigApply.Outcome,
        message: String? = nil, milliseconds: Int, maxconn: Int = 256
    ) -> ConfigApply {
        let text = haproxyConfig(servers, maxconn: maxconn)
        let hash = String(FNV1a.hash(Array(text.utf8)), radix: 16)
        return ConfigApply(
            version: version, sha256: String(repeating: hash, count: 4).prefix(64).description, text: text,
            diff: previous.map { ConfigDiff.unified(from: $0, to: text) } ?? "", trigger: trigger, method: method,
            durationMilliseconds: milliseconds, outcome: outcome, message: message, servers: servers.map(\.0))
    }

    static func stats(_ t: Int64, _ rows: [(String, String, Int, Int, Int)]) -> JournalEntry {
        JournalEntry(
            t: t, event: .haproxyStats, observer: "lb",
            stats: [ServerStats(proxy: "web", name: "BACKEND", status: "UP", currentSessions: 3, totalSessions: rows.map(\.3).reduce(0, +), responses2xx: rows.map(\.3).reduce(0, +), responses5xx: rows.map(\.4).reduce(0, +))]
                + rows.map { ServerStats(proxy: "web", name: $0.0, status: $0.1, currentSessions: $0.2, totalSessions: $0.3 + $0.4, responses2xx: $0.3, responses5xx: $0.4) })
    }

    /// web1's and web2's application lines: plain requests, errors, the `--match` words with
    /// and without diacritics, non-ASCII text, a tab, control characters, a multi-line message,
    /// an empty one and one a spreadsheet would run.
    static func appMessage(_ node: String, _ index: Int) -> String {
        switch index {
        case 7: return "line with ESC \u{1b}[31mred\u{1b}[0m, a DEL \u{7f} and a C1 \u{85} control"
        case 9: return "multi-line stack trace:\n  at Orders.commit (orders.swift:42)\n  at Worker.run (worker.swift:7)"
        case 11: return ""
        case 12: return "=HYPERLINK(\"http://x\",\"click\") -5 @sum +1"
        case 14: return "   leading and trailing spaces   "
        case 15: return "DÉADLOCK détecté sur la table « commandes » (n°\(index))"
        default: break
        }
        if index % 13 == 5 { return "ERROR payment gateway timeout after 3000ms (order \(node)-\(index))" }
        if index % 17 == 3 { return "Deadlock detected on table orders; retrying txn \(index)" }
        if index % 19 == 4 { return "Café crème: commande n°\(index) reçue — 東京 ✓ ünïcödé ошибка" }
        if index % 23 == 6 { return "WARN slow query\tduration=\(index)ms\ttable=orders" }
        if index % 29 == 8 { return "GET /api/fail HTTP/1.1 503 8979 upstream said no" }
        return "GET /api/items?id=\(index) HTTP/1.1 200 \(index % 97)ms"
    }

    static func haproxyLine(_ index: Int, _ t: Int64) -> (String, [String: FieldValue]) {
        let servers = ["web1", "web2", "web3"]
        let server = servers[index % 3]
        let status = index % 11 == 4 ? 503 : index % 29 == 7 ? 500 : index % 31 == 9 ? 504 : index % 7 == 3 ? 404 : 200
        let bytes = 200 + index * 7 % 900
        let tr = index * 3 % 50
        let seconds = (t - base) / Timestamp.nanosPerSecond
        let millis = (t - base) / 1_000_000 % 1000
        let stamp = String(format: "20/Nov/2026:10:%02d:%02d.%03d", Int(seconds / 60), Int(seconds % 60), Int(millis))
        let message =
            "haproxy[812]: 10.0.0.99:\(40000 + index) [\(stamp)] http-in web/\(server) 0/0/1/\(tr)/\(tr + 1) \(status) \(bytes) - - ---- 3/3/1/1/0 0/0 \"GET /api/items?id=\(index) HTTP/1.1\""
        let fields: [String: FieldValue] = [
            "client": .string("10.0.0.99"), "frontend": .string("http-in"), "backend": .string("web"), "server": .string(server),
            "status": .int(Int64(status)), "bytes": .int(Int64(bytes)), "termination": .string("----"), "retries": .int(0),
            "tq": .int(0), "tw": .int(0), "tc": .int(1), "tr": .int(Int64(tr)), "ta": .int(Int64(tr + 1)), "method": .string("GET"),
            "path": .string("/api/items?id=\(index)"),
        ]
        return (message, fields)
    }

    /// web3's structured worker lines: every kind of field value, awkward numbers and strings.
    static func workerLine(_ index: Int) -> (String, [String: FieldValue]) {
        let doubles: [Double] = [0.25, 1234.5, 0.1, 1e-05, 1e21, -0.0, 3.0, 2.5e-7]
        var fields: [String: FieldValue] = [
            "level": .string(index % 5 == 0 ? "error" : "info"), "job": .int(Int64(index)), "duration": .double(doubles[index % doubles.count]),
            "ok": .bool(index % 5 != 0), "user": .string("ünï-\(index)"),
        ]
        if index % 4 == 1 { fields["big"] = .int(9_007_199_254_740_993) }
        if index % 6 == 2 { fields["quote"] = .string("say \"hi\" \\ then\na new line\tand a tab") }
        if index % 7 == 3 { fields["status"] = .int(index % 2 == 0 ? 502 : 201) }
        return ("job \(index) \(index % 5 == 0 ? "failed: exception in step 3" : "done") for user ünï-\(index)", fields)
    }

    /// The whole script: ten rounds of ten seconds, each node shipping what it wrote in the
    /// round (lines and journal), with resends, a partial resend and late reports between them;
    /// then two nodes of more than 10,000 rows each (the scale-out reader's page), one of them
    /// raced to the collectors.
    static func script() -> DifferentialHistory {
        var h = DifferentialHistory()
        // Journal lines by the round their observer ships them in (late reports ship later).
        var journal: [Int: [JournalEntry]] = [:]
        func report(_ round: Int, _ entry: JournalEntry) { journal[round, default: []].append(entry) }
        func member(_ event: JournalEvent, _ t: Int64, _ observer: String, _ member: Member) -> JournalEntry {
            JournalEntry(t: t, event: event, observer: observer, member: member)
        }
        var alive = lb
        alive.status = .alive
        let config1 = config(1, [("web1", web1.address), ("web2", web2.address)], previous: nil, trigger: ["start"], method: "file", outcome: .applied, milliseconds: 12)
        let config2 = config(
            2, [("web1", web1.address), ("web2", web2.address), ("web3", web3.address)], previous: config1.text, trigger: ["web3 joined"],
            method: "runtime", outcome: .applied, milliseconds: 75)
        let config3 = config(
            3, [("web1", web1.address), ("web3", "10.0.0.23")], previous: config2.text, trigger: ["web2 left", "web3 readdressed"],
            method: "reload", outcome: .applied, milliseconds: 205)
        let config4 = config(
            4, [("web1", web1.address), ("web3", "10.0.0.23")], previous: config3.text, trigger: ["maxconn"], method: "reload",
            outcome: .invalid, message: "[ALERT] (812) : config : parsing [/etc/haproxy/haproxy.cfg:2] : 'maxconn' expects an integer",
            milliseconds: 31, maxconn: 0)
        let config5 = config(
            5, [("web3", "10.0.0.23"), ("web4", web4.address)], previous: config3.text, trigger: ["web1 replaced", "web4 joined"],
            method: "runtime", outcome: .appliedWithRejections, message: "web1: address 10.0.0.11 taken by web4", milliseconds: 64)

        // Round 0: the cluster forms; inventories, the first configuration.
        report(0, JournalEntry(t: at(0), event: .snapshot, observer: "lb", members: [alive]))
        report(0, member(.memberJoin, at(1), "lb", web1))
        report(0, member(.memberJoin, at(2), "lb", web2))
        report(0, JournalEntry(t: at(3), event: .inventory, observer: "lb", inventory: inventory(lb, image: "muster/ha:test", services: [("haproxy", true), ("muster-agent", true), ("serf", true)], since: 0)))
        report(0, JournalEntry(t: at(4), event: .config, observer: "lb", config: config1))
        report(0, member(.memberJoin, at(1, ms: 200), "web1", web1))
        report(0, member(.memberJoin, at(1, ms: 300), "web1", lb))
        report(0, member(.memberJoin, at(2, ms: 100), "web1", web2))
        report(0, JournalEntry(t: at(3, ms: 100), event: .inventory, observer: "web1", inventory: inventory(web1, image: "muster/webapp:test", services: [("demo-webapp", true), ("muster-agent", true), ("serf", true)], since: 1)))
        report(0, member(.memberJoin, at(2, ms: 200), "web2", web2))
        report(0, JournalEntry(t: at(3, ms: 200), event: .inventory, observer: "web2", inventory: inventory(web2, image: nil, services: [("demo-webapp", true), ("serf", true)], since: 2)))
        report(1, stats(at(10), [("web1", "UP", 1, 40, 2), ("web2", "UP", 2, 38, 3)]))
        report(2, stats(at(20), [("web1", "UP", 1, 90, 4), ("web2", "UP", 0, 85, 9)]))
        // Round 3: web3 joins; web1 ships its report at once, lb its earlier one a round later.
        report(3, member(.memberJoin, at(30, ms: 500), "web1", web3))
        report(4, member(.memberJoin, at(30), "lb", web3))
        report(3, JournalEntry(t: at(31), event: .config, observer: "lb", config: config2))
        report(3, JournalEntry(t: at(33), event: .inventory, observer: "web1", inventory: inventory(web1, image: "muster/webapp:test", services: [("demo-webapp", true), ("muster-agent", true), ("serf", true)], since: 1)))
        var moved = web3
        moved.address = "10.0.0.23"
        report(3, member(.memberUpdate, at(35), "lb", moved))
        report(3, JournalEntry(t: at(35, ms: 1), event: .inventory, observer: "web3", inventory: inventory(moved, image: "muster/webapp:test", services: [("demo-webapp", true), ("serf", true)], since: 30)))
        // Round 4: user events and a query from two observers, stats, an update.
        report(4, JournalEntry(t: at(40), event: .user, observer: "lb", user: UserEvent(name: "deploy", payload: "v2.1 ✓ \"quoted\"", ltime: 7)))
        report(4, JournalEntry(t: at(40, ms: 3), event: .user, observer: "web1", user: UserEvent(name: "deploy", payload: "v2.1 ✓ \"quoted\"", ltime: 7)))
        report(4, JournalEntry(t: at(41), event: .query, observer: "web2", user: UserEvent(name: "ping", payload: "")))
        report(4, stats(at(40), [("web1", "UP", 1, 150, 4), ("web2", "UP", 1, 140, 11), ("web3", "UP", 0, 20, 0)]))
        var updated = web2
        updated.tags["version"] = "2"
        report(4, member(.memberUpdate, at(45), "lb", updated))
        // Round 5: web2 leaves; web1 later says it failed (ignored: it left); two configurations.
        report(5, member(.memberLeave, at(50), "lb", updated))
        report(5, member(.memberFailed, at(51), "web1", updated))
        report(5, JournalEntry(t: at(55), event: .config, observer: "lb", config: config3))
        report(5, JournalEntry(t: at(56), event: .config, observer: "lb", config: config4))
        // Round 6: web3 fails; web1's inventory changes; a snapshot 5 s later disagrees (too soon).
        var failedWeb3 = moved
        failedWeb3.status = nil
        report(6, member(.memberFailed, at(60), "lb", failedWeb3))
        report(6, JournalEntry(t: at(62), event: .inventory, observer: "web1", inventory: inventory(web1, image: "muster/webapp:test", services: [("demo-webapp", false), ("muster-agent", true), ("serf", true)], since: 62)))
        var snapshotLB = lb, snapshotWeb1 = web1, snapshotWeb3 = moved
        snapshotLB.status = .alive
        snapshotWeb1.status = .alive
        snapshotWeb3.status = .alive
        report(6, JournalEntry(t: at(65), event: .snapshot, observer: "web1", members: [snapshotLB, snapshotWeb1, snapshotWeb3]))
        report(6, stats(at(60), [("web1", "UP", 2, 230, 6), ("web3", "DOWN", 0, 60, 12)]))
        // Round 7: the next snapshot says web3 is alive again, 15 s after the failure: taken.
        report(7, JournalEntry(t: at(75), event: .snapshot, observer: "web1", members: [snapshotLB, snapshotWeb1, snapshotWeb3]))
        // Round 8: web4 takes web1's address (web1 replaced); web2 is reaped; configuration 5.
        report(8, member(.memberJoin, at(80), "lb", web4))
        report(8, member(.memberReap, at(85), "lb", updated))
        report(8, JournalEntry(t: at(86), event: .inventory, observer: "web4", inventory: inventory(web4, image: "muster/webapp:test", services: [("demo-webapp", true)], since: 80)))
        report(8, JournalEntry(t: at(88), event: .config, observer: "lb", config: config5))
        // A second load balancer with versions of its own (the same numbers as lb's), and the
        // collector's node, which reports an inventory but is no member.
        let lb2Config1 = config(1, [("web3", "10.0.0.23")], previous: nil, trigger: ["start"], method: "file", outcome: .applied, milliseconds: 9)
        let lb2Config2 = config(
            2, [("web3", "10.0.0.23"), ("web4", web4.address)], previous: lb2Config1.text, trigger: ["web4 joined"], method: "runtime",
            outcome: .applied, milliseconds: 44)
        report(7, JournalEntry(t: at(77), event: .config, observer: "lb2", config: lb2Config1))
        report(8, JournalEntry(t: at(81), event: .config, observer: "lb2", config: lb2Config2))
        let collectorNode = Member(name: "collector", address: "10.0.0.1", role: "collector", tags: [:])
        report(7, JournalEntry(t: at(70), event: .inventory, observer: "collector", inventory: inventory(collectorNode, image: "muster/collector:test", services: [("muster-collector", true), ("muster-agent", true)], since: 0)))
        // Round 9: web2's own late report of web3's join (no change), stats; web4's own batch,
        // raced to the three collectors, holds a user event and an update of itself.
        report(9, member(.memberJoin, at(30, ms: 800), "web2", web3))
        report(9, stats(at(90), [("web3", "UP", 1, 70, 12), ("web4", "UP", 1, 15, 0)]))
        var web4v2 = web4
        web4v2.tags["version"] = "2"
        report(9, JournalEntry(t: at(91), event: .user, observer: "web4", user: UserEvent(name: "scale", payload: "web4 ready", ltime: 9)))
        report(9, member(.memberUpdate, at(92), "web4", web4v2))

        var counters: [String: Int] = [:]
        var shipped: [Int: [String: Int]] = [:]
        let nodes = ["lb", "web1", "web2", "web3", "web4", "lb2", "collector", "café/01"]
        for round in 0..<10 {
            let window = at(round * 10)..<at(round * 10 + 10)
            // Application and HAProxy lines of the round, at each node's own pace.
            var t = max(window.lowerBound, at(5))
            while t < window.upperBound {
                let offset = (t - base) / 1_000_000
                if offset % 370 == 0 || offset % 370 == 185 && offset > 60_000, t < at(96) {
                    let index = counters["web1", default: 0]
                    counters["web1"] = index + 1
                    h.line("web1", "app", t, appMessage("web1", index))
                }
                if offset % 530 == 0, t < at(60) {
                    let index = counters["web2", default: 0]
                    counters["web2"] = index + 1
                    if index == 80 {
                        h.line("web2", "app", t, "log file rotated (boundary): reopening app.log")
                        h.rotate("web2", "app", to: "web2-app-2")
                        h.line("web2", "app", t + 1, "first line after the rotation (boundary)")
                    } else {
                        h.line("web2", "app", t, appMessage("web2", index))
                    }
                }
                if offset % 210 == 0, t < at(96) {
                    let index = counters["lb", default: 0]
                    counters["lb"] = index + 1
                    let (message, fields) = haproxyLine(index, t)
                    h.line("lb", "haproxy", t, message, fields: fields)
                    if index % 50 == 20 { h.line("lb", "haproxy", t, "Server web/web2 is DOWN, reason: Layer4 timeout, check duration: 2001ms. 503 1 active") }
                }
                if offset % 900 == 0, t >= at(30), t < at(60) || t >= at(75) {
                    let index = counters["web3", default: 0]
                    counters["web3"] = index + 1
                    let (message, fields) = workerLine(index)
                    h.line("web3", "worker", t, message, fields: fields)
                }
                if offset % 2_500 == 0, t >= at(77), t < at(90) {
                    h.line("lb2", "haproxy", t, "haproxy[90]: 10.0.0.98:5\(offset % 10_000) [lb2] http-in web/web3 0/0/0/3/3 200 120 - - ---- 1/1/0/0/0 0/0 \"GET /healthz HTTP/1.1\"")
                }
                if offset % 7_000 == 0, t >= at(40), t < at(70) {
                    h.line("café/01", "kasse", t, "Kassenbon \(offset / 7_000): 3× Brötchen, 1× Café au lait — 4,20 €")
                }
                if offset % 1_000 == 0, t >= at(80) {
                    let index = counters["web4", default: 0]
                    counters["web4"] = index + 1
                    h.line("web4", "app", t, appMessage("web4", index + 100))
                }
                t += 5_000_000
            }
            // Ties: three nodes at one nanosecond (each its own batch, posted in turn), and two
            // lines of one batch at one nanosecond with the journal between them.
            if round == 2 {
                h.line("web1", "app", at(20), "tie across batches: web1")
                h.line("web2", "app", at(20), "tie across batches: web2")
                h.line("lb", "haproxy", at(20), "tie across batches: lb")
                h.line("web1", "app", at(21, ns: 7), "tie within a batch: first")
                h.journal(JournalEntry(t: at(21, ns: 7), event: .user, observer: "web1", user: UserEvent(name: "tie", payload: "between two lines")))
                h.line("web1", "app", at(21, ns: 7), "tie within a batch: second")
            }
            for entry in journal[round] ?? [] { h.journal(entry) }
            for node in nodes {
                // Round 4's web2 batch repeats three lines of its round-3 batch first: one as
                // sent, one as sent twice, one read again with a later time (same identity).
                var repeating: [LogRecord] = []
                if round == 4, node == "web2", let previous = shipped[3]?["web2"] {
                    let records = h.batches[previous].records.filter { $0.source == "app" }
                    var reread = records[2]
                    reread.time += 1_000_000_000
                    repeating = [records[0], records[1], records[1], reread]
                }
                guard h.pending[node] != nil || !repeating.isEmpty else { continue }
                shipped[round, default: [:]][node] = h.ship(node, "\(node) round \(round)", repeating: repeating)
                if round == 9, node == "web4" { h.steps[h.steps.count - 1].kind = .race }
            }
            // Resends of whole batches: web1's round-1 batch after round 2, lb's round-5 batch
            // (configurations in it) after round 6.
            if round == 2, let batch = shipped[1]?["web1"] { h.resend(batch) }
            if round == 6, let batch = shipped[5]?["lb"] { h.resend(batch) }
        }

        // Two busy nodes past the scale-out reader's page of 10,000 rows. `bulk`: 10,200 lines from
        // t = 100 s, 1 ms apart, with 21 lines at one nanosecond around its 10,000th line (the page
        // boundary of `--node bulk`) and 21 around the 10,000th line of all lines (that of a scan
        // of everything). `burst`: 5,001 lines from t = 120 s, the first sent alone, the other
        // 5,000 raced to the three collectors, then one more: when two store the 5,000, each of them
        // has two copies, and the 10,000th row of `--node burst` is a first copy whose second
        // copy is on the next page (reading oldest first and newest first alike).
        let before = Set(h.batches.flatMap { $0.records.map(\.origin) }).count
        let clusters = [9_990..<10_011, (10_000 - before - 10)..<(10_000 - before + 11)]
        for index in 0..<10_200 {
            let instant = clusters.first(where: { $0.contains(index) })?.lowerBound ?? index
            let message =
                index % 1_000 == 999
                ? "bulk line \(String(format: "%06d", index)) ERROR deadlock victim, rolled back"
                : "bulk line \(String(format: "%06d", index)) GET /api/items?id=\(index) 200"
            h.line("bulk", "app", at(100, ms: instant), message)
            if index == 4_999 { h.ship("bulk", "bulk part 1") }
        }
        h.ship("bulk", "bulk part 2")
        for index in 0...5_000 {
            let message =
                index % 1_000 == 999
                ? "burst line \(String(format: "%06d", index)) ERROR deadlock victim, rolled back"
                : "burst line \(String(format: "%06d", index)) POST /api/orders 201"
            h.line("burst", "app", at(120, ms: index), message)
            if index == 0 { h.ship("burst", "burst line 0") }
        }
        h.batches.append(Batch(label: "burst lines 1-5000", records: h.pending["burst"] ?? []))
        h.pending["burst"] = nil
        h.race(h.batches.count - 1)
        // One more line after them, alone: reading newest first, the 10,000th row is again a
        // first copy.
        h.line("burst", "app", at(125, ms: 1), "burst line 005001 the last one")
        h.ship("burst", "burst line 5001")
        // bulk part 1 again, to another collector: every line a duplicate.
        h.resend(h.batches.count - 5)
        return h
    }
}

import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

/// `logq` as users run it: exit codes and one-line errors.
@Suite struct LogqCommandTests {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func logq(_ arguments: [String], in directory: String? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("logq"))
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = ["NO_COLOR": "1", "TZ": "UTC"]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    func storeWithLines() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-logq-\(UUID().uuidString).sqlite").path
        let pool = try Schema.openForWriting(path: path, synchronous: .normal)
        let records = (0..<3).map {
            LogRecord(time: 1_700_000_000_000_000_000 + Int64($0), node: "s1",
                      origin: Origin(agent: "s1", source: "webapp", generation: "g", offset: Int64($0)), message: "line \($0)")
        }
        _ = try pool.write { db in try LogWriter.insert([records], into: db) }
        return path
    }

    @Test func errorsAreOneLineWithAnExitCode() throws {
        let missing = try logq(["logs", "--db", "/nonexistent/muster.sqlite"])
        #expect(missing.status == 66)
        #expect(missing.stderr.hasPrefix("logq: database not found: /nonexistent/muster.sqlite"))
        #expect(missing.stderr.split(separator: "\n").count == 1)

        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let badTime = try logq(["logs", "--db", path, "--since", "last tuesday-ish"])
        #expect(badTime.status == 65)
        #expect(badTime.stderr.hasPrefix("logq: cannot read time 'last tuesday-ish'"))
        let unknown = try logq(["logs", "--db", path, "--node", "s9"])
        #expect(unknown.status == 65)
        #expect(unknown.stderr == "logq: unknown node 's9' (known: s1)\n")
        #expect(unknown.stdout.isEmpty)
    }

    /// The time printed for a line, given back to --since/--until, selects exactly that line.
    @Test func printedTimesSelectTheirLine() throws {
        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let all = try logq(["logs", "--db", path, "--format", "csv"])
        #expect(all.status == 0)
        let second = all.stdout.split(separator: "\n")[2]
        let time = String(second.split(separator: ",")[0])
        let next = Timestamp.format(Timestamp.parseRFC3339(time)! + 1)
        let exact = try logq(["logs", "--db", path, "--since", time, "--until", next])
        #expect(exact.stdout == "\(time) s1 webapp: line 1\n")
    }

    /// One line on stderr starting with `prefix`, nothing on stdout, exit 65.
    func expectRefusal(_ arguments: [String], _ prefix: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let outcome = try logq(arguments, in: FileManager.default.temporaryDirectory.path)
        #expect(outcome.status == 65, "\(arguments): \(outcome.stderr)", sourceLocation: sourceLocation)
        #expect(outcome.stderr.hasPrefix(prefix), "\(outcome.stderr)", sourceLocation: sourceLocation)
        #expect(outcome.stderr.split(separator: "\n").count == 1, sourceLocation: sourceLocation)
        #expect(outcome.stdout.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func sqlAndRunRefuseWithExitCode65() throws {
        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try expectRefusal(["sql", "--db", path, "SELEC 1"], "logq: SQL error: near \"SELEC\": syntax error")
        try expectRefusal(["sql", "--db", path, "DELETE FROM logs"], "logq: the database is opened read-only: DELETE from logs")
        try expectRefusal(["sql", "--db", path, "ATTACH '/tmp/x.sqlite' AS x"], "logq: the database is opened read-only: ATTACH")
        try expectRefusal(["sql", "--db", path, "SELECT 1; SELECT 2"], "logq: SQL error: give one statement at a time")
        try expectRefusal(["run", "--db", path, "no-such-query"], "logq: unknown query 'no-such-query' (known: ")
        try expectRefusal(["run", "--db", path, "members-at"], "logq: query members-at needs --param at=VALUE: The instant")
        try expectRefusal(["run", "--db", path, "members-at", "--param", "at=last tuesday-ish"], "logq: cannot read time 'last tuesday-ish'")
        try expectRefusal(["run", "--db", path, "members-at", "--param", "at=10m", "--param", "zone=x"], "logq: query members-at has no parameter 'zone'")
        try expectRefusal(["hist", "--db", path, "--by", "soon"], "logq: cannot read interval 'soon'")
        #expect(try logq(["sql", "--db", "/nonexistent/muster.sqlite", "SELECT 1"]).status == 66)
        let count = try logq(["sql", "--db", path, "SELECT count(*) AS n FROM logs", "--format", "csv"])
        #expect(count.status == 0 && count.stdout == "n\n3\n")
    }

    /// From a folder with no queries/, logq finds the source tree's beside its build folder.
    @Test func runFindsTheShippedQueriesAndPrintsRows() throws {
        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let elsewhere = FileManager.default.temporaryDirectory.path
        let list = try logq(["run", "--list", "--format", "csv"], in: elsewhere)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("\nmembers-at,"))
        let lines = try logq(["run", "--db", path, "lines-per-node", "--format", "json"], in: elsewhere)
        #expect(lines.status == 0, "\(lines.stderr)")
        #expect(lines.stdout.hasPrefix(#"{"node":"s1","source":"webapp","lines":3,"bytes":18,"first":"2023-11-14T22:13:20.000000000Z""#))
        let members = try logq(["run", "--db", path, "members-at", "--param", "at=now", "--format", "csv"], in: elsewhere)
        #expect(members.status == 0 && members.stdout == "member,status,address,role,since,last_change,observer\n")
    }

    @Test func notesGoToStderrAndColoursFollowTheFlag() throws {
        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let grep = try logq(["logs", "--db", path, "--grep", "line [12]"])
        #expect(grep.status == 0)
        #expect(grep.stdout.split(separator: "\n").count == 2)
        #expect(grep.stderr.hasPrefix("logq: note: --grep cannot use the search index"))
        let plain = try logq(["logs", "--db", path, "--color", "auto"])
        #expect(!plain.stdout.contains("\u{1B}"), "not a terminal, and NO_COLOR is set")
        let always = try logq(["logs", "--db", path, "--color", "always", "--limit", "1"])
        #expect(always.stdout.contains(" \u{1B}[34ms1\u{1B}[0m webapp: line 0"))
        let json = try logq(["logs", "--db", path, "--color", "always", "--format", "json"])
        #expect(!json.stdout.contains("\u{1B}"))
        let context = try logq(["logs", "--db", path, "--grep", "line 1", "-C", "1"])
        #expect(context.stdout.split(separator: "\n").map { $0.split(separator: " ", maxSplits: 1)[1] } == [
            "s1 webapp- line 0", "s1 webapp: line 1", "s1 webapp- line 2",
        ])
    }

    /// A store holding what was stored before times and names were checked: lines at the ends
    /// of `Int64`, a member that joined at `Int64.min`, a node name with an ESC sequence and
    /// one of 10,000 characters, two load balancers.
    func hostileStore() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-logq-\(UUID().uuidString).sqlite").path
        let pool = try Schema.openForWriting(path: path, synchronous: .normal)
        let now = Timestamp.now()
        try pool.write { db in
            for (id, node) in ["s1", "evil\u{1B}]0;owned\u{7}", String(repeating: "n", count: 10_000)].enumerated() {
                try db.execute(
                    sql: "INSERT INTO streams (id, agent, node, source, generation, first_seen) VALUES (?, ?, ?, 'webapp', 'g', 0)",
                    arguments: [id + 1, node, node])
            }
            for (offset, (stream, t, message)) in [
                (1, Int64.max, "far future"), (1, Int64.min, "before time"), (1, now - 60 * Timestamp.nanosPerSecond, "recent"),
                (2, now - 30 * Timestamp.nanosPerSecond, "=cmd|' /C calc'!A0 \u{1B}[2J\u{1B}]52;c;b3duZWQ=\u{7}"), (3, now, "long"),
            ].enumerated() {
                try db.execute(sql: "INSERT INTO logs (stream, off, t, msg) VALUES (?, ?, ?, ?)", arguments: [stream, offset, t, message])
            }
            try db.execute(sql: "INSERT INTO events (id, t, kind, body) VALUES (1, ?, 'member-join', '{}')", arguments: [Int64.min])
            try db.execute(
                sql: """
                    INSERT INTO membership (t, member, change, status, address, role, tags, observer, cause, event)
                    VALUES (?, 's1', 'joined', 'alive', '10.0.0.1', 'web', '{}', 'ha', 'member-join', 1)
                    """,
                arguments: [Int64.min])
            for (version, node) in [(1, "lb/../one"), (1, String(repeating: "b", count: 10_000))] {
                try db.execute(
                    sql: """
                        INSERT INTO configs (node, version, t, sha256, method, outcome, trigger, duration_ms, servers, diff, text, event)
                        VALUES (?, ?, ?, '', 'reload', 'applied', '[]', 1, '[]', '', 'backend nodes', 1)
                        """,
                    arguments: [node, version, now])
            }
        }
        return path
    }

    @Test func extremeStoredTimesAndHostileNamesDoNotStopAnyCommand() throws {
        let path = try hostileStore()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-logq-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = try logq(["report", "--db", path, "--out", directory + "-report.html"])
        defer { try? FileManager.default.removeItem(atPath: directory + "-report.html") }
        #expect(report.status == 0, "\(report.stderr)")
        let hist = try logq(["hist", "--db", path, "--since", "1h"])
        #expect(hist.status == 0, "\(hist.stderr)")
        #expect(hist.stdout.split(separator: "\n").count == 62, "a header and 61 minutes")
        let whole = try logq(["hist", "--db", path])
        #expect(whole.status == 65 && whole.stderr.contains("choose a longer --by"), "\(whole.stderr)")
        for command in [["stats"], ["timeline"], ["nodes"], ["members", "--at", "1970-01-01T00:00:00Z"], ["configs"]] {
            let outcome = try logq(command + ["--db", path])
            #expect(outcome.status == 0, "\(command): \(outcome.stderr)")
        }
        let export = try logq(["export", "--db", path, "--out", directory])
        #expect(export.status == 0, "\(export.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/all")
        #expect(files.count(where: { $0.hasSuffix("_haproxy.cfg") }) == 2)
        #expect(files.allSatisfy { $0.utf8.count <= 120 })
        #expect(FileManager.default.fileExists(atPath: directory + "/index.log"))
    }

    @Test func timesOutsideWhatLogqHandlesAreExit65() throws {
        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for time in ["9999-01-01T00:00:00Z", "@99999999999999", "-999999999h", "100000000d ago", "0000-01-01"] {
            try expectRefusal(["logs", "--db", path, "--since=\(time)"], "logq: cannot read time '\(time)': outside the times logq handles")
        }
        // A time starting with '-' is the option's value, not another option.
        try expectRefusal(["logs", "--db", path, "--since", "-999999999h"], "logq: cannot read time '-999999999h': outside")
        #expect(try logq(["logs", "--db", path, "--since", "-1h", "--until", "-0s"]).status == 0)
        try expectRefusal(["hist", "--db", path, "--by", "100000000000w"], "logq: interval '100000000000w' is too long")
        try expectRefusal(["sql", "--db", path, "--timeout=-1", "SELECT 1"], "logq: --timeout must be between 0")
    }

    @Test func controlCharactersAndFormulasFromTheStoreAreDefused() throws {
        let path = try hostileStore()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for format in ["text", "csv"] {
            let logs = try logq(["logs", "--db", path, "--format", format, "--color", "always"])
            #expect(logs.status == 0)
            let escapes = logs.stdout.components(separatedBy: "\u{1B}").count - 1
            #expect(escapes == (format == "text" ? 2 * 5 : 0), "only logq's own colours: \(logs.stdout)")
            #expect(!logs.stdout.contains("\u{7}"))
            #expect(logs.stdout.contains("evil\\x1b]0;owned\\x07"))
        }
        let csv = try logq(["logs", "--db", path, "--format", "csv"])
        #expect(csv.stdout.contains(",'=cmd|' /C calc'!A0 \\x1b[2J"))
        let unknown = try logq(["logs", "--db", path, "--node", "x"])
        #expect(unknown.status == 65 && !unknown.stderr.contains("\u{1B}") && unknown.stderr.contains("evil\\x1b]0;owned\\x07"))
        let sql = try logq(["sql", "--db", path, "SELECT node FROM streams WHERE id = 2"])
        #expect(sql.stdout == "NODE\nevil\\x1b]0;owned\\x07\n")
    }

    /// A recursive CTE that would run forever stops after --timeout with exit 75.
    @Test func sqlAndRunStopAtTheirTimeout() throws {
        let path = try storeWithLines()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        let started = ContinuousClock.now
        let stopped = try logq(["sql", "--db", path, "--timeout", "1", forever])
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(stopped.status == 75)
        #expect(stopped.stderr == "logq: the statement ran longer than 1 s and was stopped (raise --timeout, or 0 for no limit)\n")
        let queries = FileManager.default.temporaryDirectory.appendingPathComponent("muster-queries-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: queries, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: queries) }
        try "-- name: forever\n-- description: never ends\n\(forever)\n".write(toFile: queries + "/forever.sql", atomically: true, encoding: .utf8)
        let run = try logq(["run", "--db", path, "--queries", queries, "--timeout", "0.5", "forever"])
        #expect(run.status == 75, "\(run.stderr)")
    }
}

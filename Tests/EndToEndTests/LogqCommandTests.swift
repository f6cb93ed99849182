import Foundation
import GRDB
import MusterStore
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
}

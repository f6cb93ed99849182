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

    func logq(_ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("logq"))
        process.arguments = arguments
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
}

import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import Testing

/// The real collector and agent as processes on loopback, and logq reading what they stored.
@Suite(.serialized) final class PipelineTests {
    let pipeline: LoopbackPipeline

    init() throws {
        pipeline = try LoopbackPipeline("e2e")
    }

    var directory: String { pipeline.directory }
    var database: String { pipeline.database }
    var port: Int { pipeline.port }

    /// `config`: YAML for the collector's config file (limits and the like), if any.
    func startCollector(config: String? = nil) throws {
        pipeline.collectorConfig = config
        try pipeline.startCollector()
    }

    func startAgent() throws -> RunningProcess { try pipeline.startAgent() }

    func append(_ lines: some Sequence<String>, to name: String) throws {
        try appendLines(lines, to: directory + "/logs/" + name)
    }

    func storedCount() throws -> Int { try pipeline.storedCount() }

    /// Messages as logq prints them with `--format json`, in logq's order.
    func logqMessages(_ extra: [String] = []) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("logq"))
        process.arguments = ["logs", "--db", database, "--format", "json"] + extra
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        struct Line: Decodable { var message: String; var node: String; var source: String }
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Line.self, from: Data($0)).message }
    }

    static func lines(_ prefix: String, _ range: Range<Int>) -> [String] {
        range.map { "\(prefix)-\(String(format: "%06d", $0)) GET /api/items?id=\($0) HTTP/1.1 200 \($0 % 997)ms" }
    }

    func waitForStored(_ expected: Int, agent: RunningProcess) throws {
        let arrived = try waitUntil(timeout: 120, interval: 0.25) { try storedCount() >= expected }
        let stored = try storedCount()
        try #require(arrived, "stored \(stored) of \(expected)\nagent:\n\(agent.log().suffix(3000))\ncollector:\n\(pipeline.collectorLog().suffix(3000))")
    }

    @Test func aHundredThousandLinesArriveExactlyOnceAndInOrder() throws {
        try startCollector()
        // Half before the agent starts, half while it runs, part of it in a file that appears later.
        try append(Self.lines("a", 0..<50_000), to: "app.log")
        let agent = try startAgent()
        for chunk in stride(from: 50_000, to: 80_000, by: 5_000) {
            try append(Self.lines("a", chunk..<chunk + 5_000), to: "app.log")
            Thread.sleep(forTimeInterval: 0.05)
        }
        try append(Self.lines("b", 0..<20_000), to: "other.log")
        try waitForStored(100_000, agent: agent)
        Thread.sleep(forTimeInterval: 1.5)  // anything extra would show up now

        let messages = try logqMessages()
        #expect(messages.count == 100_000)
        #expect(Set(messages).count == messages.count, "duplicates found")
        #expect(messages.filter { $0.hasPrefix("a-") } == Self.lines("a", 0..<80_000))
        #expect(messages.filter { $0.hasPrefix("b-") } == Self.lines("b", 0..<20_000))

        // A clean restart resumes from the checkpoint: new lines arrive, old ones do not repeat.
        agent.stop()
        #expect(agent.process.terminationStatus == 0, "agent exit: \(agent.log().suffix(2000))")
        let restarted = try startAgent()
        try append(Self.lines("a", 80_000..<81_000), to: "app.log")
        try waitForStored(101_000, agent: restarted)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try storedCount() == 101_000)
        restarted.stop()

        // Even with its checkpoints lost, a resend of everything creates no duplicate row.
        try FileManager.default.removeItem(atPath: directory + "/agent-state/checkpoints.json")
        let amnesiac = try startAgent()
        try append(Self.lines("b", 20_000..<20_500), to: "other.log")
        try waitForStored(101_500, agent: amnesiac)
        // Wait until the collector has seen every old line again (and ignored it).
        let resent = waitUntil(timeout: 120, interval: 0.25) {
            (scrapeCounter("muster_ingest_records_duplicate_total", port: port) ?? 0) >= 101_000
        }
        #expect(resent, "agent:\n\(amnesiac.log().suffix(2000))")
        #expect(try storedCount() == 101_500)
        amnesiac.stop()

        let all = try logqMessages()
        #expect(all.count == 101_500)
        #expect(Set(all).count == all.count)
        #expect(try logqMessages(["--match", "a-080999"]) == Self.lines("a", 80_999..<81_000))
    }
}

extension PipelineTests {
    @Test func followPrintsLinesAsTheyArrive() throws {
        try startCollector()
        try append(Self.lines("f", 0..<10), to: "app.log")
        let agent = try startAgent()
        try waitForStored(10, agent: agent)

        let follower = try RunningProcess(
            try Binaries.path("logq"), ["logs", "--db", database, "--tail", "2", "-f"],
            logPath: directory + "/follow.out")
        defer { follower.stop() }
        // The new lines only after logq has printed its tail: appended earlier, they can be
        // stored before logq's first query (the agent reads an append within ~0.1 s), and then
        // belong to the tail instead of arriving while it follows.
        let started = waitUntil(timeout: 30) { follower.log().split(separator: "\n").count >= 2 }
        #expect(started, "logq printed no tail:\n\(follower.log())")
        try append(Self.lines("f", 10..<15), to: "app.log")
        let seen = waitUntil(timeout: 30) { follower.log().split(separator: "\n").count >= 7 }
        #expect(seen, "follow output:\n\(follower.log())")
        let printed = follower.log().split(separator: "\n").map { String($0.split(separator: ": ", maxSplits: 1)[1]) }
        #expect(printed == Self.lines("f", 8..<15))
        agent.stop()
    }
}

extension PipelineTests {
    /// With nobody acknowledging, SIGTERM still ends the agent within its grace period. What
    /// was read is in the spool (and checkpointed as such), and goes out at the next start.
    @Test func stopsPromptlyWhenTheCollectorIsDownAndSendsTheSpoolLater() throws {
        // No collector yet: the pipeline reserves a port nobody listens on, so every attempt is refused.
        try append(Self.lines("d", 0..<100), to: "app.log")
        let agent = try startAgent()
        let retrying = waitUntil(timeout: 30) { agent.log().contains("retrying") }
        #expect(retrying, "\(agent.log())")
        let started = Date()
        agent.stop(grace: 30)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(agent.process.terminationReason == .exit && agent.process.terminationStatus == 0, "\(agent.log())")
        #expect(agent.log().contains("stopped with batches still spooled"), "\(agent.log())")
        let segments = try FileManager.default.contentsOfDirectory(atPath: directory + "/agent-state/spool")
        #expect(segments.contains { $0.hasSuffix(".seg") })

        try startCollector()
        let restarted = try startAgent()
        try waitForStored(100, agent: restarted)
        restarted.stop()
        #expect(try logqMessages() == Self.lines("d", 0..<100))
    }
}

extension PipelineTests {
    /// A collector with lower limits than the agent's batches: batches refused as too large
    /// are split until they fit; a single line over the collector's line limit is refused for
    /// good and kept on disk, and everything else still arrives.
    @Test func batchesTooLargeForTheCollectorAreSplitAndNothingIsLostSilently() throws {
        try startCollector(config: "limits:\n  max_body_bytes: 40000\n  max_line_bytes: 4000\n")
        try append(Self.lines("s", 0..<10_000), to: "app.log")
        try append([String(repeating: "x", count: 5000)], to: "app.log")
        try append(Self.lines("s", 10_000..<20_000), to: "app.log")
        let agent = try startAgent()
        try waitForStored(20_000, agent: agent)
        let refusedDirectory = directory + "/agent-state/refused"
        let kept = waitUntil(timeout: 30) {
            ((try? FileManager.default.contentsOfDirectory(atPath: refusedDirectory)) ?? []).contains { $0.hasSuffix(".reason") }
        }
        #expect(kept, "agent:\n\(agent.log().suffix(3000))")
        agent.stop()
        let messages = try logqMessages()
        #expect(messages == Self.lines("s", 0..<20_000))
        let files = try FileManager.default.contentsOfDirectory(atPath: refusedDirectory)
        let reason = try String(contentsOfFile: refusedDirectory + "/" + files.first { $0.hasSuffix(".reason") }!, encoding: .utf8)
        #expect(reason.contains("line_too_long"))
        #expect(agent.log().contains("sending it in halves"))
        // Only the one line the collector cannot take is kept aside.
        #expect(files.filter { $0.hasSuffix(".ndjson.zlib") }.count == 1)
        #expect(agent.log().contains("records=1 status=400"))
    }
}

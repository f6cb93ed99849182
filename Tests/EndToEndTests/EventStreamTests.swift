import AsyncHTTPClient
import Foundation
import MusterAgent
import MusterWire
import Testing

/// The event stream between real processes: an agent ships a journal, the collector turns it
/// into events, consumers read `GET /v1/events` over HTTP while it grows.
@Suite(.serialized) final class EventStreamEndToEndTests {
    let directory: String
    let token = "stream-token"
    var processes: [RunningProcess] = []

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-stream-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        for process in processes.reversed() { process.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func startCollector() throws -> Int {
        let portFile = directory + "/collector.port"
        processes.append(try RunningProcess(
            try Binaries.path("muster-collector"),
            ["--database", directory + "/muster.sqlite", "--host", "127.0.0.1", "--port", "0", "--port-file", portFile,
             "--token", token],
            logPath: directory + "/collector.log"))
        try #require(waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: portFile) }, "collector did not start")
        return Int(try String(contentsOfFile: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// An agent whose journal (the file Serf's handler appends to) is `journal`.
    func startAgent(port: Int, journal: String) throws {
        let config = """
            node: s1
            collector: {url: "http://127.0.0.1:\(port)", token: \(token)}
            state_dir: \(directory)/agent-state
            batch: {max_age_ms: 50, max_records: 2000}
            membership: {journal: \(journal), serf_rpc: "127.0.0.1:1", reconcile_interval_ms: 60000}
            """
        try config.write(toFile: directory + "/agent.yaml", atomically: true, encoding: .utf8)
        processes.append(try RunningProcess(
            try Binaries.path("muster-agent"), ["--config", directory + "/agent.yaml"], logPath: directory + "/agent.log"))
    }

    /// `count` Serf user events as journal lines, appended in chunks while consumers read.
    static func writeUserEvents(_ count: Int, to journal: String, chunks: Int) async throws {
        _ = FileManager.default.createFile(atPath: journal, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: journal))
        defer { try? handle.close() }
        let base = Timestamp.now()
        for chunk in 0..<chunks {
            var text = ""
            for index in (chunk * count / chunks)..<((chunk + 1) * count / chunks) {
                text += #"{"event":"user","observer":"s1","t":\#(base + Int64(index)),"user":{"name":"deploy","payload":"n\#(index)"}}"#
                text += "\n"
            }
            try handle.write(contentsOf: Data(text.utf8))
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func resumingFromTheLastIdMissesNothingAndRepeatsNothingAndAReplayFromZeroGetsEverything() async throws {
        let total = 100_000
        let port = try startCollector()
        let journal = directory + "/events.jsonl"
        try startAgent(port: port, journal: journal)
        let stream = EventStreamClient(baseURL: "http://127.0.0.1:\(port)", token: token, client: .shared)

        // A live consumer that hangs up every 7,919 events and reconnects from its last id.
        async let writing: Void = Self.writeUserEvents(total, to: journal, chunks: 20)
        var seen: [Int64] = []
        var reconnects = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while seen.count < total, ContinuousClock.now < deadline {
            var thisConnection = 0
            try await stream.events(since: seen.last ?? 0) { event in
                seen.append(event.id)
                thisConnection += 1
                return thisConnection < 7_919 && seen.count < total
            }
            reconnects += 1
        }
        try await writing
        #expect(reconnects >= 12)
        #expect(seen.count == total, "got \(seen.count) of \(total) events")
        #expect(seen == Array(1...Int64(seen.count)), "a gap or a duplicate after resuming")

        // A consumer far behind: from 0, caught up from SQLite.
        var replayed = 0
        var last: Int64 = 0
        var inOrder = true
        try await stream.events(since: 0, kinds: ["user"], follow: false) { event in
            replayed += 1
            inOrder = inOrder && event.id == last + 1
            last = event.id
            return true
        }
        #expect(replayed == total)
        #expect(inOrder)
    }
}

import Foundation
import Testing

/// The idle agent gives back what its start-up and its work touched (free heap, the binary's
/// pages only it maps), on the real binaries: the release is counted, resident memory drops
/// well under its peak, and the agent ships on afterwards as before. With
/// `memory.release_when_idle_ms: 0` it never releases.
@Suite(.serialized) final class AgentIdleMemoryTests {
    func writeLines(_ range: Range<Int>, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(range.map { SteadyWriter.line("m", $0) + "\n" }.joined().utf8))
        try handle.close()
    }

    func releases(_ port: Int) -> Double { scrapeCounter("muster_agent_memory_releases_total", port: port) ?? -1 }

    @Test func anIdleAgentReleasesMemoryAfterStartAndAgainAfterWorkAndShipsOn() throws {
        let pipeline = try LoopbackPipeline("idle-memory")
        let metricsPort = unusedLoopbackPort()
        let config = pipeline.directory + "/agent.yaml"
        try "memory:\n  release_when_idle_ms: 2000\n".write(toFile: config, atomically: true, encoding: .utf8)
        pipeline.agentArguments = ["--http-listen", "127.0.0.1:\(metricsPort)", "--config", config]
        try pipeline.startCollector()
        let agent = try pipeline.startAgent()
        let log = pipeline.logs + "/app.log"

        // Nothing to read: the start-up release comes after a second of quiet.
        let startUp = waitUntil(timeout: 60, interval: 0.25) { releases(metricsPort) >= 1 }
        try #require(startUp, "no release after start; agent:\n\(agent.log().suffix(3000))")
        let (resident, peak) = (pipeline.agentRSSKiB() ?? 0, pipeline.agentRSSKiB("VmHWM") ?? 0)
        print("idle memory: after start-up \(resident / 1024) MiB resident, peak \(peak / 1024) MiB")
        #expect(peak - resident >= 1024, "resident \(resident) KiB against a peak of \(peak) KiB: nothing released")

        // Work, then two seconds of quiet: released again; nothing lost on the way.
        try writeLines(0..<20_000, to: log)
        let stored = waitUntil(timeout: 120, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= 20_000 }
        try #require(stored, "stored \((try? pipeline.storedCount()) ?? -1) of 20000; agent:\n\(agent.log().suffix(3000))")
        let afterWork = waitUntil(timeout: 60, interval: 0.25) { releases(metricsPort) >= 2 }
        #expect(afterWork, "no release after the work; releases \(releases(metricsPort))")

        // The code it gave back is read again when needed.
        try writeLines(20_000..<20_500, to: log)
        let shippedOn = waitUntil(timeout: 120, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= 20_500 }
        #expect(shippedOn, "stored \((try? pipeline.storedCount()) ?? -1) of 20500 after the release")
        let check = DeliveryCheck(expected: (0..<20_500).map { SteadyWriter.line("m", $0) }, stored: try pipeline.storedMessages())
        #expect(check.isExact, "\(check)")
        pipeline.stopAgent()

        // Turned off: three quiet seconds (a release would come after one) and none.
        try "memory:\n  release_when_idle_ms: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
        let quiet = try pipeline.startAgent()
        let serving = waitUntil(timeout: 60, interval: 0.25) { releases(metricsPort) >= 0 }
        try #require(serving, "the agent's /metrics did not answer; agent:\n\(quiet.log().suffix(3000))")
        Thread.sleep(forTimeInterval: 3)
        #expect(releases(metricsPort) == 0, "released with release_when_idle_ms: 0")
        pipeline.stopAgent()
    }
}

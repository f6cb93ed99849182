import Foundation
import Testing

/// The idle agent gives back what its start-up and its work touched (free heap, the pages of
/// the program and its libraries), on the real binaries: with `memory.release_when_idle_ms: 0`
/// it never releases; otherwise the release is counted, the agent holds less than the same
/// agent that does not release, and it ships on afterwards as before.
@Suite(.serialized) final class AgentIdleMemoryTests {
    func writeLines(_ range: Range<Int>, to path: String) throws {
        try appendLines(range.map { SteadyWriter.line("m", $0) }, to: path)
    }

    func releases(_ port: Int) -> Double { scrapeCounter("muster_agent_memory_releases_total", port: port) ?? -1 }

    @Test func anIdleAgentReleasesMemoryAfterStartAndAgainAfterWorkAndShipsOn() throws {
        let pipeline = try LoopbackPipeline("idle-memory")
        let metricsPort = unusedLoopbackPort()
        let config = pipeline.directory + "/agent.yaml"
        pipeline.agentArguments = ["--http-listen", "127.0.0.1:\(metricsPort)", "--config", config]
        try pipeline.startCollector()
        let log = pipeline.logs + "/app.log"

        // Turned off: three quiet seconds (a release would come after one) and none; what it
        // holds then is the measure for the agent that releases.
        try "memory:\n  release_when_idle_ms: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
        let holding = try pipeline.startAgent()
        let serving = waitUntil(timeout: 60, interval: 0.25) { releases(metricsPort) >= 0 }
        try #require(serving, "the agent's /metrics did not answer; agent:\n\(holding.log().suffix(3000))")
        Thread.sleep(forTimeInterval: 3)
        #expect(releases(metricsPort) == 0, "released with release_when_idle_ms: 0")
        let held = pipeline.agentRSSKiB() ?? 0
        pipeline.stopAgent()

        // On: the start-up release comes after a second of quiet.
        try "memory:\n  release_when_idle_ms: 5000\n".write(toFile: config, atomically: true, encoding: .utf8)
        let agent = try pipeline.startAgent()
        let startUp = waitUntil(timeout: 60, interval: 0.25) { releases(metricsPort) >= 1 }
        try #require(startUp, "no release after start; agent:\n\(agent.log().suffix(3000))")
        let resident = pipeline.agentRSSKiB() ?? 0
        print("idle memory: \(resident / 1024) MiB resident after the start-up release, \(held / 1024) MiB without it")
        #expect(held - resident >= 2048, "\(resident) KiB resident after the release against \(held) KiB without it")

        // Work, then five seconds of quiet: released again; nothing lost on the way.
        try writeLines(0..<20_000, to: log)
        let stored = waitUntil(timeout: 120, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= 20_000 }
        try #require(stored, "stored \((try? pipeline.storedCount()) ?? -1) of 20000; agent:\n\(agent.log().suffix(3000))")
        let afterWork = waitUntil(timeout: 60, interval: 0.25) { releases(metricsPort) >= 2 }
        #expect(afterWork, "no release after the work; releases \(releases(metricsPort))")

        // What it gave back is mapped again when needed.
        try writeLines(20_000..<20_500, to: log)
        let shippedOn = waitUntil(timeout: 120, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= 20_500 }
        #expect(shippedOn, "stored \((try? pipeline.storedCount()) ?? -1) of 20500 after the release")
        let check = DeliveryCheck(expected: (0..<20_500).map { SteadyWriter.line("m", $0) }, stored: try pipeline.storedMessages())
        #expect(check.isExact, "\(check)")
        pipeline.stopAgent()
    }
}

import Foundation
import MusterWire
import NIOCore
import Testing

@testable import MusterAgent

/// Faults that break log shippers, on the real binaries: kill -9 of either side, a collector
/// that goes away, a spool too small for the backlog, and state files damaged between runs.
/// Each test prints its figures (docs/reliability.md quotes them).
@Suite(.serialized) final class FaultInjectionTests {
    @Test func killingEachSideTenTimesLosesNothingAndDuplicatesNothing() throws {
        let pipeline = try LoopbackPipeline("kill9")
        try pipeline.startCollector()
        try pipeline.startAgent()
        let writer = SteadyWriter(path: pipeline.logs + "/app.log", prefix: "k", total: 500_000, linesPerSecond: 25_000)
        let started = Date()
        writer.start()
        var kills = (agent: 0, collector: 0)
        // Twenty kills while the lines are written, alternating sides, each at a random moment.
        for round in 0..<20 {
            Thread.sleep(forTimeInterval: Double.random(in: 0.2...1.2))
            if round % 2 == 0 {
                pipeline.killAgent()
                kills.agent += 1
                try pipeline.startAgent()
            } else {
                pipeline.killCollector()
                kills.collector += 1
                try pipeline.startCollector()
            }
        }
        writer.wait()
        let arrived = waitUntil(timeout: 90, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= writer.total }
        Thread.sleep(forTimeInterval: 1.5)  // anything extra would show up now
        let check = DeliveryCheck(expected: writer.expected(), stored: try pipeline.storedMessages())
        print(
            "fault kill-9: \(kills.agent) agent and \(kills.collector) collector kills while writing \(writer.total) lines; "
                + "\(check); \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        #expect(arrived, "agent:\n\(pipeline.agentLog().suffix(3000))\ncollector:\n\(pipeline.collectorLog().suffix(2000))")
        #expect(check.isExact, "\(check)")
        pipeline.stopAgent()
    }

    @Test func aCollectorOutageLosesNothingAndTheAgentStaysSmall() throws {
        let pipeline = try LoopbackPipeline("outage")
        let metricsPort = unusedLoopbackPort()
        pipeline.agentArguments = ["--http-listen", "127.0.0.1:\(metricsPort)"]
        try pipeline.startCollector()
        try pipeline.startAgent()
        let writer = SteadyWriter(path: pipeline.logs + "/app.log", prefix: "o", total: 150_000, linesPerSecond: 5_000)
        writer.start()
        Thread.sleep(forTimeInterval: 3)
        let before = pipeline.agentRSSKiB() ?? 0
        pipeline.stopCollector()
        let outage = 20.0
        let outageStarted = Date()
        var peakRSS = before
        var peakSpool = 0.0
        while Date().timeIntervalSince(outageStarted) < outage {
            peakRSS = max(peakRSS, pipeline.agentRSSKiB() ?? 0)
            peakSpool = max(peakSpool, Metrics.scrape(port: metricsPort)["muster_agent_spool_bytes"] ?? 0)
            Thread.sleep(forTimeInterval: 0.5)
        }
        let health = try Data(contentsOf: URL(string: "http://127.0.0.1:\(metricsPort)/healthz")!)
        let healthText = String(decoding: health, as: UTF8.self)
        try pipeline.startCollector()
        let returned = Date()
        writer.wait()
        let arrived = waitUntil(timeout: 60, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= writer.total }
        let drained = Date().timeIntervalSince(returned)
        Thread.sleep(forTimeInterval: 1)
        let metrics = Metrics.scrape(port: metricsPort)
        let check = DeliveryCheck(expected: writer.expected(), stored: try pipeline.storedMessages())
        print(
            "fault outage: collector down \(Int(outage)) s while writing \(writer.total) lines at \(writer.linesPerSecond)/s; "
                + "\(check); agent RSS \(before / 1024) MiB before, \(peakRSS / 1024) MiB peak; spool peak "
                + "\(Int(peakSpool) / 1024) KiB; all stored \(String(format: "%.1f", drained)) s after the collector returned; "
                + "retried \(Int(metrics["muster_agent_batches_retried_total"] ?? -1)), dropped \(Int(metrics["muster_agent_records_dropped_total"] ?? -1))")
        #expect(arrived, "agent:\n\(pipeline.agentLog().suffix(3000))")
        #expect(check.isExact, "\(check)")
        #expect(peakSpool > 0, "the backlog went to the spool")
        #expect(peakRSS - before < 32 * 1024, "agent memory grew by \((peakRSS - before) / 1024) MiB during the outage")
        #expect(healthText.contains(#""collector_reachable":false"#) && healthText.contains(#""status":"ok""#), "\(healthText)")
        #expect(metrics["muster_agent_records_dropped_total"] == 0)
        #expect((metrics["muster_agent_batches_retried_total"] ?? 0) > 0)
        #expect((metrics["muster_agent_lines_read_total"] ?? 0) >= Double(writer.total))
        pipeline.stopAgent()
    }

    @Test func aFullSpoolPausesReadingAndSaysSo() throws {
        let pipeline = try LoopbackPipeline("spoolfull")
        let metricsPort = unusedLoopbackPort()
        pipeline.agentArguments = ["--http-listen", "127.0.0.1:\(metricsPort)", "--spool-max-bytes", "65536"]
        let expected = (0..<100_000).map { SteadyWriter.line("f", $0) }
        try (expected.joined(separator: "\n") + "\n").write(toFile: pipeline.logs + "/app.log", atomically: true, encoding: .utf8)
        try pipeline.startAgent()  // no collector yet
        let full = waitUntil(timeout: 30) { pipeline.agentLog().contains("spool full") }
        #expect(full, "\(pipeline.agentLog())")
        Thread.sleep(forTimeInterval: 1.5)  // a scan publishes the lag
        let metrics = Metrics.scrape(port: metricsPort)
        let spoolOnDisk = try FileManager.default.contentsOfDirectory(atPath: pipeline.agentState + "/spool").reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: pipeline.agentState + "/spool/" + $1)[.size] as? Int) ?? 0)
        }
        let lag = metrics.first { $0.key.hasPrefix("muster_agent_file_lag_bytes{") }?.value ?? 0
        print(
            "fault spool-full: limit 64 KiB, spool on disk \(spoolOnDisk / 1024) KiB, file lag \(Int(lag) / 1024) KiB, "
                + "spool_full \(Int(metrics["muster_agent_spool_full_state"] ?? -1))")
        #expect(metrics["muster_agent_spool_full_state"] == 1)
        #expect(metrics["muster_agent_spool_full_total"] == 1)
        #expect(lag > 0, "reading paused, so the file is not read to its end: \(metrics)")
        #expect(spoolOnDisk < 65536 + 256 * 1024, "the spool stays near its limit (one batch over at most)")

        try pipeline.startCollector()
        let arrived = waitUntil(timeout: 60, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= expected.count }
        Thread.sleep(forTimeInterval: 1)
        let check = DeliveryCheck(expected: expected, stored: try pipeline.storedMessages())
        print("fault spool-full after the collector returned: \(check)")
        #expect(arrived, "\(pipeline.agentLog().suffix(3000))")
        #expect(check.isExact, "\(check)")
        let notices = try pipeline.storedMessages(source: "agent")
        #expect(notices.contains { $0.contains("spool reached its limit of 65536 bytes") }, "\(notices)")
        #expect(notices.contains { $0.contains("spool has room again") }, "\(notices)")
        pipeline.stopAgent()
    }

    @Test func damagedSpoolAndCheckpointFilesAreReportedAndSkippedNeverLooped() throws {
        let pipeline = try LoopbackPipeline("damage")
        try "spool:\n  segment_bytes: 20000\n".write(toFile: pipeline.directory + "/agent.yaml", atomically: true, encoding: .utf8)
        pipeline.agentArguments = ["--config", pipeline.directory + "/agent.yaml"]
        let expected = (0..<30_000).map { SteadyWriter.line("d", $0) }
        // Many small batches, so the spool has many entries in several segments.
        let logPath = pipeline.logs + "/app.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        try pipeline.startAgent(extra: [])  // no collector: everything stays spooled
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        for chunk in stride(from: 0, to: expected.count, by: 1000) {
            try handle.write(contentsOf: Data((expected[chunk..<chunk + 1000].joined(separator: "\n") + "\n").utf8))
            Thread.sleep(forTimeInterval: 0.15)
        }
        try handle.close()
        let size = try FileManager.default.attributesOfItem(atPath: logPath)[.size] as! Int
        let spooled = waitUntil(timeout: 30) {
            ((try? String(contentsOfFile: pipeline.agentState + "/checkpoints.json", encoding: .utf8)) ?? "").contains(#""offset":\#(size)"#)
        }
        #expect(spooled, "\(pipeline.agentLog())")
        pipeline.stopAgent()

        // Damage: a flipped byte inside an entry of an older segment, and the newest segment cut short.
        let spoolDirectory = pipeline.agentState + "/spool"
        let segments = try FileManager.default.contentsOfDirectory(atPath: spoolDirectory).filter { $0.hasSuffix(".seg") }.sorted()
        try #require(segments.count >= 3, "segments: \(segments)")
        var lost = Set<String>()
        let middle = spoolDirectory + "/" + segments[segments.count / 2]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: middle)))
        let middleEntries = bytes.withUnsafeBytes { SpoolEntryFormat.scan($0).entries }
        let victim = middleEntries[middleEntries.count / 2]
        lost.formUnion(try messages(in: bytes, victim))
        bytes[victim.offset + SpoolEntryFormat.headerBytes + 10] ^= 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: middle))
        let newest = spoolDirectory + "/" + segments.last!
        let newestBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: newest)))
        let last = try #require(newestBytes.withUnsafeBytes { SpoolEntryFormat.scan($0).entries.last })
        lost.formUnion(try messages(in: newestBytes, last))
        #expect(truncate(newest, off_t(newestBytes.count - 7)) == 0)

        try pipeline.startCollector()
        try pipeline.startAgent()
        let survivors = expected.filter { !lost.contains($0) }
        let arrived = waitUntil(timeout: 60, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= survivors.count }
        Thread.sleep(forTimeInterval: 1.5)
        let check = DeliveryCheck(expected: survivors, stored: try pipeline.storedMessages())
        let reports = pipeline.agentLog().components(separatedBy: "spool segment damaged").count - 1
        print(
            "fault damaged spool: \(segments.count) segments, 2 entries damaged holding \(lost.count) lines; "
                + "\(reports) damage reports; survivors \(check)")
        #expect(arrived, "\(pipeline.agentLog().suffix(3000))")
        #expect(check.isExact, "everything outside the damaged entries arrives exactly once: \(check)")
        #expect(reports == 2, "\(pipeline.agentLog().suffix(3000))")
        #expect(pipeline.agent?.process.isRunning == true, "no crash on damage")
        let notices = try pipeline.storedMessages(source: "agent")
        #expect(notices.filter { $0.hasPrefix("spool damage") }.count == 2, "\(notices)")
        pipeline.stopAgent()

        // A corrupt checkpoint file: set aside, said so, files read again, and the collector
        // drops what it has, so the lines lost with the damaged entries even come back.
        try Data("{\"version\":1,\"files\":[{\"ident".utf8).write(to: URL(fileURLWithPath: pipeline.agentState + "/checkpoints.json"))
        try pipeline.startAgent()
        let recovered = waitUntil(timeout: 60, interval: 0.25) { ((try? pipeline.storedCount()) ?? 0) >= expected.count }
        Thread.sleep(forTimeInterval: 1.5)
        let afterCheckpoint = DeliveryCheck(expected: expected, stored: try pipeline.storedMessages())
        print("fault corrupt checkpoint: \(afterCheckpoint)")
        #expect(recovered, "\(pipeline.agentLog().suffix(3000))")
        // The lines that come back are read now, so they sort after their neighbours by time.
        #expect(afterCheckpoint.missing == 0 && afterCheckpoint.duplicated == 0 && afterCheckpoint.stored == expected.count, "\(afterCheckpoint)")
        #expect(afterCheckpoint.outOfOrder <= lost.count, "only the lines that came back sort late: \(afterCheckpoint)")
        #expect(pipeline.agentLog().contains("checkpoint file was corrupt; moved aside"))
        #expect(pipeline.agent?.process.isRunning == true)
        pipeline.stopAgent()
    }

    /// The messages of one spooled entry, read the way the agent reads it.
    private func messages(in segment: [UInt8], _ entry: SpoolEntryFormat.Scan.Found) throws -> [String] {
        var body = ByteBufferAllocator().buffer(capacity: entry.header.bodyBytes)
        body.writeBytes(segment[(entry.offset + SpoolEntryFormat.headerBytes)..<(entry.offset + entry.length)])
        let ndjson = try ContentCoding.deflate.decode(body, limit: entry.header.uncompressedBytes)
        return try BatchCodec.decode(ndjson, limits: .init(maxRecords: .max, maxLineBytes: .max)).map(\.message)
    }
}

/// A Prometheus text page as series → value (`name` or `name{labels}`).
enum Metrics {
    static func scrape(port: Int) -> [String: Double] {
        guard let url = URL(string: "http://127.0.0.1:\(port)/metrics"), let data = try? Data(contentsOf: url) else { return [:] }
        var values: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }
}

import Foundation
import GRDB
import Testing

/// The s6 service directories the images copy (collector/service, agent/service), run by the
/// real s6-svscan: the collector's output goes through s6-log, the agent tails that log and
/// ships it to the collector, and s6 stops and restarts them.
@Suite struct SupervisedServicesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func s6(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func collectorAndAgentRunUnderS6AndTheAgentShipsTheCollectorsOwnLog() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/s6-svscan"),
            "s6 is not installed: apt-get install s6 (scripts/install-deps does this)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-s6-\(UUID().uuidString)").path
        let scan = directory + "/scan"
        let logRoot = directory + "/log"
        try FileManager.default.createDirectory(atPath: scan, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: logRoot, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Copies, because s6 writes its supervise/ state into the service directories.
        try FileManager.default.copyItem(
            atPath: Self.repository.appendingPathComponent("collector/service/muster-collector").path,
            toPath: scan + "/muster-collector")
        try FileManager.default.copyItem(
            atPath: Self.repository.appendingPathComponent("agent/service/muster-agent").path, toPath: scan + "/muster-agent")

        let port = unusedLoopbackPort()
        let agentHTTPPort = unusedLoopbackPort()
        let database = directory + "/muster.sqlite"
        try """
        database: \(database)
        tokens: [s6-token]
        listen: {host: 127.0.0.1, port: \(port)}
        synchronous: normal
        """.write(toFile: directory + "/collector.yaml", atomically: true, encoding: .utf8)
        try """
        node: s6-node
        state_dir: \(directory)/agent-state
        collector: {url: "http://127.0.0.1:\(port)", token: s6-token}
        batch: {max_age_ms: 200}
        http: {listen: "127.0.0.1:\(agentHTTPPort)"}
        sources:
          - {id: collector, paths: ["\(logRoot)/muster-collector/current"], format: s6}
        """.write(toFile: directory + "/agent.yaml", atomically: true, encoding: .utf8)

        let svscan = try RunningProcess(
            "/usr/bin/s6-svscan", [scan], logPath: directory + "/s6-svscan.log",
            environment: [
                "PATH": Binaries.directory.path + ":/usr/bin:/bin",
                "MUSTER_LOG_ROOT": logRoot,
                "MUSTER_COLLECTOR_CONFIG": directory + "/collector.yaml",
                "MUSTER_AGENT_CONFIG": directory + "/agent.yaml",
            ])
        defer {
            _ = try? s6("s6-svscanctl", ["-t", scan])
            svscan.stop(grace: 15)
        }

        // The collector's "listening" line went collector → s6-log → agent → collector → SQLite.
        var found: (time: Int64, message: String)?
        let shipped = waitUntil(timeout: 60, interval: 0.25) {
            guard FileManager.default.fileExists(atPath: database),
                let queue = try? DatabaseQueue(path: database, configuration: { var c = Configuration(); c.readonly = true; return c }()),
                let row = try? queue.read({ db in
                    try Row.fetchOne(
                        db,
                        sql: """
                            SELECT l.t, l.msg FROM logs l JOIN streams s ON s.id = l.stream
                            WHERE s.node = 's6-node' AND s.source = 'collector' AND l.msg LIKE '%collector listening%'
                            """)
                })
            else { return false }
            found = (row[0], row[1])
            return true
        }
        let collectorLog = (try? String(contentsOfFile: logRoot + "/muster-collector/current", encoding: .utf8)) ?? "(none)"
        let agentLog = (try? String(contentsOfFile: logRoot + "/muster-agent/current", encoding: .utf8)) ?? "(none)"
        try #require(shipped, "collector log:\n\(collectorLog)\nagent log:\n\(agentLog)\ns6-svscan:\n\(svscan.log())")
        // The time is the s6-log label's, decoded, and the label is gone from the message.
        let age = Double(Int64(Date().timeIntervalSince1970 * 1e9) - found!.time) / 1e9
        #expect(age >= 0 && age < 60, "line time is \(age) s old")
        #expect(!found!.message.hasPrefix("@4000"))

        // The supervised agent answers for itself.
        let health = String(decoding: try Data(contentsOf: URL(string: "http://127.0.0.1:\(agentHTTPPort)/healthz")!), as: UTF8.self)
        #expect(health.contains(#""status":"ok""#), "\(health)")
        #expect((scrapeCounter("muster_agent_lines_read_total", port: agentHTTPPort) ?? 0) >= 1)

        // s6 controls them: bring the agent down, see it down and its finish script's line.
        let collectorStatus = try s6("s6-svstat", [scan + "/muster-collector"])
        #expect(collectorStatus.hasPrefix("up"), "\(collectorStatus)")
        _ = try s6("s6-svc", ["-wd", "-T", "10000", "-d", scan + "/muster-agent"])
        let agentStatus = try s6("s6-svstat", [scan + "/muster-agent"])
        #expect(agentStatus.hasPrefix("down"), "\(agentStatus)")
        let stoppedLine = waitUntil(timeout: 10) {
            ((try? String(contentsOfFile: logRoot + "/muster-agent/current", encoding: .utf8)) ?? "").contains("muster-agent stopped: exit code 0")
        }
        #expect(stoppedLine)
    }
}

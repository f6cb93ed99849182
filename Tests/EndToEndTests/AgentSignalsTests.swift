import Foundation
import Testing

/// The agent as a daemon: SIGHUP reloads its sources while the others run on, a file it
/// cannot use changes nothing, SIGTERM still stops it cleanly; `--check-config` checks a file
/// without starting anything.
@Suite(.serialized) final class AgentSignalsTests {
    let pipeline: LoopbackPipeline

    init() throws {
        pipeline = try LoopbackPipeline("signals")
    }

    var configPath: String { pipeline.directory + "/agent.yaml" }
    var logs: String { pipeline.logs }

    /// The agent's config file with file sources, each `(id, paths)`.
    func writeConfig(_ sources: [(id: String, paths: [String])]) throws {
        var yaml = "sources:\n"
        for source in sources {
            yaml += "  - id: \(source.id)\n    paths: [\(source.paths.map { "\"\(logs)/\($0)\"" }.joined(separator: ", "))]\n"
        }
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func append(_ lines: [String], to name: String) throws {
        try appendLines(lines, to: logs + "/" + name)
    }

    static func lines(_ prefix: String, _ range: Range<Int>) -> [String] { range.map { SteadyWriter.line(prefix, $0) } }

    /// Sends SIGHUP and waits until the agent's log has `expected` once more than before.
    func hangUp(_ agent: RunningProcess, expecting expected: String) throws {
        let before = agent.log().components(separatedBy: expected).count
        kill(agent.pid, SIGHUP)
        let logged = waitUntil(timeout: 30) { agent.log().components(separatedBy: expected).count > before }
        try #require(logged, "no '\(expected)' after SIGHUP; agent:\n\(agent.log().suffix(3000))")
        try #require(agent.process.isRunning, "SIGHUP stopped the agent:\n\(agent.log().suffix(3000))")
    }

    func waitForStored(_ expected: Int, source: String, agent: RunningProcess) throws {
        let arrived = try waitUntil(timeout: 120, interval: 0.25) { try pipeline.storedCount(source: source) >= expected }
        let stored = try pipeline.storedCount(source: source)
        try #require(arrived, "source \(source): stored \(stored) of \(expected)\nagent:\n\(agent.log().suffix(3000))")
    }

    /// The collector's count of records it received again and dropped: 0 when no line was resent.
    func duplicatesReceived() -> Double? {
        scrapeCounter("muster_ingest_records_duplicate_total", port: pipeline.port)
    }

    @Test func aReloadAddsAndRemovesSourcesWhileTheOthersRunOnAndARefusedFileChangesNothing() throws {
        try pipeline.startCollector()
        try writeConfig([("a", ["a.log"]), ("b", ["b.log"])])
        try append(Self.lines("b", 0..<1000), to: "b.log")
        try append(Self.lines("c", 0..<500), to: "c.log")
        // `a` is written all along, across both reloads.
        let writerA = SteadyWriter(path: logs + "/a.log", prefix: "a", total: 8000, linesPerSecond: 1000)
        let agent = try pipeline.startAgent(sources: [], extra: ["--config", configPath])
        writerA.start()
        try waitForStored(1000, source: "b", agent: agent)
        try waitForStored(500, source: "a", agent: agent)

        try writeConfig([("a", ["a.log"]), ("c", ["c.log"])])
        try hangUp(agent, expecting: "configuration reloaded")
        let reloaded = agent.log().components(separatedBy: "\n").last { $0.contains("configuration reloaded") } ?? ""
        #expect(
            reloaded.contains("added=[\"c\"]") && reloaded.contains("removed=[\"b\"]") && reloaded.contains("changed=[]")
                && reloaded.contains("kept=[\"a\"]"),
            "\(reloaded)")
        // b is no longer read; c is, from its first line.
        try append(Self.lines("b", 1000..<1500), to: "b.log")
        try append(Self.lines("c", 500..<1000), to: "c.log")

        // A file the agent cannot use: refused with the file and the reason, and nothing changes.
        try "sources:\n  - id: a\n    type: fifo\n    paths: [\"\(logs)/a.log\"]\n".write(
            toFile: configPath, atomically: true, encoding: .utf8)
        try hangUp(agent, expecting: "cannot reload")
        let refusal = agent.log().components(separatedBy: "\n").last { $0.contains("cannot reload") } ?? ""
        #expect(refusal.contains(configPath) && refusal.contains("unknown type 'fifo'"), "\(refusal)")
        try append(Self.lines("c", 1000..<1500), to: "c.log")

        writerA.wait()
        try waitForStored(8000, source: "a", agent: agent)
        try waitForStored(1500, source: "c", agent: agent)
        agent.stop()
        #expect(agent.process.terminationStatus == 0, "agent:\n\(agent.log().suffix(3000))")

        let a = DeliveryCheck(expected: writerA.expected(), stored: try pipeline.storedMessages(source: "a"))
        #expect(a.isExact, "a: \(a)")
        let c = DeliveryCheck(expected: Self.lines("c", 0..<1500), stored: try pipeline.storedMessages(source: "c"))
        #expect(c.isExact, "c: \(c)")
        #expect(try pipeline.storedMessages(source: "b") == Self.lines("b", 0..<1000))
        // a kept its position across both reloads: nothing was read twice.
        #expect(duplicatesReceived() == 0, "collector:\n\(pipeline.collectorLog().suffix(2000))")
    }

    @Test func aChangedSourceKeepsItsPositionInTheFilesItRead() throws {
        try pipeline.startCollector()
        try writeConfig([("a", ["one.log"])])
        try append(Self.lines("one", 0..<2000), to: "one.log")
        try append(Self.lines("two", 0..<500), to: "two.log")
        let agent = try pipeline.startAgent(sources: [], extra: ["--config", configPath])
        try waitForStored(2000, source: "a", agent: agent)

        try writeConfig([("a", ["one.log", "two.log"])])
        try hangUp(agent, expecting: "configuration reloaded")
        let reloaded = agent.log().components(separatedBy: "\n").last { $0.contains("configuration reloaded") } ?? ""
        #expect(reloaded.contains("changed=[\"a\"]"), "\(reloaded)")
        try append(Self.lines("one", 2000..<3000), to: "one.log")
        try waitForStored(3500, source: "a", agent: agent)
        agent.stop()
        #expect(agent.process.terminationStatus == 0, "agent:\n\(agent.log().suffix(3000))")

        let stored = try pipeline.storedMessages(source: "a")
        let one = DeliveryCheck(expected: Self.lines("one", 0..<3000), stored: stored.filter { $0.hasPrefix("one-") })
        #expect(one.isExact, "one.log: \(one)")
        let two = DeliveryCheck(expected: Self.lines("two", 0..<500), stored: stored.filter { $0.hasPrefix("two-") })
        #expect(two.isExact, "two.log: \(two)")
        #expect(duplicatesReceived() == 0, "one.log was read again from its start")
    }

    @Test func withoutAConfigFileSIGHUPChangesNothing() throws {
        try pipeline.startCollector()
        try append(Self.lines("x", 0..<100), to: "app.log")
        let agent = try pipeline.startAgent()
        try waitForStored(100, source: "app", agent: agent)
        try hangUp(agent, expecting: "there is no file to reload")
        try append(Self.lines("x", 100..<200), to: "app.log")
        try waitForStored(200, source: "app", agent: agent)
        agent.stop()
        #expect(agent.process.terminationStatus == 0, "agent:\n\(agent.log().suffix(3000))")
    }

    /// Runs `muster-agent` with `arguments` to its end: exit status, stdout, stderr.
    func runAgent(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("muster-agent"))
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func checkConfigSaysWhetherTheAgentWouldStartWithoutStartingAnything() throws {
        let stateDirectory = pipeline.directory + "/never-created"
        // The syslog port is taken: checking binds nothing, so it does not notice.
        let taken = unusedLoopbackPort()
        let holder = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(taken).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        try """
        node: web-1
        collector:
          url: http://10.0.0.2:8088
          token: secret
        state_dir: \(stateDirectory)
        sources:
          - id: webapp
            paths: ["/var/log/webapp/current"]
          - id: haproxy
            type: syslog
            listen: ["udp://127.0.0.1:\(taken)"]
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let valid = try runAgent(["--check-config", configPath])
        #expect(valid.status == 0, "\(valid.errors)")
        #expect(
            valid.output == """
                \(configPath): OK
                node: web-1
                collector: http://10.0.0.2:8088
                sources: webapp (file), haproxy (syslog)

                """)
        #expect(!FileManager.default.fileExists(atPath: stateDirectory))
        // The environment and the flags count, as at start.
        let overridden = try runAgent(["--check-config", configPath, "--node", "web-2"])
        #expect(overridden.status == 0 && overridden.output.contains("node: web-2\n"), "\(overridden)")

        try "collector:\n  token: secret\nsources:\n  - id: webapp\n    type: fifo\n    paths: [/x]\n".write(
            toFile: configPath, atomically: true, encoding: .utf8)
        let invalid = try runAgent(["--check-config", configPath])
        #expect(invalid.status == 2)
        #expect(invalid.output.isEmpty)
        #expect(invalid.errors.hasPrefix("muster-agent: invalid agent config: source 'webapp': unknown type 'fifo' (known: file, "), "\(invalid.errors)")
        // Word for word what the agent says when it is started with the file.
        let started = try runAgent(["--config", configPath, "--state-dir", stateDirectory])
        #expect(started.status == 2)
        #expect(started.errors == invalid.errors)
        #expect(!FileManager.default.fileExists(atPath: stateDirectory))
    }
}

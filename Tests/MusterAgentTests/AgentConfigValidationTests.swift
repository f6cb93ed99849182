import Foundation
import Logging
import MusterConfigFile
import MusterLoadBalancer
import MusterWire
import Testing

@testable import MusterAgent

#if canImport(Glibc)
import Glibc
#endif

/// Config values from the file: each numeric key has a range, a typo'd key is an error, and
/// what the agent cannot use stops it at start with the key named, not later with a trap.
@Suite struct AgentConfigValidationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Loads `yaml` and validates it, with a token and a source added when it has none;
    /// returns the error's text, or nil.
    func problem(_ yaml: String) throws -> String? {
        let dir = try ScratchDirectory()
        try dir.append(yaml.isEmpty ? "{}\n" : yaml, to: "agent.yaml")
        do {
            var config = try AgentConfig.load(path: dir.path + "/agent.yaml", components: .musterAgent)
            if config.collector.token == nil { config.collector.token = "t" }
            if config.sources.isEmpty { config.sources = [AgentConfig.FileSourceConfig(id: "a", paths: ["/x"])] }
            try config.validate()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func theExampleAndTheMinimalConfigAreValid() throws {
        #expect(try problem("") == nil)
        var example = try AgentConfig.load(path: Self.repository.appendingPathComponent("agent/agent.example.yaml").path)
        example.collector.token = "t"
        try example.validate()
    }

    /// These trapped (a timeout or backoff in nanoseconds past Int64) or did nothing useful.
    @Test(arguments: [
        ("collector:\n  timeout_ms: 10000000000000\n", "collector.timeout_ms: must be between 100 and 3600000, not 10000000000000"),
        ("collector:\n  timeout_ms: 0\n", "collector.timeout_ms: must be between 100 and 3600000, not 0"),
        ("retry:\n  initial_ms: 10000000000000\n", "retry.initial_ms: must be between 1 and 3600000, not 10000000000000"),
        ("retry:\n  initial_ms: 500\n  max_ms: 100\n", "retry.max_ms: must be between 500 and 86400000 (at least retry.initial_ms), not 100"),
        ("batch:\n  max_records: 0\n", "batch.max_records: must be between 1 and 1000000, not 0"),
        ("batch:\n  max_bytes: -1\n", "batch.max_bytes: must be between 1 and 1073741824, not -1"),
        ("batch:\n  max_age_ms: -5\n", "batch.max_age_ms: must be between 1 and 3600000, not -5"),
        ("batch:\n  compression_level: 13\n", "batch.compression_level: must be between 1 and 12, not 13"),
        ("spool:\n  segment_bytes: 0\n", "spool.segment_bytes: must be between 1 and 1073741824, not 0"),
        ("spool:\n  max_bytes: 1000\n", "spool.max_bytes: must be between 4194304 and 1125899906842624 (at least spool.segment_bytes), not 1000"),
        ("shutdown_grace_ms: -1\n", "shutdown_grace_ms: must be between 0 and 3600000, not -1"),
        ("memory: {release_when_idle_ms: 500}\n", "memory.release_when_idle_ms: must be between 1000 and 86400000 (or 0 for never), not 500"),
        ("memory: {release_when_idle_ms: -1}\n", "memory.release_when_idle_ms: must be between 1000 and 86400000 (or 0 for never), not -1"),
        ("membership: {reconcile_interval_ms: 0}\n", "membership.reconcile_interval_ms: must be between 1 and 86400000, not 0"),
        ("inventory: {interval_ms: 99999999999}\n", "inventory.interval_ms: must be between 1 and 86400000, not 99999999999"),
        ("lb: {backend_port: 70000}\n", "lb.backend_port: must be between 1 and 65535, not 70000"),
        ("lb: {quiet_ms: 500, max_wait_ms: 100}\n", "lb.max_wait_ms: must be between 500 and 86400000 (at least lb.quiet_ms), not 100"),
        ("lb: {drain_timeout_ms: -1}\n", "lb.drain_timeout_ms: must be between 0 and 86400000, not -1"),
        ("lb: {stats_interval_ms: -1}\n", "lb.stats_interval_ms: must be between 0 and 86400000 (0 turns sampling off), not -1"),
    ])
    func outOfRangeValuesNameTheKeyAndTheRange(yaml: String, message: String) throws {
        let text = try #require(try problem(yaml))
        #expect(text == "invalid agent config: " + message)
    }

    @Test func sourceValuesAreCheckedToo() throws {
        let dir = try ScratchDirectory()
        try dir.append("collector: {token: t}\nsources:\n  - {id: b, paths: [/y], max_orphan_open_ms: 0}\n", to: "a.yaml")
        #expect(throws: AgentConfigError.invalid("source 'b': max_orphan_open_ms: must be between 1 and 86400000, not 0")) {
            try AgentConfig.load(path: dir.path + "/a.yaml").validate()
        }
        try dir.append(
            "collector: {token: t}\nsources:\n  - {id: j, paths: [/y], multiline: {start: '^x', max_lines: 0}}\n", to: "m.yaml")
        #expect(throws: AgentConfigError.invalid("source 'j': multiline.max_lines: must be between 1 and 1000000, not 0")) {
            try AgentConfig.load(path: dir.path + "/m.yaml")
        }
        try dir.append("collector: {token: t}\nsources:\n  - {id: s, type: syslog, listen: [udp://h:1], buffer_messages: -3}\n", to: "s.yaml")
        #expect(throws: AgentConfigError.invalid("syslog source 's': buffer_messages: must be between 1 and 10000000, not -3")) {
            try AgentConfig.load(path: dir.path + "/s.yaml").validate()
        }
    }

    /// YAML's `1e13` is a float: the key is named and a whole number asked for.
    @Test func aFloatWhereAWholeNumberBelongsNamesTheKey() throws {
        let text = try #require(try problem("collector:\n  timeout_ms: 1e13\n"))
        #expect(text.contains("collector.timeout_ms: expected a whole number"), "\(text)")
    }

    @Test(arguments: [
        ("colector:\n  url: http://h:1\n", "unknown key 'colector' (did you mean 'collector'?)"),
        ("batch:\n  max_record: 5\n", "unknown key 'max_record' in batch (did you mean 'max_records'?)"),
        ("retry: {initial: 5}\n", "unknown key 'initial' in retry (did you mean 'initial_ms'?)"),
        ("lb: {qiuet_ms: 5}\n", "unknown key 'qiuet_ms' in lb (did you mean 'quiet_ms'?)"),
        ("state_directory: /x\n", "unknown key 'state_directory' (did you mean 'state_dir'?)"),
        ("wibble: 1\n", "unknown key 'wibble' (known: agent_id, batch, collector, files, http, inventory, lb, membership, memory, node, retry, shutdown_grace_ms, sources, spool, state_dir)"),
    ])
    func anUnknownKeyIsAnErrorNamingTheNearestKnownOne(yaml: String, message: String) throws {
        let text = try #require(try problem(yaml))
        #expect(text.hasSuffix(message), "\(text)")
    }

    @Test func unknownKeysInsideTheSourceListAndItsSectionsAreFoundButTagsTakeAnyKey() throws {
        let dir = try ScratchDirectory()
        try dir.append("collector: {token: t}\nsources:\n  - {id: a, paths: [/x]}\n  - {id: b, pahts: [/y]}\n", to: "a.yaml")
        #expect(throws: AgentConfigError.invalid("\(dir.path)/a.yaml: unknown key 'pahts' in sources[1] (did you mean 'paths'?)")) {
            try AgentConfig.load(path: dir.path + "/a.yaml")
        }
        try dir.append(
            "collector: {token: t}\nsources:\n  - {id: j, paths: [/y], multiline: {start: x, max_line: 3}}\n", to: "m.yaml")
        #expect(throws: AgentConfigError.invalid("\(dir.path)/m.yaml: unknown key 'max_line' in sources[0].multiline (did you mean 'max_lines'?)")) {
            try AgentConfig.load(path: dir.path + "/m.yaml")
        }
        try dir.append("collector: {token: t}\nsources: [{id: a, paths: [/x]}]\ninventory: {tags: {zone: a, any_key: b}}\n", to: "t.yaml")
        #expect(try AgentConfig.load(path: dir.path + "/t.yaml").inventory?.tags == ["zone": "a", "any_key": "b"])
    }

    /// What images/node-config writes for an LB node with Serf, and for the collector, loads.
    @Test func theConfigThatNodeConfigWritesLoads() throws {
        let dir = try ScratchDirectory()
        for service in ["web", "haproxy", "serf"] {
            try FileManager.default.createDirectory(atPath: dir.path + "/scan/" + service, withIntermediateDirectories: true)
        }
        try dir.append("tok\n", to: "token")
        let process = Process()
        process.executableURL = Self.repository.appendingPathComponent("images/node-config")
        process.arguments = [
            "agent", "--node", "s1", "--collector-url", "http://10.0.0.2:8088", "--token-file", dir.path + "/token",
            "--scandir", dir.path + "/scan",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let yaml = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        try dir.append(String(decoding: yaml, as: UTF8.self), to: "agent.yaml")
        let config = try AgentConfig.load(path: dir.path + "/agent.yaml", components: .musterAgent)
        try config.validate()
        #expect(config.loadBalancer != nil && config.membership != nil && config.sources.count == 3)
    }

    /// One collector (`url`) or several (`urls`), each an http(s) URL, never both.
    @Test func collectorsAreOneURLOrAList() throws {
        #expect(try problem("collector: {urls: [http://c1:8088, http://c2:8088]}\n") == nil)
        #expect(try problem("collector: {url: http://c1:8088}\n") == nil)
        #expect(try problem("collector: {url: http://c1:8088, urls: [http://c2:8088]}\n")?.contains("give url (one collector) or urls (several), not both") == true)
        #expect(try problem("collector: {urls: []}\n")?.contains("collector.urls is empty") == true)
        #expect(try problem("collector: {urls: [http://c1:8088, c2:8088]}\n")?.contains("collector url 'c2:8088' is not an http(s) URL") == true)
        let dir = try ScratchDirectory()
        try dir.append("collector: {urls: [http://c1:8088, http://c2:8088]}\n", to: "agent.yaml")
        #expect(try AgentConfig.load(path: dir.path + "/agent.yaml").collector.urls == ["http://c1:8088", "http://c2:8088"])
    }

    /// `timeout_ms: 500` was cut to whole seconds, 0, and no request could ever complete.
    @Test func aTimeoutBelowASecondIsKeptInMilliseconds() async throws {
        let client = try CollectorClient.make(for: AgentConfig.Collector())
        let shipper = Shipper(
            client: client, urls: ["http://127.0.0.1:1"], token: "t", timeout: .milliseconds(500),
            backoff: Backoff(initial: .milliseconds(1), cap: .milliseconds(2)), compressionLevel: 1, logger: Logger(label: "t"))
        #expect(shipper.timeout == .milliseconds(500))
        try await client.shutdown()
    }

    /// A huge first delay (the config refuses it now, but `Backoff` must not trap on any input).
    @Test func backoffNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        for (initial, cap) in [
            (Duration.milliseconds(10_000_000_000_000), Duration.milliseconds(10_000_000_000_000)),
            (.seconds(Int64.max), .seconds(Int64.max)), (.milliseconds(200), .seconds(Int64.max)), (.seconds(-5), .seconds(1)),
        ] {
            let backoff = Backoff(initial: initial, cap: cap)
            for attempt in [0, 1, 30, 62, 63, 1000, Int.max, -1] {
                let delay = backoff.delay(attempt: attempt, using: &generator)
                #expect(delay >= .zero)
                #expect(backoff.ceiling(attempt: attempt) <= max(cap, .zero))
            }
        }
        #expect(Duration.seconds(Int64.max).saturatingNanoseconds == Int64.max)
        #expect(Duration.milliseconds(-1).saturatingNanoseconds == 0)
    }

    /// A state_dir the agent cannot write to stopped it with "Client not shut down before the
    /// deinit" (a trap); now it says which directory and why.
    @Test func anUnwritableStateDirIsNamedWithTheReason() throws {
        var config = AgentConfig()
        config.collector.token = "t"
        config.sources = [AgentConfig.FileSourceConfig(id: "a", paths: ["/nonexistent/x"])]
        // Root may write anywhere but in sysfs, where creating a file is refused even to it.
        let dir = try ScratchDirectory()
        let readOnly = dir.path + "/read-only"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        chmod(readOnly, 0o500)
        config.stateDirectory = getuid() == 0 ? "/sys" : readOnly
        #expect {
            _ = try Agent(config: config, logger: Logger(label: "t"))
        } throws: { error in
            let text = "\(error)"
            return text.contains("cannot write in state_dir \(config.stateDirectory)")
                && (text.contains("Permission denied") || text.contains("Read-only file system"))
        }
        config.stateDirectory = dir.path + "/file/state"
        try dir.append("", to: "file")
        #expect {
            _ = try Agent(config: config, logger: Logger(label: "t"))
        } throws: { "\($0)".contains("cannot create state_dir \(config.stateDirectory)") }
    }

    /// A spool that cannot be opened ends `run` with the error; the agent's HTTP client is shut
    /// down first (dropping a running one traps).
    @Test func runEndsWithTheErrorWhenTheSpoolCannotBeOpened() async throws {
        let dir = try ScratchDirectory()
        var config = AgentConfig()
        config.collector.token = "t"
        config.sources = [AgentConfig.FileSourceConfig(id: "a", paths: [dir.path + "/none"])]
        config.stateDirectory = dir.path + "/state"
        try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)
        // A file where the spool directory belongs.
        FileManager.default.createFile(atPath: config.stateDirectory + "/spool", contents: Data())
        do {
            let agent = try Agent(config: config, logger: Logger(label: "t"))
            await #expect(throws: (any Error).self) { try await agent.run() }
        }
    }
}

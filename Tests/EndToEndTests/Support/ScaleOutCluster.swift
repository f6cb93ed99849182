import Foundation
import MusterTestSupport
import Synchronization
import Testing

/// The scale-out back end for end-to-end tests: ZooKeeper (three), ClickHouse as 2 shards × 2
/// replicas and etcd (three members) on loopback, started by `scripts/scale-out-servers` once per test process, by the
/// first suite with the `.scaleOutServers` trait (suites run at once share them), and stopped
/// when the process exits. Each test gets a database (and etcd namespace) of its own in it, so
/// the servers hold nothing a test has to clean up: they and their directory are per process.
///
/// Ports: 26000 + a slot from the pid, 100 ports per slot, below the ephemeral range (32768
/// and up) that outgoing connections take ports from; the conformance target's servers use
/// 20000–25999. A port found in use moves to the next slot.
final class ScaleOutTestServers: Sendable {
    let directory: String
    /// Per shard, its replicas' HTTP addresses, in the order the collectors list them.
    let shards: [[String]]
    let cluster: String
    /// The etcd members' client URLs.
    let etcd: [String]

    /// The servers of the suite running now (set by the `.scaleOutServers` trait).
    @TaskLocal static var current: ScaleOutTestServers?

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/scale-out-servers").path
    static let directoryPrefix = "muster-e2e-scale-out-"

    private init(directory: String, shards: [[String]], cluster: String, etcd: [String]) {
        self.directory = directory
        self.shards = shards
        self.cluster = cluster
        self.etcd = etcd
    }

    /// Starts the servers; fails with the script's output, naming `scripts/install-deps` (a
    /// missing Debian package is the usual reason).
    static func start() throws -> ScaleOutTestServers {
        stopServersOfEndedRuns()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(directoryPrefix + String(getpid())).path
        var slot = Int(getpid() % 60)
        var attempt = 0
        while true {
            let portBase = 26_000 + slot * 100
            let (status, output) = run(["start", directory, "--port-base", String(portBase)])
            if status == 0 { break }
            _ = run(["stop", directory])
            attempt += 1
            // Another program (a client's ephemeral port, another run's servers) holds a port
            // of this slot: the next slot, twice at most. Seen both before the start (the
            // script's check) and after it (the port taken between the check and a server's
            // bind: ClickHouse's "Address already in use", etcd's "address already in use").
            if output.contains("is in use") || output.lowercased().contains("address already in use"), attempt < 3 {
                slot = (slot + 1) % 60
                continue
            }
            try? FileManager.default.removeItem(atPath: directory)
            throw TestSetupError(
                "the scale-out test servers did not start (scripts/scale-out-servers start \(directory) --port-base \(portBase)); "
                    + "scripts/install-deps installs the Debian packages they need (ClickHouse, ZooKeeper, etcd):\n\(output)")
        }
        running.withLock { $0 = directory }
        registerStopAtExit()
        guard let env = try? String(contentsOfFile: directory + "/env", encoding: .utf8) else {
            stopRunning()
            throw TestSetupError("scripts/scale-out-servers wrote no \(directory)/env")
        }
        var values: [String: String] = [:]
        for line in env.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
                .trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        guard let cluster = values["MUSTER_CH_CLUSTER"], let etcd = values["MUSTER_ETCD_URLS"]?.split(separator: ",").map(String.init), !etcd.isEmpty,
            let shard1 = values["MUSTER_CH_SHARD1"], let shard2 = values["MUSTER_CH_SHARD2"]
        else {
            stopRunning()
            throw TestSetupError("scripts/scale-out-servers wrote an env file without the cluster's addresses:\n\(env)")
        }
        let shards = [shard1, shard2].map { $0.split(separator: ",").map(String.init) }
        return ScaleOutTestServers(directory: directory, shards: shards, cluster: cluster, etcd: etcd)
    }

    /// The process's servers, started on first use (the caller waits meanwhile); a failure to
    /// start is every later caller's failure too.
    static func shared() throws -> ScaleOutTestServers {
        try started.withLock { started in
            if let started { return try started.get() }
            let result = Result { try start() }
            started = result
            return try result.get()
        }
    }

    private static let started = Mutex<Result<ScaleOutTestServers, any Error>?>(nil)

    /// A collector config's `store:` section naming `database` (also the etcd namespace).
    func storeSection(database: String) -> String {
        """
        store:
          clickhouse:
            cluster: \(cluster)
            database: \(database)
            shards:
        \(shards.map { "      - [\($0.joined(separator: ", "))]" }.joined(separator: "\n"))
          etcd:
            endpoints: [\(etcd.joined(separator: ", "))]
        """
    }

    /// One row of `sql` run on the first replica of each shard, summed over the shards: what
    /// the tables physically hold (copies not merged away included), which logq never shows.
    func physicalCount(_ sql: String) throws -> [Int] {
        var sums: [Int] = []
        for shard in shards {
            var components = URLComponents(string: shard[0] + "/")!
            components.queryItems = [URLQueryItem(name: "query", value: sql + " FORMAT TabSeparated")]
            let data = try Data(contentsOf: components.url!)
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let numbers = text.split(separator: "\t").map { Int($0) }
            guard !numbers.isEmpty, numbers.allSatisfy({ $0 != nil }) else { throw TestSetupError("\(sql) answered: \(text)") }
            if sums.isEmpty { sums = Array(repeating: 0, count: numbers.count) }
            for (index, number) in numbers.enumerated() { sums[index] += number! }
        }
        return sums
    }

    // MARK: the servers' life

    /// The directory of the servers this process started and has not stopped yet.
    private static let running = Mutex<String?>(nil)
    private static let registered = Mutex(false)

    private static func stopRunning() {
        guard let directory = running.withLock({ value -> String? in
            defer { value = nil }
            return value
        }) else { return }
        let (status, output) = run(["stop", directory])
        if status != 0 { print("scripts/scale-out-servers stop \(directory) exited \(status):\n\(output)") }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A test process that exits without the suite's end (an `exit` somewhere) stops them too.
    private static func registerStopAtExit() {
        guard registered.withLock({ done in defer { done = true }; return !done }) else { return }
        atexit { ScaleOutTestServers.stopRunning() }
    }

    /// A test process killed before its servers were stopped (a timeout, a crash) leaves them
    /// running, and its collectors: stopped here, found by the directory named after the
    /// process that is gone, and the collectors by the files `noteCollector` left in it.
    private static func stopServersOfEndedRuns() {
        let temporary = FileManager.default.temporaryDirectory
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] where entry.hasPrefix(directoryPrefix) {
            guard let pid = Int32(entry.dropFirst(directoryPrefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let directory = temporary.appendingPathComponent(entry).path
            killCollectors(noted: directory)
            _ = run(["stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private static let collectorNotePrefix = "collector-"

    /// Notes a collector this process started (its pid, the config it was given) in the
    /// servers' directory, for `stopServersOfEndedRuns` should this process be killed.
    static func noteCollector(pid: Int32, config: String) {
        guard let directory = running.withLock({ $0 }) else { return }
        try? config.write(toFile: "\(directory)/\(collectorNotePrefix)\(pid)", atomically: true, encoding: .utf8)
    }

    /// Kills the collectors noted in `directory` that still run: a pid counts only while its
    /// command line still names the noted config (a pid reused by another process does not).
    private static func killCollectors(noted directory: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where entry.hasPrefix(collectorNotePrefix) {
            guard let pid = Int32(entry.dropFirst(collectorNotePrefix.count)), pid > 1,
                let config = try? String(contentsOfFile: "\(directory)/\(entry)", encoding: .utf8),
                let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                commandLine.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == config })
            else { continue }
            kill(pid, SIGKILL)
        }
    }

    /// The script's exit status and output (see `SpawnedCommand`: it also runs while the process
    /// exits, and the servers it starts must get signals).
    private static func run(_ arguments: [String]) -> (Int32, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("muster-e2e-script-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        do {
            let status = try SpawnedCommand.run(script, arguments, environment: ProcessInfo.processInfo.environment, output: output)
            return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        } catch {
            return (-1, "\(error)")
        }
    }
}

/// The process's scale-out servers for a suite, started before its first test unless another
/// suite started them; the tests find them in `ScaleOutTestServers.current`. They are stopped
/// when the process exits (its `atexit` handler), however the tests end.
struct ScaleOutServersTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let servers = try ScaleOutTestServers.shared()
        try await ScaleOutTestServers.$current.withValue(servers) { try await function() }
    }
}

extension Trait where Self == ScaleOutServersTrait {
    static var scaleOutServers: Self { Self() }
}

/// One `muster-collector` on the scale-out store: its own config file (the shared `store:`
/// section, the token), port and port file, log; kept on its port across restarts.
final class ScaleOutCollector {
    let name: String
    let directory: String
    let token: String
    private(set) var process: RunningProcess?
    private(set) var port = 0

    init(name: String, directory: String, storeSection: String, token: String) throws {
        self.name = name
        self.directory = directory
        self.token = token
        let config = """
            listen:
              host: 127.0.0.1
            tokens: [\(token)]
            \(storeSection)

            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    var configPath: String { "\(directory)/\(name).yaml" }
    var portFile: String { "\(directory)/\(name).port" }
    var logPath: String { "\(directory)/\(name).log" }
    var url: String { "http://127.0.0.1:\(port)" }

    /// Starts the process (on its earlier port when it had one); `waitUntilListening` waits
    /// for its port file.
    func launch() throws {
        try? FileManager.default.removeItem(atPath: portFile)
        process = try RunningProcess(
            try Binaries.path("muster-collector"),
            ["--config", configPath, "--port", String(port), "--port-file", portFile],
            logPath: logPath)
        if let process { ScaleOutTestServers.noteCollector(pid: process.pid, config: configPath) }
    }

    /// Waits (bounded) until the port file is written, the collector having opened the store.
    func waitUntilListening(timeout: TimeInterval = 60) throws {
        let started = waitUntil(timeout: timeout, interval: 0.05) {
            FileManager.default.fileExists(atPath: portFile) || process?.process.isRunning != true
        }
        let text = (try? String(contentsOfFile: portFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard started, let text, let bound = Int(text), bound > 0 else {
            throw TestSetupError("collector \(name) did not start:\n\(log().suffix(3000))")
        }
        port = bound
    }

    func killHard() {
        guard let process, process.process.isRunning else { return }
        kill(process.pid, SIGKILL)
        process.process.waitUntilExit()
    }

    func stop() { process?.stop() }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// A counter from its `/metrics` (0 while it has none).
    func counter(_ metric: String) -> Int { Int(scrapeCounter(metric, port: port) ?? 0) }
}

/// A program run to its end with stdout and stderr kept apart, through files (no pipe to fill).
struct FinishedCommand {
    var status: Int32
    var stdout: String
    var stderr: String

    static func run(_ executable: String, _ arguments: [String], environment: [String: String], directory: String) throws
        -> FinishedCommand
    {
        let base = "\(directory)/cmd-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let status = try SpawnedCommand.run(executable, arguments, environment: environment, output: base + ".out", errors: base + ".err")
        return FinishedCommand(
            status: status,
            stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }
}

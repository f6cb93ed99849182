import Foundation
import MusterStoreClickHouse
import MusterTestSupport
import Synchronization

/// The real ClickHouse cluster the ClickHouse backend is tested against: ZooKeeper (three), two
/// shards of two replicas and etcd (three members) on loopback, started once per test process by
/// `scripts/scale-out-servers` and stopped when the process exits. Each test gets a database
/// of its own in it.
///
/// When the servers cannot start (the Debian packages missing, say), every test that needs
/// them fails with the script's message: `scripts/install-deps` installs them.
actor ScaleOutServers {
    static let shared = ScaleOutServers()

    struct Running: Sendable {
        var directory: String
        var shards: [[String]]
        var cluster: String
        /// The etcd members' client URLs.
        var etcd: [String]
    }

    private var started: Result<Running, ServersError>?

    struct ServersError: Error, CustomStringConvertible {
        var description: String
    }

    /// The running servers, starting them on first use.
    func servers() throws -> Running {
        if let started { return try started.get() }
        let result = Result { () throws(ServersError) in try Self.start() }
        started = result
        if case .success(let running) = result {
            Self.stopAtExit(running.directory)
        }
        return try result.get()
    }

    /// A fresh database on the cluster for one test: `ClickHouseServers` naming it.
    func database() throws -> ClickHouseServers {
        let running = try servers()
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        do {
            return try ClickHouseServers(shards: running.shards, cluster: running.cluster, database: name)
        } catch {
            throw ServersError(description: "\(error)")
        }
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/scale-out-servers").path

    private static func start() throws(ServersError) -> Running {
        stopServersOfEndedRuns()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-scale-out-\(getpid())").path
        // Ports of their own per test process: 20000 + a slot from the pid, 100 ports per slot,
        // below the ephemeral range (32768 and up) that outgoing connections take ports from.
        let portBase = 20_000 + Int(getpid() % 60) * 100
        let (status, output) = run(script, ["start", directory, "--port-base", String(portBase)])
        guard status == 0 else {
            _ = run(script, ["stop", directory])
            throw ServersError(
                description: "the ClickHouse test servers did not start (scripts/scale-out-servers start; "
                    + "scripts/install-deps installs ClickHouse, ZooKeeper and etcd):\n\(output)")
        }
        guard let env = try? String(contentsOfFile: directory + "/env", encoding: .utf8) else {
            throw ServersError(description: "scripts/scale-out-servers wrote no \(directory)/env")
        }
        var values: [String: String] = [:]
        for line in env.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        guard let count = values["MUSTER_CH_SHARDS"].flatMap(Int.init), count > 0,
            let cluster = values["MUSTER_CH_CLUSTER"], let etcd = values["MUSTER_ETCD_URLS"]?.split(separator: ",").map(String.init), !etcd.isEmpty
        else {
            throw ServersError(description: "scripts/scale-out-servers wrote an env file without the cluster's addresses:\n\(env)")
        }
        var shards: [[String]] = []
        for shard in 1...count {
            guard let replicas = values["MUSTER_CH_SHARD\(shard)"] else {
                throw ServersError(description: "no MUSTER_CH_SHARD\(shard) in \(directory)/env")
            }
            shards.append(replicas.split(separator: ",").map(String.init))
        }
        return Running(directory: directory, shards: shards, cluster: cluster, etcd: etcd)
    }

    /// A test process killed before its exit handler ran (a timeout, a crash) leaves its
    /// servers running: stopped here, by the directory named after the process that is gone.
    private static func stopServersOfEndedRuns() {
        let temporary = FileManager.default.temporaryDirectory
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        for entry in entries where entry.hasPrefix("muster-scale-out-") {
            guard let pid = Int32(entry.dropFirst("muster-scale-out-".count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let directory = temporary.appendingPathComponent(entry).path
            _ = run(script, ["stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Swift Testing has no hook after the last test; the process's exit is the end.
    private static func stopAtExit(_ directory: String) {
        stopDirectory.withLock { $0 = directory }
        atexit {
            guard let directory = ScaleOutServers.stopDirectory.withLock({ $0 }) else { return }
            _ = ScaleOutServers.run(ScaleOutServers.script, ["stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private static let stopDirectory = Mutex<String?>(nil)

    /// Runs the script and returns its exit status and what it printed.
    static func run(_ path: String, _ arguments: [String]) -> (Int32, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("muster-scale-out-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        do {
            let status = try SpawnedCommand.run(path, arguments, environment: ProcessInfo.processInfo.environment, output: output)
            return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        } catch {
            return (-1, "\(error)")
        }
    }
}

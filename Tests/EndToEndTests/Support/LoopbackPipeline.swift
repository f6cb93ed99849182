import Foundation
import GRDB
import Testing

/// A real collector and agent on loopback with their state in one temporary directory, for
/// tests that kill, stop and restart either side. The collector keeps its port across
/// restarts, as a real one behind a fixed address does.
final class LoopbackPipeline {
    let directory: String
    let token = "fault-token-\(UUID().uuidString)"
    private(set) var collector: RunningProcess?
    private(set) var agent: RunningProcess?
    private(set) var port = 0
    var collectorConfig: String?
    /// Extra agent flags, e.g. a spool limit.
    var agentArguments: [String] = []
    var agentStarts = 0
    var collectorStarts = 0

    init(_ name: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
    }

    deinit {
        agent?.stop()
        collector?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    var database: String { directory + "/muster.sqlite" }
    var agentState: String { directory + "/agent-state" }
    var logs: String { directory + "/logs" }

    func startCollector() throws {
        let portFile = directory + "/collector.port"
        try? FileManager.default.removeItem(atPath: portFile)
        var arguments = [
            "--database", database, "--host", "127.0.0.1", "--port", String(port), "--port-file", portFile, "--token", token,
        ]
        if let collectorConfig {
            try collectorConfig.write(toFile: directory + "/collector.yaml", atomically: true, encoding: .utf8)
            arguments += ["--config", directory + "/collector.yaml"]
        }
        collectorStarts += 1
        collector = try RunningProcess(try Binaries.path("muster-collector"), arguments, logPath: directory + "/collector.log")
        let started = waitUntil(timeout: 30, interval: 0.02) { FileManager.default.fileExists(atPath: portFile) }
        try #require(started, "collector did not start: \(collector!.log().suffix(3000))")
        port = Int(try String(contentsOfFile: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Starts the agent on `sources` (`ID=GLOB` each; by default `app=logs/*.log`). Before the
    /// collector has run, `port` 0 is reserved so that the agent finds nobody (connection
    /// refused) until the collector starts there.
    @discardableResult
    func startAgent(sources: [String]? = nil, extra: [String] = []) throws -> RunningProcess {
        if port == 0 { port = unusedLoopbackPort() }
        agentStarts += 1
        let started = try RunningProcess(
            try Binaries.path("muster-agent"),
            [
                "--node", "s1", "--collector-url", "http://127.0.0.1:\(port)", "--token", token, "--state-dir", agentState,
            ] + (sources ?? ["app=\(logs)/*.log"]).flatMap { ["--file", $0] } + agentArguments + extra,
            logPath: directory + "/agent.log")
        agent = started
        return started
    }

    func killAgent() {
        guard let agent else { return }
        kill(agent.pid, SIGKILL)
        agent.process.waitUntilExit()
    }

    func killCollector() {
        guard let collector else { return }
        kill(collector.pid, SIGKILL)
        collector.process.waitUntilExit()
    }

    func stopCollector() { collector?.stop() }
    func stopAgent() { agent?.stop() }

    func agentLog() -> String { agent?.log() ?? "" }
    func collectorLog() -> String { collector?.log() ?? "" }

    /// Rows stored, by message, with how often each occurs (a duplicate shows as 2).
    func storedMessages(source: String = "app") throws -> [String] {
        guard FileManager.default.fileExists(atPath: database) else { return [] }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: database, configuration: configuration)
        return try queue.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT l.msg FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = ? ORDER BY l.t, l.id",
                arguments: [source])
        }
    }

    /// Each stored row's structured fields, in stored order.
    func storedFields(source: String) throws -> [[String: Any]] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: database, configuration: configuration)
        let texts = try queue.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT coalesce(l.fields, '{}') FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = ? ORDER BY l.t, l.id",
                arguments: [source])
        }
        return texts.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
    }

    func storedCount(source: String = "app") throws -> Int {
        guard FileManager.default.fileExists(atPath: database) else { return 0 }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: database, configuration: configuration)
        return try queue.read { db in
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = ?",
                arguments: [source]) ?? 0
        }
    }

    /// Resident memory of the agent in KiB, from /proc: now (`VmRSS`), or its peak (`VmHWM`).
    func agentRSSKiB(_ field: String = "VmRSS") -> Int? {
        guard let agent, agent.process.isRunning,
            let status = try? String(contentsOfFile: "/proc/\(agent.pid)/status", encoding: .utf8)
        else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

}

/// Appends numbered lines to a file at a steady rate on its own thread, reopening the file for
/// every chunk as a logger that survives rotation does.
final class SteadyWriter: @unchecked Sendable {
    let path: String
    let prefix: String
    let total: Int
    let linesPerSecond: Int
    private let lock = NSLock()
    private var _written = 0
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(path: String, prefix: String, total: Int, linesPerSecond: Int) {
        self.path = path
        self.prefix = prefix
        self.total = total
        self.linesPerSecond = linesPerSecond
    }

    var written: Int { lock.withLock { _written } }

    static func line(_ prefix: String, _ number: Int) -> String {
        "\(prefix)-\(String(format: "%07d", number)) GET /api/items?id=\(number) HTTP/1.1 200 \(number % 997)ms"
    }

    func expected() -> [String] { (0..<total).map { Self.line(prefix, $0) } }

    func start() {
        let thread = Thread { [self] in
            let chunk = max(1, linesPerSecond / 50)
            let started = Date()
            var next = 0
            while next < total {
                let end = min(total, next + chunk)
                let text = (next..<end).map { Self.line(prefix, $0) + "\n" }.joined()
                let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
                if descriptor >= 0 {
                    _ = text.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
                    close(descriptor)
                }
                next = end
                lock.withLock { _written = next }
                let due = started.addingTimeInterval(Double(next) / Double(linesPerSecond))
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    func wait() { done.wait() }
}

/// What was stored against what was written: the figures the fault tests print and assert.
struct DeliveryCheck: CustomStringConvertible {
    var written: Int
    var stored: Int
    var missing: Int
    var duplicated: Int
    var outOfOrder: Int

    init(expected: [String], stored: [String]) {
        written = expected.count
        self.stored = stored.count
        var counts: [String: Int] = [:]
        for message in stored { counts[message, default: 0] += 1 }
        missing = expected.filter { counts[$0] == nil }.count
        duplicated = counts.values.reduce(0) { $0 + max(0, $1 - 1) }
        // Stored order (by time, then id) against written order, for the lines stored once.
        let position = Dictionary(uniqueKeysWithValues: expected.enumerated().map { ($1, $0) })
        var last = -1
        outOfOrder = 0
        for message in stored {
            guard let index = position[message] else { continue }
            if index < last { outOfOrder += 1 }
            last = max(last, index)
        }
    }

    var isExact: Bool { missing == 0 && duplicated == 0 && outOfOrder == 0 && stored == written }

    var description: String {
        "written \(written), stored \(stored), missing \(missing), duplicated \(duplicated), out of order \(outOfOrder)"
    }
}

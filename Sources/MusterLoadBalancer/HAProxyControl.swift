import Dispatch
import Foundation
import MusterAgent
import MusterWire

/// Talks to HAProxy: `haproxy -c` to validate, the Runtime API (stats socket, `level admin`)
/// to add and remove servers without a reload, and the master CLI (`-S master.sock`) to reload.
public struct HAProxyControl: Sendable {
    public var executable: String
    public var masterSocket: String
    public var runtimeSocket: String
    public var backend: String

    public init(executable: String, masterSocket: String, runtimeSocket: String, backend: String = "nodes") {
        self.executable = executable
        self.masterSocket = masterSocket
        self.runtimeSocket = runtimeSocket
        self.backend = backend
    }

    /// `haproxy -c -f FILE`: nil when valid, else HAProxy's own message.
    public func check(configFile: String) async -> String? {
        do {
            let output = try await Command(executable, ["-c", "-f", configFile], timeout: .seconds(20)).run()
            if output.status == 0 { return nil }
            let text = (output.stderrText + "\n" + String(decoding: output.stdout, as: UTF8.self))
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "haproxy -c exited \(output.status)" : text
        } catch {
            return "\(error)"
        }
    }

    /// Whether HAProxy answers on its master socket.
    public func isRunning() async -> Bool {
        (try? await UnixSocket.exchange(path: masterSocket, command: "show proc")) != nil
    }

    /// Runtime API: one command, its answer as text (for `show …`).
    public func query(_ command: String) async throws(LoadBalancerError) -> String {
        try await UnixSocket.exchange(path: runtimeSocket, command: command)
    }

    /// Runtime API: a command that changes something. HAProxy answers in prose without a
    /// status, so success is what docs/notes/haproxy-runtime.md recorded: the given confirmation,
    /// or an empty answer; anything else is HAProxy's error message.
    public func runtime(_ command: String, success: String? = nil) async throws(LoadBalancerError) {
        let answer = try await query(command).trimmingCharacters(in: .whitespacesAndNewlines)
        let succeeded = success.map { answer.hasPrefix($0) } ?? answer.isEmpty
        guard succeeded else { throw .haproxy("runtime API '\(command)': \(answer.isEmpty ? "(no answer)" : answer)") }
    }

    /// Adds a server as the rendered configuration describes it, waits (bounded) for its
    /// first health check to pass, then lets traffic in. The order matters (see
    /// docs/notes/haproxy-runtime.md): enabled before its check, it would be in rotation unchecked.
    /// `healthy`, when given, answers whether the server already passes the same check
    /// HAProxy will make (the controller probes it directly): HAProxy's own first check
    /// comes up to one `inter` later, which is most of a join's latency otherwise.
    public func addServer(
        _ name: String, arguments: String, dynamicCookies: Bool, checkTimeout: Duration = .seconds(5),
        healthy: (@Sendable () async -> Bool)? = nil
    ) async throws(LoadBalancerError) {
        try await runtime("add server \(backend)/\(name) \(arguments)", success: "New server registered.")
        if dynamicCookies { try await runtime("enable dynamic-cookie backend \(backend)") }
        if arguments.split(separator: " ").contains("check") {
            try await runtime("enable health \(backend)/\(name)")
            let deadline = ContinuousClock.now + checkTimeout
            while ContinuousClock.now < deadline {
                if let healthy, await healthy() { break }
                if (try? await checkResult(of: name)) == 3 { break }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        try await runtime("enable server \(backend)/\(name)")
    }

    /// `srv_check_result` from `show servers state` (3: passed, 2: failed).
    func checkResult(of name: String) async throws(LoadBalancerError) -> Int? {
        let answer = try await query("show servers state \(backend)")
        for line in answer.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ")
            if fields.count > 11, fields[3] == name { return Int(fields[11]) }
        }
        return nil
    }

    /// Drains a server (no new sessions, sticky ones finish), waits for its connections to end
    /// or `drainTimeout`, then puts it in maintenance and deletes it.
    public func removeServer(_ name: String, drainTimeout: Duration) async throws(LoadBalancerError) {
        try await runtime("set server \(backend)/\(name) state drain")
        let deadline = ContinuousClock.now + drainTimeout
        while ContinuousClock.now < deadline {
            let sessions = (try? await currentSessions(of: name)) ?? 0
            if sessions == 0 { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        try await runtime("set server \(backend)/\(name) state maint")
        // Connections still open after the bound are cut, so the delete can proceed.
        try? await runtime("shutdown sessions server \(backend)/\(name)")
        var lastError: LoadBalancerError?
        for _ in 0..<20 {
            do {
                try await runtime("del server \(backend)/\(name)", success: "Server deleted.")
                return
            } catch {
                lastError = error
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError ?? .haproxy("del server \(backend)/\(name) failed")
    }

    /// The server's current sessions (`scur` of `show stat`).
    func currentSessions(of name: String) async throws(LoadBalancerError) -> Int {
        let rows = StatTable.parse(try await query("show stat"))
        return rows.first { $0.proxy == backend && $0.name == name }?.currentSessions ?? 0
    }

    /// Reloads through the master CLI and checks that a new worker took over.
    public func reload() async throws(LoadBalancerError) {
        let before = try await UnixSocket.exchange(path: masterSocket, command: "show proc")
        _ = try await UnixSocket.exchange(path: masterSocket, command: "reload", timeout: .seconds(30))
        // The master answers `reload` before the new worker is ready; watch `show proc`.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
            guard let after = try? await UnixSocket.exchange(path: masterSocket, command: "show proc") else { continue }
            if let failure = MasterProcesses.failedReload(before: before, after: after) { throw .haproxy(failure) }
            if MasterProcesses.newWorkerStarted(before: before, after: after) { return }
        }
        throw .haproxy("reload: no new worker appeared within 15 s (show proc: \(before))")
    }
}

/// `show proc` from the master CLI.
enum MasterProcesses {
    /// PIDs of current workers (the `# workers` section, not `# old workers`).
    static func workers(_ text: String) -> [Int] {
        var inWorkers = false
        var pids: [Int] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") {
                inWorkers = line.lowercased().contains("workers") && !line.lowercased().contains("old")
                continue
            }
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if inWorkers, words.count > 1, words[1] == "worker", let pid = Int(words[0]) { pids.append(pid) }
        }
        return pids
    }

    static func newWorkerStarted(before: String, after: String) -> Bool {
        let old = Set(workers(before))
        return workers(after).contains { !old.contains($0) }
    }

    /// The master's line for itself ends with its reload count; a failed reload shows as
    /// `failed` in recent versions' output. Nil when no failure is visible.
    static func failedReload(before: String, after: String) -> String? {
        func failedCount(_ text: String) -> Int? {
            guard let range = text.range(of: "failed: ") else { return nil }
            return Int(text[range.upperBound...].prefix { $0.isNumber })
        }
        if let now = failedCount(after), now > (failedCount(before) ?? 0) { return "reload failed (show proc: \(after))" }
        return nil
    }
}

/// `show stat` CSV, the columns the history keeps.
enum StatTable {
    static func parse(_ csv: String) -> [ServerStats] {
        let lines = csv.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("# ") else { return [] }
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        func index(_ name: String) -> Int? { columns.firstIndex(of: name) }
        guard let px = index("pxname"), let sv = index("svname"), let status = index("status"), let scur = index("scur"),
            let stot = index("stot")
        else { return [] }
        let h2 = index("hrsp_2xx")
        let h5 = index("hrsp_5xx")
        return lines.dropFirst().compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= columns.count - 1, fields.count > max(px, sv, status, scur, stot) else { return nil }
            func number(_ i: Int?) -> Int { i.flatMap { $0 < fields.count ? Int(fields[$0]) : nil } ?? 0 }
            return ServerStats(
                proxy: fields[px], name: fields[sv], status: fields[status], currentSessions: number(scur),
                totalSessions: number(stot), responses2xx: number(h2), responses5xx: number(h5))
        }
    }
}

/// One command over a unix stream socket: connect, send the line, read until HAProxy closes.
enum UnixSocket {
    static func exchange(path: String, command: String, timeout: Duration = .seconds(5)) async throws(LoadBalancerError) -> String {
        let result: Result<String, LoadBalancerError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: exchangeBlocking(path: path, command: command, timeout: timeout)) }
        }
        return try result.get()
    }

    private static func exchangeBlocking(path: String, command: String, timeout: Duration) -> Result<String, LoadBalancerError> {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return .failure(.io("socket: \(String(cString: strerror(errno)))")) }
        defer { close(descriptor) }
        var seconds = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return .failure(.io("socket path too long: \(path)")) }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return .failure(.io("cannot connect to \(path): \(String(cString: strerror(errno)))")) }
        let line = Array((command + "\n").utf8)
        guard line.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == line.count else {
            return .failure(.io("cannot write to \(path): \(String(cString: strerror(errno)))"))
        }
        // The master CLI keeps the connection open for more commands until it sees our end.
        shutdown(descriptor, Int32(SHUT_WR))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                answer.append(contentsOf: buffer[0..<count])
            } else if count == 0 {
                break
            } else if errno == EINTR {
                continue
            } else {
                return .failure(.io("no answer from \(path) to '\(command)': \(String(cString: strerror(errno)))"))
            }
        }
        return .success(String(decoding: answer, as: UTF8.self))
    }
}

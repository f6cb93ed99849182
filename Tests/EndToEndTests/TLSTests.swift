import Foundation
import GRDB
import Testing

/// The collector's API over HTTPS with a private CA made by the test: agents that trust that
/// CA deliver, agents that trust another never do (and keep their lines), plain HTTP gets
/// nothing, the event stream works, and the token shows up in no log.
@Suite(.serialized) final class TLSTests {
    let directory: String
    /// Unique, so finding it in a log can only mean it leaked.
    let token = "tls-token-\(UUID().uuidString)"
    var collector: RunningProcess?
    var port = 0

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        try makeCertificates()
    }

    deinit {
        collector?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    var database: String { directory + "/muster.sqlite" }

    // MARK: Certificates

    struct Finished {
        var status: Int32
        var output: String
    }

    /// Runs a program to its end, stdout and stderr together.
    func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Finished {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Finished(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    static func tool(_ name: String) throws -> String {
        let found = ["/usr/bin/", "/usr/local/bin/", "/bin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(found, "these tests need the \(name) command (Debian: apt-get install \(name))")
    }

    /// ca.pem signs server.pem (for IP 127.0.0.1, key server.key); other-ca.pem is a second,
    /// unrelated CA.
    func makeCertificates() throws {
        let openssl = try Self.tool("openssl")
        func openSSL(_ arguments: String...) throws {
            let result = try run(openssl, arguments)
            try #require(result.status == 0, "openssl \(arguments.joined(separator: " ")) failed:\n\(result.output)")
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for name in ["ca", "other-ca"] {
            try run(openssl, ["req", "-x509"] + ec + [
                "-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", "/CN=Muster test \(name)",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]).require("openssl req (\(name))")
        }
        try run(openssl, ["req", "-new"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"])
            .require("openssl req (server)")
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
            .write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        try openSSL(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
            "-days", "2", "-extfile", "server.ext")
    }

    // MARK: Processes

    func startCollector() throws {
        let portFile = directory + "/collector.port"
        collector = try RunningProcess(
            try Binaries.path("muster-collector"),
            [
                "--database", database, "--host", "127.0.0.1", "--port", "0", "--port-file", portFile, "--token", token,
                "--tls-cert", directory + "/server.pem", "--tls-key", directory + "/server.key", "--log-level", "debug",
            ],
            logPath: directory + "/collector.log")
        let started = waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: portFile) }
        try #require(started, "collector did not start: \(collector!.log())")
        port = Int(try String(contentsOfFile: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(collector!.log().contains("scheme=https"), "\(collector!.log())")
    }

    /// An agent for node `node` reading `logs/<node>/*.log`; `extra` picks the CA (and config).
    func startAgent(_ node: String, _ extra: [String], environment: [String: String] = [:]) throws -> RunningProcess {
        try FileManager.default.createDirectory(atPath: directory + "/logs/" + node, withIntermediateDirectories: true)
        return try RunningProcess(
            try Binaries.path("muster-agent"),
            [
                "--node", node, "--collector-url", "https://127.0.0.1:\(port)", "--token", token,
                "--state-dir", directory + "/state-" + node, "--file", "app=\(directory)/logs/\(node)/*.log", "--log-level", "debug",
            ] + extra,
            logPath: directory + "/agent-\(node).log", environment: environment)
    }

    func append(_ lines: [String], node: String) throws {
        try FileManager.default.createDirectory(atPath: directory + "/logs/" + node, withIntermediateDirectories: true)
        try appendLines(lines, to: directory + "/logs/\(node)/app.log")
    }

    static func lines(_ node: String, _ count: Int) -> [String] {
        (0..<count).map { "\(node)-\(String(format: "%05d", $0)) GET /api/items?id=\($0) HTTP/1.1 200" }
    }

    /// Rows stored for `node`, and how many distinct messages they hold.
    func stored(_ node: String) throws -> (rows: Int, distinct: Int) {
        guard FileManager.default.fileExists(atPath: database) else { return (0, 0) }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: database, configuration: configuration)
        return try queue.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT count(*), count(DISTINCT msg) FROM logs JOIN streams ON streams.id = logs.stream WHERE node = ?",
                arguments: [node])
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    func waitForStored(_ node: String, _ expected: Int, agent: RunningProcess) throws {
        let arrived = try waitUntil(timeout: 120, interval: 0.25) { try stored(node).rows >= expected }
        let rows = try stored(node).rows
        try #require(
            arrived, "stored \(rows) of \(expected)\nagent:\n\(agent.log().suffix(3000))\ncollector:\n\(collector!.log().suffix(3000))")
    }

    func expectNoTokenIn(_ processes: [RunningProcess?]) {
        for process in processes.compactMap({ $0 }) {
            let log = process.log()
            #expect(!log.isEmpty)
            #expect(!log.contains(token), "the token appears in \(process.logPath)")
        }
    }

    // MARK: Tests

    @Test func anAgentTrustingTheCollectorsCADeliversEveryLineOnceAndNoLogHasTheToken() throws {
        try startCollector()
        try append(Self.lines("s1", 600), node: "s1")
        let agent = try startAgent("s1", ["--ca-file", directory + "/ca.pem"])
        try append(Array(Self.lines("s1", 1000)[600...]), node: "s1")
        try waitForStored("s1", 1000, agent: agent)
        Thread.sleep(forTimeInterval: 1.5)  // anything extra would show up now
        let stored = try stored("s1")
        #expect(stored.rows == 1000 && stored.distinct == 1000)
        agent.stop()
        #expect(agent.process.terminationStatus == 0, "\(agent.log().suffix(2000))")
        expectNoTokenIn([agent, collector])
    }

    @Test func anAgentTrustingAnotherCANeverGetsALineInAndKeepsItsLines() throws {
        try startCollector()
        try append(Self.lines("s2", 50), node: "s2")
        // The wrong CA through the environment, a short request timeout through a config file:
        // each attempt ends with the handshake's error instead of waiting 30 s.
        try "collector:\n  timeout_ms: 1000\nretry:\n  initial_ms: 50\n  max_ms: 200\n"
            .write(toFile: directory + "/agent.yaml", atomically: true, encoding: .utf8)
        let agent = try startAgent(
            "s2", ["--config", directory + "/agent.yaml"], environment: ["MUSTER_CA_FILE": directory + "/other-ca.pem"])
        let refused = waitUntil(timeout: 60) { agent.log().contains("CERTIFICATE_VERIFY_FAILED") }
        #expect(refused, "agent:\n\(agent.log().suffix(3000))")
        // Still trying, well past the first failure (the shipper logs every tenth attempt), with
        // nothing stored and nothing given up.
        let retried = waitUntil(timeout: 60) { agent.log().components(separatedBy: "CERTIFICATE_VERIFY_FAILED").count > 2 }
        #expect(retried, "agent:\n\(agent.log().suffix(3000))")
        #expect(agent.process.isRunning)
        #expect(try stored("s2").rows == 0)
        #expect(!FileManager.default.fileExists(atPath: directory + "/state-s2/refused"))
        agent.stop()
        expectNoTokenIn([agent])

        // Given the right CA, the same agent delivers every line from its spool: none was dropped.
        let fixed = try startAgent("s2", ["--config", directory + "/agent.yaml", "--ca-file", directory + "/ca.pem"])
        try waitForStored("s2", 50, agent: fixed)
        Thread.sleep(forTimeInterval: 1)
        #expect(try stored("s2").rows == 50)
        fixed.stop()
        expectNoTokenIn([fixed, collector])
    }

    @Test func plainHTTPFailsAndTheEventStreamAndMarksWorkOverHTTPS() throws {
        let curl = try Self.tool("curl")
        try startCollector()
        let base = "127.0.0.1:\(port)"

        let plain = try run(curl, ["-sS", "--max-time", "5", "http://\(base)/healthz"])
        #expect(plain.status != 0 && !plain.output.contains("\"ok\""), "plain http answered: \(plain.output)")
        let wrongCA = try run(curl, ["-sS", "--max-time", "5", "--cacert", directory + "/other-ca.pem", "https://\(base)/healthz"])
        #expect(wrongCA.status == 60, "\(wrongCA.output)")  // curl: peer certificate cannot be authenticated
        let health = try run(curl, ["-sS", "--max-time", "5", "--cacert", directory + "/ca.pem", "https://\(base)/healthz"])
        #expect(health.status == 0 && health.output.contains("\"ok\""), "\(health.output)")

        // A live SSE consumer over https, then an event for it: a mark made with logq over https.
        try "header = \"Authorization: Bearer \(token)\"\n".write(toFile: directory + "/curl.conf", atomically: true, encoding: .utf8)
        let stream = try RunningProcess(
            curl, ["-sSN", "--cacert", directory + "/ca.pem", "-K", directory + "/curl.conf", "https://\(base)/v1/events?since=0"],
            logPath: directory + "/stream.out")
        Thread.sleep(forTimeInterval: 0.5)
        let http = try run(
            try Binaries.path("logq"), ["mark", "task-tls", "--collector-url", "http://\(base)", "--ca-file", directory + "/ca.pem"],
            environment: ["MUSTER_TOKEN": token])
        #expect(http.status == 65 && http.output.contains("ca_file is set but collector url is http://\(base)"), "\(http.output)")
        let untrusted = try run(
            try Binaries.path("logq"), ["mark", "task-tls", "--collector-url", "https://\(base)", "--ca-file", directory + "/other-ca.pem"],
            environment: ["MUSTER_TOKEN": token])
        #expect(
            untrusted.status == 69 && untrusted.output.contains("certificate could not be verified against the CA file \(directory)/other-ca.pem"),
            "\(untrusted.output)")
        let mark = try run(
            try Binaries.path("logq"), ["mark", "task-tls", "--collector-url", "https://\(base)"],
            environment: ["MUSTER_TOKEN": token, "MUSTER_CA_FILE": directory + "/ca.pem"])
        #expect(mark.status == 0 && mark.output.hasPrefix("marked task-tls at "), "\(mark.output)")
        let streamed = waitUntil(timeout: 30) { stream.log().contains("event: mark") && stream.log().contains("task-tls") }
        #expect(streamed, "stream output:\n\(stream.log())\ncollector:\n\(collector!.log().suffix(2000))")
        // The collector first: it ends the stream with a TLS close the live client answers. A
        // client killed first leaves the collector's close unanswered until NIOSSL gives up.
        collector?.stop()
        stream.stop()
        expectNoTokenIn([collector])
    }

    @Test func brokenTLSSettingsStopTheCollectorWithAClearMessage() throws {
        let collector = try Binaries.path("muster-collector")
        let common = ["--database", database, "--port", "0", "--token", token]
        let half = try run(collector, common + ["--tls-cert", directory + "/server.pem"])
        #expect(half.status == 2 && half.output.contains("tls.key_file: missing"), "\(half.output)")
        let swapped = try run(collector, common + ["--tls-cert", directory + "/server.pem", "--tls-key", directory + "/ca.key"])
        #expect(swapped.status == 2 && swapped.output.contains("does not go with cert_file"), "\(swapped.output)")
        let missing = try run(collector, common + ["--tls-cert", directory + "/nope.pem", "--tls-key", directory + "/server.key"])
        #expect(missing.status == 2 && missing.output.contains("cannot read \(directory)/nope.pem"), "\(missing.output)")
        #expect(!FileManager.default.fileExists(atPath: database))
        #expect(![half, swapped, missing].contains { $0.output.contains(token) })

        let agent = try run(
            try Binaries.path("muster-agent"),
            ["--collector-url", "https://127.0.0.1:1", "--token", token, "--file", "a=/x", "--state-dir", directory + "/s",
             "--ca-file", directory + "/nope.pem"])
        #expect(agent.status == 2 && agent.output.contains("cannot read collector.ca_file \(directory)/nope.pem"), "\(agent.output)")
    }
}

extension TLSTests.Finished {
    func require(_ what: String) throws {
        try #require(status == 0, "\(what) failed:\n\(output)")
    }
}

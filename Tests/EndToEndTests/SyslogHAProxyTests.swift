import Foundation
import Logging
import MusterAgent
import MusterWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real HAProxy logs requests to a `SyslogSource` in this process: RFC 3164 over a unix
/// socket (HAProxy's default format) and RFC 5424 over UDP. No pipeline is involved; this
/// pins down what HAProxy actually sends and that the source turns it into httplog fields.
@Suite(.serialized) struct SyslogHAProxyTests {
    @Test func haproxyLogsReachTheSyslogSourceOverUnixAndUDP() throws {
        let haproxy = try Self.haproxyPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("muster-syslog-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = dir + "/log.sock"

        let source = SyslogSource(
            config: .init(id: "haproxy-syslog", listen: ["udp://127.0.0.1:0", "unix://" + socketPath], parse: .haproxyHTTPLog),
            agentID: "test", logger: Logger(label: "syslog-e2e"))
        try source.start()
        defer { source.stop() }
        let udpPort = try #require(source.boundAddresses.first { $0.hasPrefix("udp://") }.flatMap { Int($0.split(separator: ":").last!) })

        let (unixPort, udpFrontendPort, serverPort) = (unusedLoopbackPort(), unusedLoopbackPort(), unusedLoopbackPort())
        let config = Self.haproxyConfig(
            logGlobal: socketPath, udpLog: "127.0.0.1:\(udpPort)", frontendPort: unixPort, udpFrontendPort: udpFrontendPort,
            serverPort: serverPort)
        try config.write(toFile: dir + "/haproxy.cfg", atomically: true, encoding: .utf8)
        // RFC 3164 timestamps are the sender's local time and carry no zone: pin it to UTC.
        let process = try RunningProcess(haproxy, ["-f", dir + "/haproxy.cfg", "-db"], logPath: dir + "/haproxy.log", environment: ["TZ": "UTC"])
        defer { process.stop() }

        let before = Timestamp.now()
        func get(_ port: Int, _ path: String) -> Bool {
            guard let url = URL(string: "http://127.0.0.1:\(port)\(path)"), let body = try? Data(contentsOf: url) else { return false }
            return String(decoding: body, as: UTF8.self) == "ok"
        }
        #expect(waitUntil(timeout: 10) { get(unixPort, "/unix/0") }, "haproxy did not answer: \(process.log())")
        #expect(get(unixPort, "/unix/1?x=1"))
        #expect(get(udpFrontendPort, "/udp/0"))
        #expect(get(udpFrontendPort, "/udp/1?x=1"))

        var requests: [SyslogLine] = []
        var others: [SyslogLine] = []
        _ = waitUntil(timeout: 10) {
            _ = source.read(budget: 1 << 20) { line in
                if line.fields["status"] != nil { requests.append(line) } else { others.append(line) }
            }
            return requests.count >= 4
        }
        let after = Timestamp.now()
        try #require(requests.count == 4, "request lines: \(requests.map(\.message)); other lines: \(others.map(\.message)); haproxy: \(process.log())")

        for (path, frontend) in [("/unix/0", "fe3164"), ("/unix/1?x=1", "fe3164"), ("/udp/0", "fe5424"), ("/udp/1?x=1", "fe5424")] {
            let line = try #require(requests.first { $0.fields["path"] == .string(path) }, "no line for \(path)")
            let fields = line.fields
            #expect(fields["status"] == .int(200) && fields["method"] == .string("GET") && fields["path"] == .string(path))
            #expect(fields["frontend"] == .string(frontend) && fields["backend"] == .string("app") && fields["server"] == .string("web1"))
            #expect(fields["client"] == .string("127.0.0.1") && fields["termination"] == .string("----"))
            for timer in ["tq", "tw", "tc", "tr", "ta"] {
                guard case .int(let value) = fields[timer] else {
                    Issue.record("\(timer) missing in \(fields)")
                    continue
                }
                #expect(value >= 0 && value < 5000, "\(timer)=\(value)")
            }
            // The header's fields; the message is HAProxy's line alone, header stripped.
            #expect(fields["facility"] == .string("local0") && fields["severity"] == .string("info"))
            #expect(fields["app"] == .string("haproxy") && fields["procid"] == .string("\(process.pid)"))
            #expect(fields["host"] == nil, "HAProxy sends no hostname without log-send-hostname")
            #expect(line.message.hasPrefix("127.0.0.1:") && line.message.hasSuffix("\"GET \(path) HTTP/1.1\""), "\(line.message)")
            // The header's time, not the receive time (nanoseconds): RFC 3164 has whole seconds,
            // HAProxy's RFC 5424 microseconds.
            #expect(line.time >= before - Timestamp.nanosPerSecond && line.time <= after, "\(Timestamp.format(line.time))")
            #expect(line.time % (frontend == "fe3164" ? Timestamp.nanosPerSecond : 1000) == 0, "\(Timestamp.format(line.time))")
        }
        #expect(source.counters.malformed == 0)
        #expect(source.counters.kernelDrops == 0 && source.counters.bufferFullPauses == 0)
        process.stop()
        #expect(!process.process.isRunning)
    }

    /// The whole way: HAProxy logs to the muster-agent binary's socket, and the parsed request
    /// lines are rows in the collector's store, once each.
    @Test func haproxyLogsStraightToTheAgentAndTheFieldsAreStored() throws {
        let haproxy = try Self.haproxyPath()
        let pipeline = try LoopbackPipeline("syslog-agent")
        let socketPath = pipeline.directory + "/log.sock"
        let udpPort = unusedLoopbackPort()
        try """
            sources:
              - id: haproxy
                type: syslog
                listen: ["unix://\(socketPath)", "udp://127.0.0.1:\(udpPort)"]
                parse: haproxy-httplog
            """.write(toFile: pipeline.directory + "/agent.yaml", atomically: true, encoding: .utf8)
        pipeline.agentArguments = ["--config", pipeline.directory + "/agent.yaml"]
        try pipeline.startCollector()
        try pipeline.startAgent()
        #expect(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: socketPath) }, "\(pipeline.agentLog())")

        let (frontendPort, udpFrontendPort, serverPort) = (unusedLoopbackPort(), unusedLoopbackPort(), unusedLoopbackPort())
        try Self.haproxyConfig(
            logGlobal: socketPath, udpLog: "127.0.0.1:\(udpPort)", frontendPort: frontendPort,
            udpFrontendPort: udpFrontendPort, serverPort: serverPort
        ).write(toFile: pipeline.directory + "/haproxy.cfg", atomically: true, encoding: .utf8)
        let process = try RunningProcess(
            haproxy, ["-f", pipeline.directory + "/haproxy.cfg", "-db"], logPath: pipeline.directory + "/haproxy.log",
            environment: ["TZ": "UTC"])
        defer { process.stop() }
        func get(_ port: Int, _ path: String) -> Bool {
            guard let url = URL(string: "http://127.0.0.1:\(port)\(path)"), let body = try? Data(contentsOf: url) else { return false }
            return String(decoding: body, as: UTF8.self) == "ok"
        }
        #expect(waitUntil(timeout: 10) { get(frontendPort, "/warmup") }, "\(process.log())")
        var sent = 1
        for index in 0..<50 {
            #expect(get(index % 2 == 0 ? frontendPort : udpFrontendPort, "/item/\(index)"))
            sent += 1
        }
        let stored = waitUntil(timeout: 30, interval: 0.25) { ((try? pipeline.storedCount(source: "haproxy")) ?? 0) >= sent }
        Thread.sleep(forTimeInterval: 1)
        #expect(stored, "agent:\n\(pipeline.agentLog().suffix(3000))")
        let rows = try pipeline.storedFields(source: "haproxy")
        let requests = rows.filter { $0["status"] != nil }
        print("syslog e2e: \(sent) requests through HAProxy, \(rows.count) rows stored, \(requests.count) with httplog fields")
        #expect(requests.count == sent, "\(rows.prefix(5))")
        #expect(Set(requests.compactMap { $0["path"] as? String }).count == sent, "each request once")
        for row in requests {
            #expect(row["status"] as? Int == 200 && row["server"] as? String == "web1" && row["backend"] as? String == "app")
            #expect(row["app"] as? String == "haproxy" && row["facility"] as? String == "local0")
        }
        pipeline.stopAgent()
        #expect(!FileManager.default.fileExists(atPath: socketPath), "the agent removes its socket when it stops")
    }

    /// Frontend `fe3164` logs through `global` to the unix socket (HAProxy's default RFC 3164),
    /// `fe5424` over UDP as RFC 5424; both to backend `app`, whose server `web1` is a third
    /// frontend answering by itself, so that backend and server are real.
    static func haproxyConfig(logGlobal: String, udpLog: String, frontendPort: Int, udpFrontendPort: Int, serverPort: Int) -> String {
        """
        global
            log \(logGlobal) local0
        defaults
            mode http
            option httplog
            timeout connect 2s
            timeout client 5s
            timeout server 5s
        frontend fe3164
            bind 127.0.0.1:\(frontendPort)
            log global
            default_backend app
        frontend fe5424
            bind 127.0.0.1:\(udpFrontendPort)
            log \(udpLog) format rfc5424 local0
            default_backend app
        backend app
            server web1 127.0.0.1:\(serverPort)
        frontend web
            bind 127.0.0.1:\(serverPort)
            http-request return status 200 content-type text/plain string ok

        """
    }

    static func haproxyPath() throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/haproxy") {
            return directory + "/haproxy"
        }
        throw TestSetupError("haproxy is not installed (looked in PATH, /usr/sbin, /usr/local/sbin): apt-get install haproxy")
    }
}

import Foundation
import Logging
import MusterWire
import Testing

@testable import MusterAgent

#if canImport(Glibc)
import Glibc
#endif

/// 2026-11-22T04:19:28Z, the receive time of the parser cases.
private let received: Int64 = 1_795_321_168 * Timestamp.nanosPerSecond

private func parse(_ text: String, at time: Int64 = received) -> SyslogMessage {
    SyslogMessage(parsing: text, receivedAt: time)
}

@Suite struct SyslogMessageTests {
    @Test func rfc5424WithStructuredDataAndBOM() throws {
        let message = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] \u{FEFF}An application event log entry\n"
        )
        #expect(message.format == .rfc5424)
        #expect(message.facility == 20 && message.severity == 5)
        #expect(message.time == Timestamp.parseRFC3339("2003-10-11T22:14:15.003Z"))
        #expect(message.hostname == "mymachine.example.com" && message.appName == "evntslog")
        #expect(message.procID == nil && message.msgID == "ID47")
        #expect(message.structuredData == "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]")
        #expect(message.message == "An application event log entry")
        #expect(message.fields["facility"] == .string("local4") && message.fields["severity"] == .string("notice"))
        #expect(message.fields["msgid"] == .string("ID47") && message.fields["procid"] == nil)
    }

    @Test func rfc5424StructuredDataWithEscapedBracketsAndSeveralElements() {
        let message = parse(#"<13>1 2026-11-22T05:19:28+01:00 h a 1 m [a x="y\]z"][b@1 q="\"w\"" r="\\"] text ] here"#)
        #expect(message.format == .rfc5424)
        #expect(message.time == received)
        #expect(message.structuredData == #"[a x="y\]z"][b@1 q="\"w\"" r="\\"]"#)
        #expect(message.message == "text ] here")
    }

    @Test func rfc5424NilValuesAndNoMessage() {
        let message = parse("<34>1 - - - - - -")
        #expect(message.format == .rfc5424 && message.time == received)
        #expect(message.hostname == nil && message.appName == nil && message.procID == nil && message.msgID == nil)
        #expect(message.structuredData == nil && message.message == "")
        #expect(message.fields.keys.sorted() == ["facility", "severity"])
    }

    @Test func rfc5424AsHAProxySendsIt() {
        let line = #"127.0.0.1:48386 [22/Nov/2026:04:19:28.962] fe5424 be/s1 0/0/0/0/0 200 73 - - ---- 3/1/0/0/0 0/0 "GET /def HTTP/1.1""#
        let message = parse("<134>1 2026-11-22T04:19:28.963115+00:00 - haproxy 10466 - - \(line)\n")
        #expect(message.format == .rfc5424 && message.facility == 16 && message.severity == 6)
        #expect(message.time == received + 963_115_000)
        #expect(message.hostname == nil && message.appName == "haproxy" && message.procID == "10466")
        #expect(message.message == line)
    }

    @Test func rfc5424WithAnUnreadableTimestampKeepsItsHeader() {
        let message = parse("<13>1 yesterday host app - - - hello")
        #expect(message.format == .rfc5424 && message.time == received && message.message == "hello")
    }

    @Test(arguments: [
        "<13>1 2026-11-22T04:19:28Z host",  // header cut short
        "<13>1 - - - - - [unterminated x=\"]\" msg",  // structured data never closed
        "<13>1 - - - - - [a]msg",  // no space after structured data
        "<13>1 - - - - - x msg",  // neither - nor [
    ])
    func brokenRFC5424IsMalformedAndKeptWhole(text: String) {
        let message = parse(text)
        #expect(message.format == .malformed)
        #expect(message.message == text && message.time == received)
        #expect(message.facility == 1 && message.severity == 5)
    }

    @Test func rfc3164WithHostAndPID() {
        let message = parse("<34>Nov 22 01:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8")
        #expect(message.format == .rfc3164 && message.facility == 4 && message.severity == 2)
        #expect(message.time == Timestamp.parseRFC3339("2026-11-22T01:14:15Z"))
        #expect(message.hostname == "mymachine" && message.appName == "su" && message.procID == "230")
        #expect(message.message == "'su root' failed for lonvick on /dev/pts/8")
    }

    @Test func rfc3164WithoutPIDAndASpacePaddedDay() {
        let message = parse("<13>Feb  5 17:32:18 10.0.0.99 myapp: Use the BFG!\r\n")
        #expect(message.format == .rfc3164)
        #expect(message.time == Timestamp.parseRFC3339("2026-02-05T17:32:18Z"))
        #expect(message.hostname == "10.0.0.99" && message.appName == "myapp" && message.procID == nil)
        #expect(message.message == "Use the BFG!")
    }

    /// What Debian's HAProxy 2.6 sends to a unix socket: no hostname unless `log-send-hostname`.
    @Test func haproxysOwnRFC3164() {
        let line = #"127.0.0.1:51248 [22/Nov/2026:04:19:28.956] fe be/s1 0/0/0/0/0 200 73 - - ---- 2/1/0/0/0 0/0 "GET /abc?x=1 HTTP/1.1""#
        let message = parse("<134>Nov 22 04:19:28 haproxy[10466]: \(line)\n")
        #expect(message.format == .rfc3164 && message.time == received)
        #expect(message.hostname == nil && message.appName == "haproxy" && message.procID == "10466")
        #expect(message.message == line)
        #expect(LineParser.haproxyHTTPLog.fields(message.message)["status"] == .int(200))
        let withHost = parse("<134>Nov 22 04:19:28 ha1 haproxy[10466]: \(line)")
        #expect(withHost.hostname == "ha1" && withHost.appName == "haproxy" && withHost.message == line)
    }

    @Test func rfc3164HostAndMessageWithoutTag() {
        let message = parse("<13>Nov 22 04:19:28 host just a message")
        #expect(message.hostname == "host" && message.appName == nil && message.message == "just a message")
        let oneWord = parse("<13>Nov 22 04:19:28 hello")
        #expect(oneWord.hostname == nil && oneWord.message == "hello")
    }

    @Test func rfc3164WithAnRFC3339Timestamp() {
        let message = parse("<13>2026-11-22T05:19:28.5+01:00 host app[7]: hi")
        #expect(message.format == .rfc3164 && message.time == received + 500_000_000)
        #expect(message.hostname == "host" && message.appName == "app" && message.procID == "7" && message.message == "hi")
    }

    /// No year in RFC 3164: the receive year, or the year before when that is more than a day ahead.
    @Test func rfc3164YearIsInferredFromTheReceiveTime() throws {
        let newYear = try #require(Timestamp.parseRFC3339("2027-01-01T00:10:00Z"))
        #expect(parse("<13>Dec 31 23:59:00 h a: x", at: newYear).time == Timestamp.parseRFC3339("2026-12-31T23:59:00Z"))
        #expect(parse("<13>Jan  1 00:09:00 h a: x", at: newYear).time == Timestamp.parseRFC3339("2027-01-01T00:09:00Z"))
        // A sender's clock a few hours ahead stays in this year.
        #expect(parse("<13>Nov 23 02:00:00 h a: x").time == Timestamp.parseRFC3339("2026-11-23T02:00:00Z"))
        #expect(parse("<13>Nov 24 05:00:00 h a: x").time == Timestamp.parseRFC3339("2025-11-24T05:00:00Z"))
        // February 29th of a common year does not exist: receive time.
        #expect(parse("<13>Feb 29 12:00:00 h a: x").time == received)
    }

    @Test func barePriority() {
        let message = parse("<13>hello world\0")
        #expect(message.format == .bare && message.facility == 1 && message.severity == 5)
        #expect(message.message == "hello world" && message.time == received)
        // A month-like start that is not a timestamp is just text.
        #expect(parse("<13>Nov is cold").message == "Nov is cold")
    }

    @Test(arguments: ["hello", "", "<>", "<abc>x", "<13", "<192>too high", "<1000>x", "<-1>x", "<0134>x", " <13>x"])
    func garbageIsMalformedAndKeptWhole(text: String) {
        let message = parse(text)
        #expect(message.format == .malformed && message.facility == nil && message.severity == nil)
        #expect(message.message == text && message.time == received)
        #expect(message.fields.isEmpty)
    }

    @Test func invalidUTF8IsReplacedNotRejected() {
        let bytes: [UInt8] = Array("<13>".utf8) + [0xFF, 0x41, 0xC3] + [0x0A]
        let message = bytes.withUnsafeBytes { SyslogMessage(parsing: $0, receivedAt: received) }
        #expect(message.format == .bare && message.message == "\u{FFFD}A\u{FFFD}")
    }

    @Test func overLongMessagesAndHeaderWords() {
        let text = String(repeating: "x", count: 100_000)
        let message = parse("<13>1 - host app - - - \(text)")
        #expect(message.format == .rfc5424 && message.message.utf8.count == 100_000)
        let longHost = String(repeating: "h", count: 5000)
        #expect(parse("<13>Nov 22 04:19:28 \(longHost) app: m").hostname == longHost)
        #expect(parse("<13>" + text).format == .bare)
    }

    /// Timestamps past what a nanosecond count can hold (or before the epoch) used to trap in
    /// the date arithmetic; now the message keeps its header, gets the receive time, and says so.
    @Test(arguments: [
        "<14>1 9999-12-31T23:59:59Z host app - - - x", "<14>1 0000-01-01T00:00:00Z host app - - - x",
        "<14>1 2263-01-01T00:00:00Z host app - - - x", "<14>1 1969-12-31T23:59:59Z host app - - - x",
        "<14>1 2261-12-31T23:59:59-23:59 host app - - - x",
    ])
    func rfc5424OutOfRangeYearsKeepTheHeaderAndTheReceiveTime(text: String) {
        let message = parse(text)
        #expect(message.format == .rfc5424 && message.time == received && message.timeUnreadable)
        #expect(message.hostname == "host" && message.appName == "app" && message.message == "x")
    }

    @Test(arguments: [
        "<14>9999-12-31T23:59:59Z host app: x", "<14>0000-01-01T00:00:00Z host app: x",
        "<14>2263-01-01T00:00:00.5+01:00 host app: x", "<14>2026-02-30T00:00:00Z host app: x",
    ])
    func rfc3164OutOfRangeRFC3339TimesKeepTheHeaderAndTheReceiveTime(text: String) {
        let message = parse(text)
        #expect(message.format == .rfc3164 && message.time == received && message.timeUnreadable)
        #expect(message.hostname == "host" && message.appName == "app" && message.message == "x")
    }

    /// BSD timestamps have no year: one the receive clock puts outside the supported years
    /// (a clock at the epoch, a message from December) gets the receive time.
    @Test func rfc3164BSDTimesOutsideTheSupportedYearsGetTheReceiveTime() throws {
        let epoch: Int64 = 3_600 * Timestamp.nanosPerSecond
        let early = parse("<13>Dec 31 23:00:00 h a: x", at: epoch)
        #expect(early.format == .rfc3164 && early.time == epoch && early.timeUnreadable && early.appName == "a")
        let late = try #require(Timestamp.parseRFC3339("2261-12-31T23:00:00Z"))
        #expect(parse("<13>Dec 31 23:59:59 h a: x", at: late).time == Timestamp.parseRFC3339("2261-12-31T23:59:59Z"))
        #expect(!parse("<13>Dec 31 23:59:59 h a: x", at: late).timeUnreadable)
        #expect(parse("<13>Feb 29 12:00:00 h a: x").timeUnreadable)
        // A first word that is no timestamp at all is not an unreadable one.
        #expect(!parse("<13>hello world").timeUnreadable && !parse("<13>1 - h a - - - x").timeUnreadable)
    }

    @Test func priorityZeroAndMaximum() {
        #expect(parse("<0>x").fields["facility"] == .string("kern") && parse("<0>x").fields["severity"] == .string("emerg"))
        #expect(parse("<191>x").fields["facility"] == .string("local7") && parse("<191>x").fields["severity"] == .string("debug"))
    }
}

@Suite struct SyslogConfigTests {
    func load(_ sources: String) throws -> AgentConfig {
        let dir = try ScratchDirectory()
        try dir.append("collector: {token: t}\nsources:\n" + sources, to: "agent.yaml")
        return try AgentConfig.load(path: dir.path + "/agent.yaml")
    }

    func problem(_ sources: String) -> String {
        do {
            try load(sources).validate()
            return "valid"
        } catch {
            return "\(error)"
        }
    }

    @Test func aSyslogOnlyConfigIsValid() throws {
        let config = try load(
            """
              - id: haproxy-syslog
                type: syslog
                listen: [udp://127.0.0.1:5514, "unix:///run/muster/syslog.sock", "udp://[::1]:5514"]
                parse: haproxy-httplog
                buffer_messages: 1000
            """)
        try config.validate()
        #expect(config.fileSources.isEmpty)
        #expect(
            config.syslogSources == [
                .init(
                    id: "haproxy-syslog", listen: ["udp://127.0.0.1:5514", "unix:///run/muster/syslog.sock", "udp://[::1]:5514"],
                    parse: .haproxyHTTPLog, bufferMessages: 1000)
            ])
    }

    /// The commented example in agent/agent.example.yaml, uncommented, loads as documented.
    @Test func theExampleSyslogSourceLoads() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("agent/agent.example.yaml").path
        let lines = try String(contentsOfFile: example, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasPrefix("  # - id: haproxy-syslog") })
        let block = lines[start...].prefix { $0.hasPrefix("  #  ") || $0.hasPrefix("  # - ") }
        let config = try load(block.map { "  " + $0.dropFirst(4) }.joined(separator: "\n"))
        try config.validate()
        #expect(config.syslogSources.first?.listen == ["udp://127.0.0.1:5514", "unix:///run/muster/syslog.sock"])
        #expect(config.syslogSources.first?.parse == .haproxyHTTPLog)
    }

    @Test func typesAndTheirKeys() {
        #expect(problem("  - {id: a, type: tcp, listen: [udp://1.2.3.4:5]}").contains("unknown type 'tcp' (known: file, syslog)"))
        #expect(problem("  - {id: a, type: syslog}").contains("type syslog needs listen"))
        #expect(problem("  - {id: a}").contains("type file needs paths"))
        #expect(problem("  - {id: a, type: syslog, listen: [udp://h:1], paths: [/x]}").contains("paths, format, multiline, max_orphan_open_ms, max_line_bytes and overlong_lines are for type: file"))
        #expect(problem("  - {id: a, paths: [/x], listen: [udp://h:1]}").contains("listen and buffer_messages are for type: syslog"))
        #expect(problem("  - {id: a, type: syslog, listen: []}").contains("has no listen addresses"))
        #expect(problem("  - {id: a, type: syslog, listen: [udp://h:1], buffer_messages: 0}").contains("buffer_messages: must be between 1 and 10000000, not 0"))
    }

    @Test(arguments: [
        ("tcp://127.0.0.1:514", "use udp://HOST:PORT or unix:///absolute/path"),
        ("udp://127.0.0.1", "give a port"),
        ("udp://127.0.0.1:0", "1 to 65535"),
        ("udp://127.0.0.1:65536", "1 to 65535"),
        ("udp://127.0.0.1:http", "1 to 65535"),
        ("udp://:514", "give a host"),
        ("udp://::1:514", "IPv6 address in brackets"),
        ("unix://run/x.sock", "must be absolute"),
        ("unix:///run/", "names a directory"),
        ("unix:///" + String(repeating: "d", count: 120), "longer than 107 bytes"),
    ])
    func listenAddressesAreChecked(address: String, expected: String) {
        let message = problem("  - {id: hs, type: syslog, listen: [\"\(address)\"]}")
        #expect(message.contains("syslog source 'hs': invalid listen address '\(address)'"), "\(message)")
        #expect(message.contains(expected), "\(message)")
    }

    @Test func idsAndAddressesDoNotCollide() {
        #expect(problem("  - {id: a, paths: [/x]}\n  - {id: a, type: syslog, listen: [udp://h:1]}").contains("source id 'a' is used twice"))
        #expect(problem("  - {id: events, type: syslog, listen: [udp://h:1]}").contains("reserved for the event journal"))
        #expect(
            problem("  - {id: a, type: syslog, listen: [udp://h:1]}\n  - {id: b, type: syslog, listen: [udp://h:1]}")
                .contains("listen address 'udp://h:1' is used twice"))
    }
}

// MARK: Real sockets

/// Sends each payload as one datagram to a UDP port or a unix socket path.
func sendDatagrams(_ payloads: [String], udpPort: Int? = nil, unixPath: String? = nil) throws {
    let descriptor = socket(unixPath == nil ? AF_INET : AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    guard descriptor >= 0 else { throw SyslogTestError("socket: \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    for payload in payloads {
        let bytes = Array(payload.utf8)
        let sent: Int
        if let unixPath {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: unixPath.utf8) }
            sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(udpPort ?? 0).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == bytes.count else { throw SyslogTestError("sendto: \(String(cString: strerror(errno)))") }
    }
}

struct SyslogTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads from `source` until `count` lines arrived or `timeout` seconds passed.
func drain(_ source: SyslogSource, count: Int, timeout: Double = 10) -> [SyslogLine] {
    var lines: [SyslogLine] = []
    let deadline = Date().addingTimeInterval(timeout)
    while lines.count < count, Date() < deadline {
        if source.read(budget: 1 << 20, into: { lines.append($0) }) == 0 { usleep(10_000) }
    }
    return lines
}

/// The UDP port the source bound (from `udp://HOST:PORT`).
func boundUDPPort(_ source: SyslogSource) throws -> Int {
    let address = try #require(source.boundAddresses.first { $0.hasPrefix("udp://") })
    return try #require(Int(address.split(separator: ":").last ?? ""))
}

@Suite(.serialized) struct SyslogSourceTests {
    let logger = Logger(label: "syslog-test")

    @Test func receivesOverUDPAndAUnixSocket() throws {
        let dir = try ScratchDirectory()
        let socketPath = dir.path + "/run/syslog.sock"
        let source = SyslogSource(
            config: .init(id: "hs", listen: ["udp://127.0.0.1:0", "unix://" + socketPath], parse: .haproxyHTTPLog),
            agentID: "a1", logger: logger)
        try source.start()
        defer { source.stop() }
        let port = try boundUDPPort(source)
        #expect(port > 0)
        var info = stat()
        #expect(lstat(socketPath, &info) == 0 && info.st_mode & 0o777 == 0o666)

        let request = #"10.0.0.1:5000 [22/Nov/2026:04:19:28.956] fe be/s1 1/0/2/3/6 200 73 - - ---- 2/1/0/0/0 0/0 "GET /x HTTP/1.1""#
        try sendDatagrams(["<134>1 2026-11-22T04:19:28Z - haproxy 7 - - \(request)\n", "<13>1 - - - - - -"], udpPort: port)
        let overUDP = drain(source, count: 2)
        try sendDatagrams(["<134>Nov 22 04:19:28 haproxy[7]: \(request)\n", "not syslog at all"], unixPath: socketPath)
        let overUnix = drain(source, count: 2)
        let lines = overUDP + overUnix
        try #require(lines.count == 4)
        #expect(lines.map(\.sequence) == [0, 1, 2, 3])
        #expect(lines[0].message == request && lines[2].message == request)
        for line in [lines[0], lines[2]] {
            #expect(line.time == received)
            #expect(line.fields["status"] == .int(200) && line.fields["path"] == .string("/x") && line.fields["ta"] == .int(6))
            #expect(line.fields["app"] == .string("haproxy") && line.fields["procid"] == .string("7"))
            #expect(line.fields["facility"] == .string("local0") && line.fields["severity"] == .string("info"))
        }
        #expect(lines[1].message == "" && lines[1].fields["facility"] == .string("user"))
        #expect(lines[3].message == "not syslog at all" && lines[3].fields.isEmpty)
        let counters = source.counters
        #expect(counters.received == 4 && counters.malformed == 1 && counters.bufferFullPauses == 0 && counters.buffered == 0)

        source.stop()
        #expect(!FileManager.default.fileExists(atPath: socketPath), "stop removes the socket file")
        #expect(source.boundAddresses.isEmpty)
    }

    /// One datagram with a year no nanosecond count holds, among good ones: every datagram is
    /// kept, the bad one with its receive time, and counted.
    @Test func aDatagramWithAnOutOfRangeYearIsKeptAndCounted() throws {
        let source = SyslogSource(config: .init(id: "years", listen: ["udp://127.0.0.1:0"]), agentID: "a1", logger: logger)
        try source.start()
        defer { source.stop() }
        let before = Timestamp.now()
        try sendDatagrams(
            ["<14>1 2026-11-22T04:19:28Z h a - - - first", "<14>1 9999-12-31T23:59:59Z host app - - - x",
             "<14>0000-01-01T00:00:00Z host app: y", "<14>1 2026-11-22T04:19:28Z h a - - - last"],
            udpPort: try boundUDPPort(source))
        let lines = drain(source, count: 4)
        #expect(lines.map(\.message) == ["first", "x", "y", "last"])
        #expect(lines[0].time == received && lines[3].time == received)
        #expect(lines[1].time >= before && lines[2].time >= before)
        #expect(source.counters.unreadableTimes == 2 && source.counters.malformed == 0 && source.counters.received == 4)
    }

    @Test func aFullBufferPausesReadingAndLosesNothingTheKernelHeld() throws {
        let source = SyslogSource(config: .init(id: "small", listen: ["udp://127.0.0.1:0"], bufferMessages: 5), agentID: "a1", logger: logger)
        try source.start()
        defer { source.stop() }
        try sendDatagrams((0..<40).map { "<13>message \($0)" }, udpPort: try boundUDPPort(source))
        #expect(waitFor { source.counters.bufferFullPauses >= 1 })
        #expect(source.counters.buffered == 5)
        let lines = drain(source, count: 40)
        #expect(lines.map(\.message) == (0..<40).map { "message \($0)" })
        #expect(lines.map(\.sequence) == (0..<40).map(Int64.init))
        #expect(source.counters.kernelDrops == 0 && source.counters.received == 40)
    }

    @Test func stopTakesWhatTheKernelHadQueued() throws {
        let source = SyslogSource(config: .init(id: "small", listen: ["udp://127.0.0.1:0"], bufferMessages: 5), agentID: "a1", logger: logger)
        try source.start()
        try sendDatagrams((0..<40).map { "<13>message \($0)" }, udpPort: try boundUDPPort(source))
        // The buffer holds 5; the other 35 wait in the kernel's queue when stop() comes.
        #expect(waitFor { source.counters.bufferFullPauses >= 1 })
        source.stop()
        let lines = drain(source, count: 40, timeout: 1)
        #expect(lines.map(\.message) == (0..<40).map { "message \($0)" })
    }

    /// Past the kernel's buffer the kernel drops: counted, and reported with the next datagram.
    @Test func kernelDropsAreCounted() throws {
        let source = SyslogSource(config: .init(id: "flood", listen: ["udp://127.0.0.1:0"], bufferMessages: 100), agentID: "a1", logger: logger)
        try source.start()
        defer { source.stop() }
        let port = try boundUDPPort(source)
        try sendDatagrams((0..<20_000).map { "<13>flood \($0)" }, udpPort: port)
        #expect(waitFor { source.counters.bufferFullPauses >= 1 })
        // Everything the kernel held, then one more datagram, which carries the drop count.
        var lines: [SyslogLine] = []
        var quietSince = Date()
        while Date().timeIntervalSince(quietSince) < 0.5 {
            if source.read(budget: 1 << 20, into: { lines.append($0) }) > 0 { quietSince = Date() } else { usleep(10_000) }
        }
        try sendDatagrams(["<13>after the flood"], udpPort: port)
        lines += drain(source, count: 1)
        let counters = source.counters
        #expect(counters.kernelDrops > 0, "4 MiB should not hold 20,000 datagrams")
        #expect(counters.received == lines.count && lines.count + counters.kernelDrops == 20_001, "\(counters)")
        #expect(lines.last?.message == "after the flood")
        #expect(lines.map(\.sequence) == (0..<Int64(lines.count)).map { $0 })
    }

    @Test func readStopsAtItsBudget() throws {
        let source = SyslogSource(config: .init(id: "b", listen: ["udp://127.0.0.1:0"]), agentID: "a1", logger: logger)
        try source.start()
        defer { source.stop() }
        try sendDatagrams((0..<10).map { _ in "<13>" + String(repeating: "x", count: 99) }, udpPort: try boundUDPPort(source))
        #expect(waitFor { source.counters.buffered == 10 })
        var lines = 0
        #expect(source.read(budget: 250) { _ in lines += 1 } == 300 && lines == 3)
        #expect(source.read(budget: 1) { _ in lines += 1 } == 100 && lines == 4)
        #expect(source.read(budget: 1 << 20) { _ in lines += 1 } == 600 && lines == 10)
        #expect(source.read(budget: 1 << 20) { _ in lines += 1 } == 0)
    }

    @Test func aStaleSocketFileIsReplacedButALiveOneOrAFileIsNot() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/syslog.sock"
        // Stale: bound by a socket since closed, so nobody receives on it.
        let stale = SyslogSource(config: .init(id: "old", listen: ["unix://" + path]), agentID: "a1", logger: logger)
        try stale.start()
        let live = SyslogSource(config: .init(id: "second", listen: ["unix://" + path]), agentID: "a1", logger: logger)
        #expect { try live.start() } throws: { "\($0)".contains("syslog source 'second': cannot bind unix://\(path): another process is receiving") }
        let descriptors = stale.boundAddresses
        #expect(descriptors == ["unix://" + path])
        // Simulate a crash: the file stays behind after the socket is gone.
        let copy = dir.path + "/kept"
        try FileManager.default.moveItem(atPath: path, toPath: copy)
        stale.stop()
        try FileManager.default.moveItem(atPath: copy, toPath: path)
        try live.start()
        try sendDatagrams(["<13>after restart"], unixPath: path)
        #expect(drain(live, count: 1).map(\.message) == ["after restart"])
        live.stop()

        try "not a socket".write(toFile: path, atomically: true, encoding: .utf8)
        let blocked = SyslogSource(config: .init(id: "f", listen: ["unix://" + path]), agentID: "a1", logger: logger)
        #expect { try blocked.start() } throws: { "\($0)".contains("exists and is not a socket; not removing it") }
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func aPortInUseSaysSoAndBindsNothing() throws {
        let first = SyslogSource(config: .init(id: "first", listen: ["udp://127.0.0.1:0"]), agentID: "a1", logger: logger)
        try first.start()
        defer { first.stop() }
        let port = try boundUDPPort(first)
        let dir = try ScratchDirectory()
        let second = SyslogSource(
            config: .init(id: "haproxy", listen: ["unix://\(dir.path)/s.sock", "udp://127.0.0.1:\(port)"]), agentID: "a1", logger: logger)
        #expect { try second.start() } throws: { error in
            "\(error)".hasPrefix("syslog source 'haproxy': cannot bind udp://127.0.0.1:\(port): Address already in use")
        }
        // The unix socket bound before the failure was released again.
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/s.sock"))
        #expect(second.boundAddresses.isEmpty)
    }
}

/// Polls `condition` for up to `timeout` seconds.
func waitFor(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

import Foundation
import MusterWire
import Testing

@testable import MusterAgent
@testable import MusterLoadBalancer

@Suite struct LoadBalancerTests {
    static let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("collector/haproxy.cfg.mustache").path

    func renderer(_ configure: (inout ConfigRenderer.Settings) -> Void = { _ in }) throws -> ConfigRenderer {
        var settings = ConfigRenderer.Settings()
        settings.httpPort = 18080
        settings.statsPort = 18936
        settings.bindAddress = "127.0.0.1"
        settings.runtimeSocket = "/tmp/muster-test-admin.sock"
        configure(&settings)
        return try ConfigRenderer(templateText: try String(contentsOfFile: Self.template, encoding: .utf8), settings: settings)
    }

    func web(_ address: String, status: MemberStatus = .alive, role: String = "web") -> KnownMember {
        KnownMember(address: address, role: role, status: status)
    }

    @Test func onlyAliveMembersOfTheRoleWithSafeNamesAndAddressesBecomeServers() {
        let members: [String: KnownMember] = [
            "s1": web("10.0.0.10"), "s2": web("10.0.0.11", status: .failed), "ha": web("10.0.0.3", role: "ha"),
            "s3": web("fd00::3"),
            "s1\n    server evil 203.0.113.9:80": web("10.0.0.12"),
            "has space": web("10.0.0.13"), "quote\"d": web("10.0.0.14"), "hash#": web("10.0.0.15"),
            "s4": web("10.0.0.16:80"), "s5": web("evil.example.com"), "-dash": web("10.0.0.17"),
        ]
        let (servers, refused) = MemberValidation.desiredServers(members: members, role: "web")
        #expect(servers == [BackendServer(name: "s1", address: "10.0.0.10"), BackendServer(name: "s3", address: "fd00::3")])
        #expect(refused.count == 7)
        #expect(refused.contains { $0.contains(#"server evil"#) && $0.contains("refused") })
    }

    /// `inet_pton` stops at a NUL, so `10.0.0.29\0…` passed as 10.0.0.29 and every render
    /// then failed `haproxy -c`; loopback and the like pointed HAProxy at itself or nowhere.
    /// Each such member is refused with its reason, and the others are still served.
    @Test func controlBytesAndUnusableAddressesAreRefusedAndTheRestStillRender() throws {
        let unusable: [String: String] = [
            "10.0.0.29\u{0000}": "not an IP address", "10.0.0.29\u{0000}junk": "not an IP address",
            "10.0.0.30\n": "not an IP address", "\u{0007}10.0.0.31": "not an IP address", "fd00::\u{001B}1": "not an IP address",
            "127.0.0.1": "loopback", "127.255.0.9": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
            "0.0.0.0": "0.0.0.0/8", "::": "unspecified", "255.255.255.255": "broadcast",
            "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
        ]
        var members: [String: KnownMember] = ["s1": web("10.0.0.10"), "s2": web("fd00::2"), "s3": web("::ffff:10.0.0.12")]
        for (index, address) in unusable.keys.sorted().enumerated() { members["bad\(index)"] = web(address) }
        members["s1\u{0000}x"] = web("10.0.0.13")
        members["s1\u{0001}"] = web("10.0.0.14")
        let (servers, refused) = MemberValidation.desiredServers(members: members, role: "web")
        #expect(servers.map(\.name) == ["s1", "s2", "s3"])
        #expect(refused.count == unusable.count + 2, "\(refused)")
        for (address, reason) in unusable {
            #expect(refused.contains { $0.contains(String(reflecting: address)) && $0.contains(reason) }, "\(address): \(refused)")
        }
        let text = try renderer().render(servers: servers, version: 1, generatedAt: 0)
        #expect(Set(ConfigRenderer.serverLines(text).keys) == ["s1", "s2", "s3"])
        #expect(!text.utf8.contains { $0 < 0x20 && $0 != 0x0A && $0 != 0x09 })
    }

    @Test func aHostileNameNeverChangesTheRenderedStructure() throws {
        let members: [String: KnownMember] = ["s1": web("10.0.0.10"), "s1\n    server evil 203.0.113.9:80": web("10.0.0.12")]
        let text = try renderer().render(servers: MemberValidation.desiredServers(members: members, role: "web").servers, version: 1, generatedAt: 0)
        #expect(!text.contains("evil"))
        #expect(ConfigRenderer.serverLines(text) == ["s1": "10.0.0.10:80 check inter 1s fall 2 rise 1"])
        // A one-host cluster may allow loopback; nothing else that is refused becomes usable.
        #expect(MemberValidation.unusableAddressReason("127.0.0.1", allowLoopback: true) == nil)
        #expect(MemberValidation.unusableAddressReason("::1", allowLoopback: true) == nil)
        for address in ["0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "10.0.0.29\u{0}"] {
            #expect(MemberValidation.unusableAddressReason(address, allowLoopback: true) != nil, "\(address)")
        }
    }

    /// The real haproxy accepts what the template renders, with and without servers.
    @Test func theRenderedConfigurationPassesHaproxyCheck() async throws {
        let control = HAProxyControl(executable: "haproxy", masterSocket: "/nonexistent", runtimeSocket: "/nonexistent")
        for servers in [
            [], [BackendServer(name: "s1", address: "10.0.0.10"), BackendServer(name: "s2", address: "10.0.0.11")],
            [BackendServer(name: "s3", address: "fd00::3")],
        ] {
            let text = try renderer { $0.logTarget = "127.0.0.1:514" }.render(servers: servers, version: 3, generatedAt: 0)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString).cfg").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            defer { unlink(path) }
            if servers.first?.name == "s3" { #expect(ConfigRenderer.serverLines(text)["s3"]?.hasPrefix("[fd00::3]:80 ") == true) }
            let problem = await control.check(configFile: path)
            #expect(problem == nil, "\(problem ?? "")\n\(text)")
        }
        // And a broken file gets HAProxy's own message back.
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString).cfg").path
        try "frontend x\n    bind :notaport\n".write(toFile: broken, atomically: true, encoding: .utf8)
        defer { unlink(broken) }
        let message = await control.check(configFile: broken)
        #expect(message?.contains("notaport") == true, "\(message ?? "nil")")
    }

    @Test func versionsOfTheSameClusterCompareEqualAndServerOnlyChangesKeepTheSkeleton() throws {
        let renderer = try renderer()
        let one = renderer.render(servers: [BackendServer(name: "s1", address: "10.0.0.10")], version: 1, generatedAt: 0)
        let again = renderer.render(servers: [BackendServer(name: "s1", address: "10.0.0.10")], version: 2, generatedAt: 5_000_000_000)
        let two = renderer.render(
            servers: [BackendServer(name: "s1", address: "10.0.0.10"), BackendServer(name: "s2", address: "10.0.0.11")], version: 3,
            generatedAt: 0)
        #expect(ConfigRenderer.comparable(one) == ConfigRenderer.comparable(again))
        #expect(ConfigRenderer.comparable(one) != ConfigRenderer.comparable(two))
        #expect(ConfigRenderer.skeleton(one) == ConfigRenderer.skeleton(two))
        let other = try self.renderer { $0.httpPort = 18081 }.render(servers: [], version: 1, generatedAt: 0)
        #expect(ConfigRenderer.skeleton(one) != ConfigRenderer.skeleton(other))
        let diff = ConfigDiff.unified(from: one, to: two)
        #expect(diff.contains("+    server s2 10.0.0.11:80"))
        #expect(!diff.contains("-    server s1"))
    }

    @Test func aTemplateThatDoesNotParseIsAnError() {
        #expect(throws: LoadBalancerError.self) { try ConfigRenderer(templateText: "{{#servers}} unclosed", settings: .init()) }
    }

    @Test func showStatAndShowProcAreRead() {
        let csv = """
            # pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other
            http-in,FRONTEND,,,1,3,262115,40,4000,8000,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,3,,,,0,38,0,2,0,0
            nodes,s1,0,0,0,2,,20,2000,4000,,0,,0,0,0,0,UP,1,1,0,0,0,10,0,,1,3,1,,20,,2,0,,2,L7OK,200,1,0,19,0,1,0,0
            """
        let rows = StatTable.parse(csv)
        #expect(rows.count == 2)
        #expect(rows[1] == ServerStats(proxy: "nodes", name: "s1", status: "UP", currentSessions: 0, totalSessions: 20, responses2xx: 19, responses5xx: 0))
        let before = """
            #<PID>          <type>          <reloads>       <uptime>        <version>
            100             master          0 [failed: 0]   0d00h00m05s     2.6.12-1+deb12u4
            # workers
            101             worker          0               0d00h00m05s     2.6.12-1+deb12u4
            # programs

            """
        let after = """
            #<PID>          <type>          <reloads>       <uptime>        <version>
            100             master          1 [failed: 0]   0d00h00m06s     2.6.12-1+deb12u4
            # workers
            102             worker          0               0d00h00m00s     2.6.12-1+deb12u4
            # old workers
            101             worker          1               0d00h00m06s     2.6.12-1+deb12u4
            # programs

            """
        #expect(MasterProcesses.workers(before) == [101])
        #expect(MasterProcesses.newWorkerStarted(before: before, after: after))
        #expect(MasterProcesses.failedReload(before: before, after: after) == nil)
        #expect(MasterProcesses.failedReload(before: before, after: after.replacingOccurrences(of: "[failed: 0]", with: "[failed: 1]")) != nil)
    }
}

/// The controller's decisions with the real `haproxy -c` but no HAProxy running: what it
/// writes, what it refuses, and what it records in the journal.
@Suite struct LBControllerTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lb-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func controller(template: String? = nil) throws -> (LBController, ConfigRenderer) {
        var config = AgentConfig.LoadBalancerConfig()
        config.config = directory + "/haproxy.cfg"
        config.masterSocket = directory + "/master.sock"
        config.render.runtimeSocket = directory + "/admin.sock"
        config.render.httpPort = 18080
        config.render.statsPort = 18936
        config.render.bindAddress = "127.0.0.1"
        config.quietMilliseconds = 300
        config.maxWaitMilliseconds = 1000
        let text = try template ?? String(contentsOfFile: LoadBalancerTests.template, encoding: .utf8)
        let renderer = try ConfigRenderer(templateText: text, settings: config.render)
        let controller = LBController(
            config: config, node: "ha", journal: EventJournal(path: directory + "/events.jsonl"),
            streams: [EventStreamClient(baseURL: "http://127.0.0.1:1", token: "t", client: .shared)], serfRPC: nil,
            stateDirectory: directory, logger: .init(label: "test"))
        return (controller, renderer)
    }

    func member(_ id: Int64, _ name: String, _ address: String, change: MemberChange = .joined, status: MemberStatus = .alive) -> StreamEvent {
        let body = StreamEventBody(
            t: id, content: MembershipChangeEvent(
                member: name, change: change, status: status, address: address, role: "web", tags: [:], observer: "ha", cause: "test"))
        return StreamEvent(id: id, kind: "membership", data: try! body.json())
    }

    func journal() throws -> [ConfigApply] {
        guard let text = try? String(contentsOfFile: directory + "/events.jsonl", encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").compactMap { try JournalEntry.decode(line: String($0)).config }
    }

    @Test func aHostileMemberIsRefusedAndRecordedOnceWhileTheOthersAreApplied() async throws {
        let (controller, renderer) = try controller()
        controller.handle(member(1, "s1", "10.0.0.10"))
        controller.handle(member(2, "s1\n    server evil 203.0.113.9:80", "10.0.0.12"))
        await controller.apply(renderer: renderer, trigger: ["test"])
        await controller.apply(renderer: renderer, trigger: ["test again"])
        let live = try String(contentsOfFile: directory + "/haproxy.cfg", encoding: .utf8)
        #expect(ConfigRenderer.serverLines(live) == ["s1": "10.0.0.10:80 check inter 1s fall 2 rise 1"])
        #expect(!live.contains("evil"))
        let history = try journal()
        #expect(history.count == 1)
        #expect(history[0].outcome == .appliedWithRejections)
        #expect(history[0].message?.contains("refused") == true)
    }

    @Test func aConfigurationHaproxyRefusesNeverReplacesTheLastGoodOne() async throws {
        let (good, goodRenderer) = try controller()
        good.handle(member(1, "s1", "10.0.0.10"))
        await good.apply(renderer: goodRenderer, trigger: ["first"])
        let lastGood = try String(contentsOfFile: directory + "/haproxy.cfg", encoding: .utf8)
        // A template whose output HAProxy refuses (a directive that does not exist).
        let broken = try String(contentsOfFile: LoadBalancerTests.template, encoding: .utf8)
            .replacingOccurrences(of: "    balance roundrobin", with: "    balance roundrobin\n    no-such-directive here")
        let (controller, renderer) = try controller(template: broken)
        controller.handle(member(2, "s2", "10.0.0.11"))
        await controller.apply(renderer: renderer, trigger: ["s2 joined"])
        #expect(try String(contentsOfFile: directory + "/haproxy.cfg", encoding: .utf8) == lastGood)
        let history = try journal()
        #expect(history.last?.outcome == .invalid)
        #expect(history.last?.message?.contains("no-such-directive") == true, "\(history.last?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: directory + "/haproxy.cfg.candidate"))
    }

    /// 20 membership changes within 2 seconds: the debounce (quiet 300 ms, at most 1 s) makes
    /// at most 3 applies of them, and the last one lists the final set.
    @Test func aBurstOfChangesMakesAFewApplies() async throws {
        let (controller, renderer) = try controller()
        let loop = Task { await controller.applyLoop(renderer: renderer) }
        for index in 0..<20 {
            controller.handle(member(Int64(index + 1), "s\(index % 5)", "10.0.0.\(10 + index % 5)", status: index < 15 ? .alive : .failed))
            try await Task.sleep(for: .milliseconds(100))
        }
        // Wait (bounded) for the last apply, however slow this machine is right now.
        var history = try journal()
        for _ in 0..<200 where history.flatMap(\.trigger).count < 20 {
            try await Task.sleep(for: .milliseconds(100))
            history = try journal()
        }
        loop.cancel()
        #expect((1...3).contains(history.count), "\(history.count) applies: \(history.map(\.trigger))")
        #expect(history.last?.servers == [])
        #expect(history.flatMap(\.trigger).count == 20)
    }

    /// The collector unreachable from the start: the controller follows the local Serf.
    @Test func withTheCollectorDownTheControllerFollowsLocalSerf() async throws {
        let port = 17000 + Int(getpid() % 900)
        let serf = Process()
        serf.executableURL = URL(fileURLWithPath: "/usr/bin/serf")
        serf.arguments = ["agent", "-node", "s9", "-bind", "127.0.0.1:\(port + 1000)", "-rpc-addr", "127.0.0.1:\(port)", "-tag", "role=web"]
        serf.standardOutput = FileHandle.nullDevice
        serf.standardError = FileHandle.nullDevice
        try serf.run()
        defer {
            serf.terminate()
            serf.waitUntilExit()
        }
        var config = AgentConfig.LoadBalancerConfig()
        config.template = LoadBalancerTests.template
        config.config = directory + "/haproxy.cfg"
        config.masterSocket = directory + "/master.sock"
        config.render.runtimeSocket = directory + "/admin.sock"
        config.statsIntervalMilliseconds = 0
        config.quietMilliseconds = 100
        // Serf runs on loopback here, so the member's address is 127.0.0.1.
        config.allowLoopbackBackends = true
        let controller = LBController(
            config: config, node: "ha", journal: EventJournal(path: directory + "/events.jsonl"),
            streams: [EventStreamClient(baseURL: "http://127.0.0.1:1", token: "t", client: .shared)], serfRPC: "127.0.0.1:\(port)",
            stateDirectory: directory, logger: .init(label: "test"))
        let running = Task { await controller.run() }
        defer { running.cancel() }
        var history: [ConfigApply] = []
        for _ in 0..<100 {
            history = try journal()
            if history.contains(where: { $0.servers == ["s9"] }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let followed = history.first { $0.servers == ["s9"] }
        #expect(followed != nil, "\(history.map { ($0.servers, $0.trigger, $0.outcome) })")
        #expect(followed?.trigger.contains { $0.contains("serf fallback") } == true)
        #expect(ConfigRenderer.serverLines(try String(contentsOfFile: config.config, encoding: .utf8))["s9"] != nil)
    }
}

/// The LB controller with several collectors: their streams are one (same ids), so when one
/// cannot be reached the controller reads on from the next with its cursor.
@Suite struct StreamFailoverTests {
    /// A loopback server that answers one `GET /v1/events` with `events` (Server-Sent Events)
    /// and then closes; or, with `events` nil, a bound port that refuses connections.
    final class StreamServer: @unchecked Sendable {
        let port: Int
        private let descriptor: Int32

        init(events: String?) throws {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.descriptor = descriptor
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
            }
            guard bound, events == nil || listen(descriptor, 4) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
            port = Int(UInt16(bigEndian: address.sin_port))
            guard let events else { return }
            let listener = descriptor
            Thread.detachNewThread {
                while true {
                    let accepted = accept(listener, nil, nil)
                    guard accepted >= 0 else { return }
                    var request: [UInt8] = []
                    var byte: UInt8 = 0
                    while read(accepted, &byte, 1) == 1 {
                        request.append(byte)
                        if request.suffix(4) == Array("\r\n\r\n".utf8) { break }
                    }
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + events
                    _ = answer.withCString { write(accepted, $0, strlen($0)) }
                    close(accepted)
                }
            }
        }

        deinit {
            shutdown(descriptor, Int32(SHUT_RDWR))
            close(descriptor)
        }
    }

    @Test func aCollectorThatCannotBeReachedIsPassedOverWithTheSameCursor() async throws {
        let body = try StreamEventBody(
            t: 1_000, content: MembershipChangeEvent(
                member: "s1", change: .joined, status: .alive, address: "10.0.0.11", role: "web", tags: [:], observer: "ha",
                cause: "member-join", previous: nil)
        ).json()
        let down = try StreamServer(events: nil)
        let up = try StreamServer(events: "id: 7\nevent: membership\ndata: \(body)\n\n")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-lb-failover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let controller = LBController(
            config: AgentConfig.LoadBalancerConfig(), node: "ha", journal: EventJournal(path: directory + "/events.jsonl"),
            streams: [down, up].map { EventStreamClient(baseURL: "http://127.0.0.1:\($0.port)", token: "t", client: .shared) },
            serfRPC: nil, stateDirectory: directory, logger: .init(label: "test"))
        let following = Task { await controller.followStream() }
        defer { following.cancel() }
        let deadline = ContinuousClock.now + .seconds(30)
        while controller.followed.cursor < 7, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(controller.followed.cursor == 7)
        #expect(controller.followed.members["s1"]?.address == "10.0.0.11")
    }
}

import Foundation
import MusterWire
import Testing

@testable import MusterAgent

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

    func web(_ address: String, status: String = "alive", role: String = "web") -> KnownMember {
        KnownMember(address: address, role: role, status: status)
    }

    @Test func onlyAliveMembersOfTheRoleWithSafeNamesAndAddressesBecomeServers() {
        let members: [String: KnownMember] = [
            "s1": web("10.0.0.10"), "s2": web("10.0.0.11", status: "failed"), "ha": web("10.0.0.3", role: "ha"),
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

    @Test func aHostileNameNeverChangesTheRenderedStructure() throws {
        let members: [String: KnownMember] = ["s1": web("10.0.0.10"), "s1\n    server evil 203.0.113.9:80": web("10.0.0.12")]
        let text = try renderer().render(servers: MemberValidation.desiredServers(members: members, role: "web").servers, version: 1, generatedAt: 0)
        #expect(!text.contains("evil"))
        #expect(LBController.serverLines(text) == ["s1": "10.0.0.10:80 check inter 1s fall 2 rise 1"])
    }

    /// The real haproxy accepts what the template renders, with and without servers.
    @Test func theRenderedConfigurationPassesHaproxyCheck() async throws {
        let control = HAProxyControl(executable: "haproxy", masterSocket: "/nonexistent", runtimeSocket: "/nonexistent")
        for servers in [[], [BackendServer(name: "s1", address: "10.0.0.10"), BackendServer(name: "s2", address: "10.0.0.11")]] {
            let text = try renderer { $0.logTarget = "127.0.0.1:514" }.render(servers: servers, version: 3, generatedAt: 0)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString).cfg").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            defer { unlink(path) }
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

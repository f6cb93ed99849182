import MusterWire
import Testing

@testable import MusterAgent

/// HAProxy's httplog lines into fields, on lines the real HAProxy 2.6 printed here.
@Suite struct HAProxyHTTPLogTests {
    @Test func aRawLineFromHAProxysStdout() throws {
        let line = #"10.79.0.1:49736 [22/Nov/2026:01:42:05.078] http-in nodes/s1 0/0/1/3/4 200 187 - - ---- 2/2/0/0/0 0/0 "GET /api/items?x=1 HTTP/1.1""#
        let log = try #require(HAProxyHTTPLog(line))
        #expect(log.client == "10.79.0.1" && log.clientPort == 49736)
        #expect(log.frontend == "http-in" && log.backend == "nodes" && log.server == "s1")
        #expect(log.timers == [0, 0, 1, 3, 4])
        #expect(log.status == 200 && log.bytes == 187 && log.termination == "----" && log.retries == 0)
        #expect(log.method == "GET" && log.path == "/api/items?x=1")
        #expect(log.fields["status"] == .int(200))
        #expect(log.fields["ta"] == .int(4))
        #expect(log.fields["server"] == .string("s1"))
    }

    @Test func aFailedConnectionThroughSyslogWithRedispatchAndCapturedHeaders() throws {
        let line = #"<134>Nov 22 01:42:05 haproxy[123]: ::1:40000 [22/Nov/2026:01:42:05.078] f~ b/<NOSRV> 0/0/-1/-1/3006 503 217 - - SC-- 1/1/0/0/+3 0/0 {host.example} "POST /login HTTP/1.1""#
        let log = try #require(HAProxyHTTPLog(line))
        #expect(log.client == "::1" && log.clientPort == 40000)
        #expect(log.frontend == "f" && log.server == "<NOSRV>")
        #expect(log.timers == [0, 0, -1, -1, 3006])
        #expect(log.status == 503 && log.termination == "SC--" && log.retries == 3)
        #expect(log.method == "POST" && log.path == "/login")
    }

    @Test(arguments: [
        "webapp: started, listening on :80",
        "[NOTICE]   (29010) : New worker (29021) forked",
        "10.0.0.1:1 [date] f b/s x/y 200 1 - - ---- 1/1/1/1/1 0/0 \"GET / HTTP/1.1\"",
        "10.0.0.1:1 [date] f nobackend 0/0/0/0/0 200 1 - - ---- 1/1/1/1/1 0/0 \"GET / HTTP/1.1\"",
        "",
    ])
    func otherLinesHaveNoFields(line: String) {
        #expect(HAProxyHTTPLog(line) == nil)
        #expect(LineParser.haproxyHTTPLog.fields(line).isEmpty)
    }
}

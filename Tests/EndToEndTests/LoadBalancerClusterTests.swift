import Foundation
import Testing

/// HAProxy following the cluster: real HAProxy 2.6, Serf, collector and agents (the ha node's
/// agent runs the LB controller) in namespaces from `images/cluster`, requests through :80.
@Suite(.serialized) final class LoadBalancerClusterTests {
    /// Which web nodes answer `count` requests through HAProxy.
    func hosts(_ cluster: Cluster, count: Int = 12) -> Set<String> {
        var seen = Set<String>()
        for _ in 0..<count {
            guard let url = URL(string: "http://\(cluster.subnet).3/"), let data = try? Data(contentsOf: url),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let host = object["host"] as? String
            else { continue }
            seen.insert(host)
        }
        return seen
    }

    /// The servers HAProxy's Runtime API lists in backend `nodes`.
    func runtimeServers(_ cluster: Cluster) throws -> Set<String> {
        let socket = cluster.nodeDirectory("ha") + "/haproxy/admin.sock"
        let answer = try cluster.exec("ha", "python3", "-c", """
            import socket
            s = socket.socket(socket.AF_UNIX); s.connect("\(socket)"); s.sendall(b"show servers state nodes\\n"); s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                d = s.recv(65536)
                if not d: break
                data += d
            print(data.decode())
            """)
        return Set(answer.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            let words = line.split(separator: " ")
            return words.count > 3 ? String(words[3]) : nil
        })
    }

    func expectRouting(_ cluster: Cluster, to expected: Set<String>, _ step: String) throws {
        var last: (Set<String>, Set<String>) = ([], [])
        let reached = waitUntil(timeout: 30, interval: 0.3) {
            last = ((try? runtimeServers(cluster)) ?? [], hosts(cluster))
            return last.0 == expected && last.1 == expected
        }
        func tail(_ service: String) -> String {
            let log = (try? String(contentsOfFile: cluster.nodeDirectory("ha") + "/log/\(service)/current", encoding: .utf8)) ?? ""
            return log.split(separator: "\n").suffix(12).joined(separator: "\n")
        }
        try #require(
            reached,
            """
            \(step): runtime API lists \(last.0), requests reached \(last.1), expected \(expected)
            ha muster-agent:
            \(tail("muster-agent"))
            ha haproxy:
            \(tail("haproxy"))
            """)
    }

    @Test func haproxyRoutesToExactlyTheAliveMembersWithNoFailedRequest() throws {
        let cluster = try Cluster(tag: "lb\(getpid() % 10000)", subnet: "10.80.\(getpid() % 200 + 20)")
        try cluster.run("up")
        // Traffic from the root namespace through the bridge, one request after another,
        // until the stop file appears; the counts land in the result file.
        let stopFile = cluster.state + "-load.stop"
        let resultFile = cluster.state + "-load.json"
        let script = """
            import json, os, time, urllib.request, urllib.error
            ok, failed, errors = 0, 0, []
            while not os.path.exists("\(stopFile)"):
                try:
                    urllib.request.urlopen("http://\(cluster.subnet).3/", timeout=5).read(); ok += 1
                except Exception as error:
                    failed += 1; errors.append(str(error)[:80])
            json.dump({"ok": ok, "failed": failed, "errors": errors[:5]}, open("\(resultFile)", "w"))
            """
        try cluster.run("add", "s1")
        try cluster.run("add", "s2")
        try expectRouting(cluster, to: ["s1", "s2"], "s1 and s2 joined")
        let load = try RunningProcess("/usr/bin/python3", ["-c", script], logPath: cluster.state + "-load.log")
        try cluster.run("add", "s3")
        try expectRouting(cluster, to: ["s1", "s2", "s3"], "s3 joined")
        try cluster.run("stop", "s1")
        try expectRouting(cluster, to: ["s2", "s3"], "s1 stopped")
        try cluster.run("kill", "s2")
        try expectRouting(cluster, to: ["s3"], "s2 killed")

        // A hostile member, reported by ha's own Serf handler: refused, recorded, and the
        // configuration keeps serving exactly s3.
        let hostile = "s1 server evil 203.0.113.9:80 #\t\(cluster.subnet).99\tweb\trole=web\n"
        try cluster.exec(
            "ha", "sh", "-c",
            "printf '\(hostile)' | SERF_EVENT=member-join SERF_SELF_NAME=ha muster-agent serf-event --journal \(cluster.journal("ha"))")
        let refused = waitUntil(timeout: 20, interval: 0.3) {
            let configs = (try? Cluster.execute(
                try Binaries.path("logq"), ["configs", "--format", "json", "--db", cluster.database], environment: [:])) ?? ""
            return configs.contains("refused")
        }
        #expect(refused, "the hostile member's refusal was not recorded")
        try expectRouting(cluster, to: ["s3"], "hostile member refused")
        #expect(!(try String(contentsOfFile: cluster.nodeDirectory("ha") + "/haproxy/haproxy.cfg", encoding: .utf8)).contains("evil"))

        // The collector stopped: a new node still reaches HAProxy through the local Serf view.
        try cluster.exec("collector", "s6-svc", "-d", cluster.service("collector", "muster-collector"))
        try cluster.run("add", "s4")
        try expectRouting(cluster, to: ["s3", "s4"], "s4 joined while the collector was down")
        try cluster.exec("collector", "s6-svc", "-u", cluster.service("collector", "muster-collector"))
        FileManager.default.createFile(atPath: stopFile, contents: nil)
        #expect(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: resultFile) }, "load generator: \(load.log())")
        struct Load: Decodable { var ok: Int; var failed: Int; var errors: [String] }
        let result = try JSONDecoder().decode(Load.self, from: Data(contentsOf: URL(fileURLWithPath: resultFile)))
        #expect(result.ok > 100)
        #expect(result.failed == 0, "\(result.failed) of \(result.ok + result.failed) requests failed: \(result.errors)")
        defer {
            unlink(stopFile)
            unlink(resultFile)
            unlink(cluster.state + "-load.log")
        }

        // The history: each change is a version, applied through the Runtime API.
        let configs = try Cluster.execute(
            try Binaries.path("logq"), ["configs", "--format", "csv", "--db", cluster.database], environment: [:])
        let rows = configs.split(separator: "\n").dropFirst().map { String($0) }
        // s3's join may come before the controller has confirmed which file HAProxy runs (it
        // started on the controller's first file), and is then a reload; later ones are not.
        #expect(rows.contains { ($0.contains("runtime,applied") || $0.contains("reload,applied")) && $0.contains("s3 joined") })
        #expect(rows.contains { $0.contains("runtime,applied") && $0.contains("s1 left") })
        #expect(rows.contains { $0.contains("runtime,applied") && $0.contains("s2 failed") })
        // What the controller did without the collector reached the history once it was back.
        let fallbackRecorded = waitUntil(timeout: 30, interval: 0.5) {
            let configs = (try? Cluster.execute(
                try Binaries.path("logq"), ["configs", "--format", "csv", "--db", cluster.database], environment: [:])) ?? ""
            return configs.contains("serf fallback")
        }
        #expect(fallbackRecorded, "the fallback apply never reached logq configs")
        try cluster.run("down")
    }
}

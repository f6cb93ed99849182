import Foundation
import MusterWire
import Testing

/// Real Serf agents in network namespaces made by `images/cluster`, their handlers and agents
/// shipping to the real collector, and `logq` answering from what was stored.
@Suite(.serialized) final class MembershipClusterTests {
    struct MemberRow: Decodable {
        var name: String
        var address: String
        var status: String
        var tags: [String: String]
    }

    func logq(_ cluster: Cluster, _ arguments: String...) throws -> String {
        try Cluster.execute(try Binaries.path("logq"), arguments + ["--db", cluster.database], environment: [:])
    }

    func members(_ cluster: Cluster, at time: String? = nil) throws -> [String: MemberRow] {
        guard FileManager.default.fileExists(atPath: cluster.database) else { return [:] }
        var arguments = ["members", "--format", "json", "--db", cluster.database]
        if let time { arguments += ["--at", time] }
        let text = try Cluster.execute(try Binaries.path("logq"), arguments, environment: [:])
        var rows: [String: MemberRow] = [:]
        for line in text.split(separator: "\n") {
            let row = try JSONDecoder().decode(MemberRow.self, from: Data(line.utf8))
            rows[row.name] = row
        }
        return rows
    }

    func statuses(_ cluster: Cluster, at time: String? = nil) throws -> [String: String] {
        try members(cluster, at: time).mapValues(\.status)
    }

    /// Waits for the collector's view to reach `expected`; returns the instant it was seen.
    func waitFor(_ expected: [String: String], in cluster: Cluster, timeout: TimeInterval, _ step: String) throws -> String {
        var last: [String: String] = [:]
        let reached = try waitUntil(timeout: timeout, interval: 0.25) {
            last = try statuses(cluster)
            return last == expected
        }
        try #require(reached, "\(step): expected \(expected), collector has \(last)")
        return Timestamp.format(Timestamp.now())
    }

    /// Asks s6 not to restart the node's Serf, then SIGKILLs it.
    func killSerf(_ cluster: Cluster, on node: String) throws {
        let directory = cluster.service(node, "serf")
        try cluster.exec(node, "s6-svc", "-O", directory)
        let pid = try cluster.exec(node, "s6-svstat", "-o", "pid", directory).trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(Int32(pid).map { $0 > 0 } == true, "serf on \(node) is not running (s6-svstat: \(pid))")
        kill(Int32(pid)!, SIGKILL)
    }

    @Test func joinsLeavesFailuresAndReturnsAreAnsweredAtEveryInstant() throws {
        let cluster = try Cluster(tag: "mbr\(getpid() % 10000)", subnet: "10.79.\(getpid() % 200 + 20)")
        try cluster.run("up")
        for node in ["s1", "s2", "s3"] { try cluster.run("add", node) }
        let allAlive = ["ha": "alive", "s1": "alive", "s2": "alive", "s3": "alive"]
        let joined = try waitFor(allAlive, in: cluster, timeout: 40, "join")

        // s1 leaves gracefully: `serf leave` (s6 told not to start it again).
        try cluster.exec("s1", "s6-svc", "-O", cluster.service("s1", "serf"))
        try cluster.exec("s1", "serf", "leave")
        let afterLeave = try waitFor(allAlive.merging(["s1": "left"]) { $1 }, in: cluster, timeout: 30, "leave of s1")

        // s2's Serf is killed: the others notice a failure.
        try killSerf(cluster, on: "s2")
        let afterKill = try waitFor(allAlive.merging(["s1": "left", "s2": "failed"]) { $1 }, in: cluster, timeout: 40, "kill of s2")

        // s2 comes back under the same name and address.
        try cluster.exec("s2", "s6-svc", "-u", cluster.service("s2", "serf"))
        let afterReturn = try waitFor(allAlive.merging(["s1": "left"]) { $1 }, in: cluster, timeout: 40, "return of s2")

        // Time travel: each instant still answers what was true then.
        #expect(try statuses(cluster, at: joined) == allAlive)
        #expect(try statuses(cluster, at: afterLeave) == allAlive.merging(["s1": "left"]) { $1 })
        #expect(try statuses(cluster, at: afterKill) == allAlive.merging(["s1": "left", "s2": "failed"]) { $1 })
        #expect(try statuses(cluster, at: afterReturn) == allAlive.merging(["s1": "left"]) { $1 })
        #expect(try members(cluster)["s2"]?.address == "\(cluster.subnet).11")

        // The timeline has each member's changes in order, each with an observer.
        let timeline = try logq(cluster, "timeline", "--format", "csv")
        func changes(of member: String) -> [String] {
            timeline.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                .filter { $0[1] == member }.map { $0[2] }
        }
        // An observer whose failure detector beats the leave intent (a loaded machine delays
        // gossip by seconds) reports s1 failed around the others' reports that it left, before
        // or between them: all are what observers saw, and the ledger keeps each change (seen in
        // clean-clone CI runs: joined, failed, left; joined, left, failed, left). It ends left.
        let s1 = changes(of: "s1")
        #expect(s1.first == "joined" && s1.last == "left" && s1.dropFirst().allSatisfy { ["left", "failed"].contains($0) }, "\(timeline)")
        #expect(changes(of: "s2") == ["joined", "failed", "joined"], "\(timeline)")
        #expect(!timeline.split(separator: "\n").dropFirst().contains { $0.split(separator: ",", omittingEmptySubsequences: false)[6].isEmpty })

        // Inventory: every node says what it runs (`logq nodes`, `logq inspect`).
        let nodes = try logq(cluster, "nodes")
        #expect(nodes.contains("collector"))
        let inspect = try logq(cluster, "inspect", "s3")
        for service in ["demo-webapp", "serf", "muster-agent"] { #expect(inspect.contains(#""name":"\#(service)""#)) }

        // A handler call lost on purpose: every journal is made immutable (even root cannot
        // append), s3's tags change, every node's handler fails to record the member-update.
        // Reconciliation, once the journals are writable again, repairs the view.
        let observers = ["ha", "s2", "s3"]
        for node in observers { try Cluster.execute("/usr/bin/chattr", ["+i", cluster.journal(node)], environment: [:]) }
        defer { for node in observers { _ = try? Cluster.execute("/usr/bin/chattr", ["-i", cluster.journal(node)], environment: [:]) } }
        try cluster.exec("s3", "serf", "tags", "-set", "version=2")
        // Every observer's handler must have run (and failed) before the journals are released.
        let handlerFailed = waitUntil(timeout: 15) {
            observers.allSatisfy { node in
                let log = (try? String(contentsOfFile: cluster.nodeDirectory(node) + "/log/serf/current", encoding: .utf8)) ?? ""
                return log.contains("cannot append to event journal") || log.contains("Error invoking script")
            }
        }
        try #require(handlerFailed, "not every observer's handler failed while the journals were immutable")
        #expect(try members(cluster)["s3"]?.tags["version"] == nil)
        for node in observers { try Cluster.execute("/usr/bin/chattr", ["-i", cluster.journal(node)], environment: [:]) }
        let released = Date()
        let repaired = waitUntil(timeout: 15, interval: 0.2) { (try? self.members(cluster)["s3"]?.tags["version"]) == "2" }
        try #require(repaired, "reconciliation did not record s3's new tags")
        let lastChange = try logq(cluster, "timeline", "--member", "s3", "--format", "csv").split(separator: "\n").last ?? ""
        #expect(lastChange.contains(",updated,") && lastChange.contains(",snapshot,"), "\(lastChange)")
        // Within the reconcile interval (2 s) plus shipping (0.2 s batches).
        #expect(Date().timeIntervalSince(released) < 6)

        try cluster.run("down")
        #expect(!(try Cluster.execute("/usr/sbin/ip", ["netns", "list"], environment: [:]).contains("\(cluster.name)-")))
    }
}

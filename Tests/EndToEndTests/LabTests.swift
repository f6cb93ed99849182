import Foundation
import MusterWire
import Testing

/// The README's demo command in its short mode (`images/lab --short`, which `scripts/demo`
/// runs): the whole lab on a real cluster, then a check of the evidence it exported.
@Suite(.serialized) final class LabTests {
    struct MarkRow: Decodable {
        var name: String
        var time: String
    }

    struct ChangeRow: Decodable {
        var time: String
        var member: String
        var change: String
        var status: String
        var role: String
    }

    struct Requests: Decodable {
        struct Failure: Decodable {
            var t: Int64
            var error: String
        }
        var requests: Int
        var failed: Int
        var hosts: [String: Int]
        var failures: [Failure]
    }

    func logq(_ cluster: Cluster, _ arguments: String...) throws -> String {
        try Cluster.execute(try Binaries.path("logq"), arguments + ["--db", cluster.database], environment: [:])
    }

    func rows<Row: Decodable>(_ text: String, as type: Row.Type) throws -> [Row] {
        try text.split(separator: "\n").map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
    }

    func time(_ text: String) throws -> Int64 {
        try #require(Timestamp.parseRFC3339(text), "logq printed a time that does not parse back: \(text)")
    }

    func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// Server names in a rendered haproxy.cfg's `server` lines.
    func servers(in config: String) -> [String] {
        config.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            return words.first == "server" && words.count > 1 ? String(words[1]) : nil
        }.sorted()
    }

    @Test func theLabRunsEndToEndAndItsEvidenceIsComplete() throws {
        let cluster = try Cluster(tag: "lab\(getpid() % 10000)", subnet: "10.81.\(getpid() % 200 + 20)")
        try runTheLabAndCheckItsEvidence(on: cluster, httpPort: Self.httpPort(base: 10_000))
    }

    /// The same scenario and the same checks with one container per node: the four images
    /// built by `images/build` (from this build's binaries: a release build would take the
    /// test run's whole budget; under a tag of the test's own, removed at the end, so that
    /// the machine's `latest` images stay as they were), started with images/compose.yaml's
    /// settings, stopped with the engine's `stop` (Serf must leave) and killed with its
    /// `kill` (Serf must fail).
    @Test func theLabRunsInContainersFromTheBuiltImages() throws {
        let cluster = try Cluster(tag: "ctr\(getpid() % 10000)", subnet: "10.82.\(getpid() % 200 + 20)", kind: .containers)
        let tag = "e2e-\(getpid())"
        let (podman, conf) = try Cluster.podman()
        let images = ["base", "collector", "ha", "webapp"].map { "localhost/muster/\($0):\(tag)" }
        defer { _ = try? Cluster.execute(podman, ["rmi", "--force"] + images, environment: conf) }
        let build = try Cluster.execute(
            Cluster.repository + "/images/build", ["--binaries", Binaries.directory.path, "--tag", tag], environment: [:])
        for image in images {
            #expect(throws: Never.self, "images/build made no \(image):\n\(build)") {
                try Cluster.execute(podman, ["image", "exists", image], environment: conf)
            }
        }
        try runTheLabAndCheckItsEvidence(
            on: cluster, httpPort: Self.httpPort(base: 14_000), containers: true, environment: ["MUSTER_IMAGE_TAG": tag])
        #expect(try Cluster.execute(podman, ["ps", "-a", "-q", "--filter", "label=muster.cluster=\(cluster.name)"], environment: conf)
            .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "images/lab --down left containers behind")
    }

    /// HAProxy's two host ports for a lab of this test process: from `base` by the pid, below
    /// the ephemeral range (32768 and up), where an outgoing connection's local port could
    /// hold the same number (seen: podman failing to bind 127.0.0.1:56634).
    static func httpPort(base: Int) -> Int {
        base + 2 * Int(getpid() % 2_000)
    }

    /// Runs `images/lab --short --down` on `cluster` and checks what it exported.
    func runTheLabAndCheckItsEvidence(
        on cluster: Cluster, httpPort: Int, containers: Bool = false, environment extra: [String: String] = [:]
    ) throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("lab-\(cluster.name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: out)
        defer { try? FileManager.default.removeItem(atPath: out) }
        var environment = cluster.environment.merging(extra) { $1 }
        environment["MUSTER_CLUSTER_PORTS"] = "\(httpPort):80 \(httpPort + 1):1936"
        let transcript = try Cluster.execute(
            Cluster.repository + "/images/lab", ["--short", "--down", "--out", out] + (containers ? ["--containers"] : []),
            environment: environment)

        // Every task has its folder, in the order the lab marked them.
        let marks = try rows(try logq(cluster, "marks", "--format", "json"), as: MarkRow.self)
        let tasks = (0...6).map { "task-\($0)" }
        #expect(marks.map(\.name) == tasks + ["lab-end"], "\(transcript)")
        let index = read(out + "/index.log") ?? ""
        for task in tasks {
            #expect(index.contains("\n\(task) "), "index.log lists \(task)")
            for file in ["mark.json", "membership.log", "events.log", "configs.log", "nodes.log"] {
                #expect(FileManager.default.fileExists(atPath: "\(out)/\(task)/\(file)"), "\(task)/\(file)")
            }
        }

        // Each node that was a member during a task has a non-empty log in that task's folder:
        // the members alive at the task's start, and those that joined during it.
        let changes = try rows(try logq(cluster, "timeline", "--format", "json"), as: ChangeRow.self)
        let changeTimes = try changes.map { try time($0.time) }
        // A stopped node left (s6 stops Serf with SIGINT: a graceful leave, whether
        // `images/cluster stop` or `podman stop` asked); the killed one failed.
        #expect(changes.contains { $0.member == "s3" && $0.change == "left" }, "s3's stop in task-5 was not a leave: \(changes)")
        #expect(changes.last { $0.member == "s1" }?.change == "left", "s1's stop in task-6 was not a leave: \(changes)")
        #expect(changes.last { $0.member == "s2" }?.change == "failed", "s2's kill in task-6 was not a failure: \(changes)")
        let times = try marks.map { try time($0.time) }
        for (number, task) in tasks.enumerated() {
            let (start, end) = (times[number], times[number + 1])
            var alive = Set<String>()
            for (change, t) in zip(changes, changeTimes) where t < start {
                if change.status == "alive" { alive.insert(change.member) } else { alive.remove(change.member) }
            }
            for (change, t) in zip(changes, changeTimes) where change.status == "alive" && t >= start && t < end {
                alive.insert(change.member)
            }
            #expect(!alive.isEmpty, "\(task): no member")
            for node in alive.sorted() {
                let log = read("\(out)/\(task)/\(node).log") ?? ""
                #expect(!log.isEmpty, "\(task): \(node) was a member but \(task)/\(node).log is missing or empty")
            }
            // A node that left or was killed cannot report again: nodes.log shows its services
            // as down or unknown beside its last report, never as if they still ran.
            for line in (read("\(out)/\(task)/nodes.log") ?? "").split(separator: "\n") {
                let columns = line.split(separator: " ", omittingEmptySubsequences: true)
                guard columns.count > 4, ["left", "failed"].contains(columns[3]), line.contains(" up (") else { continue }
                #expect(line.contains("last report"), "\(task)/nodes.log: \(line)")
            }
            // Each member's inventory at the end of the task.
            for node in alive.sorted() {
                #expect(FileManager.default.fileExists(atPath: "\(out)/\(task)/inspect/\(node).json"), "\(task)/inspect/\(node).json")
            }
        }

        // The configuration versions follow the membership: at least one per task with web
        // changes, never more than changes (a debounce may merge two), and the last version
        // of each task serves exactly the web nodes alive at its end.
        let expectedServers = ["task-4": ["s1", "s2", "s3"], "task-5": ["s1", "s2"], "task-6": ["s3", "s4"]]
        for (number, task) in tasks.enumerated() where expectedServers[task] != nil {
            let (start, end) = (times[number], times[number + 1])
            let webChanges = zip(changes, changeTimes).filter { change, t in change.role == "web" && t >= start && t < end }.count
            let files = (try FileManager.default.contentsOfDirectory(atPath: "\(out)/\(task)"))
                .filter { $0.hasSuffix("_haproxy.cfg") }
                .sorted { Int($0.prefix { $0.isNumber })! < Int($1.prefix { $0.isNumber })! }
            #expect(files.count >= 1 && files.count <= webChanges, "\(task): \(files.count) configs for \(webChanges) changes")
            if let last = files.last, let text = read("\(out)/\(task)/\(last)") {
                // On a failure, every configuration of the task and its membership changes, so
                // a run that went otherwise (a node flapping under load) says how.
                let history = files.map { file in "\(file): \(servers(in: read("\(out)/\(task)/\(file)") ?? ""))" }
                let taskChanges = zip(changes, changeTimes).filter { _, t in t >= start && t < end }
                    .map { change, _ in "\(change.member) \(change.change) (\(change.time))" }
                #expect(
                    servers(in: text) == expectedServers[task],
                    "\(task)/\(last); configurations: \(history); changes: \(taskChanges)")
            }
        }

        // Requests flowed from task-0 to the end of task-6 and none failed, except possibly
        // while s2 was killed and not yet noticed (the lab's one abrupt failure).
        let requests = try JSONDecoder().decode(Requests.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/requests.json")))
        #expect(requests.requests > 500, "only \(requests.requests) requests")
        let failedAt = zip(changes, changeTimes).first { change, _ in change.member == "s2" && change.change == "failed" }?.1
        let outsideKill = requests.failures.filter { failure in
            guard let failedAt else { return true }
            return failure.t < failedAt - 15 * Timestamp.nanosPerSecond || failure.t > failedAt + 5 * Timestamp.nanosPerSecond
        }
        #expect(outsideKill.isEmpty, "requests failed during joins or graceful leaves: \(outsideKill.prefix(5).map(\.error))")
        #expect(Set(requests.hosts.keys).isSuperset(of: ["s1", "s2", "s3", "s4"]), "answered by \(requests.hosts)")

        // HAProxy's own request log arrived as structured fields (parse: haproxy-httplog).
        let statusMix = try logq(cluster, "run", "http-status", "--format", "csv")
        #expect(statusMix.contains("nodes"), "http-status found no parsed HAProxy lines:\n\(statusMix)")
        let parsed = try logq(cluster, "sql", "SELECT count(*) FROM logs WHERE json_extract(fields, '$.server') IN ('s3', 's4')")
        #expect((Int(parsed.split(separator: "\n").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0) > 0, "\(parsed)")

        // The same history exported twice gives identical files (the cluster is down now, so
        // nothing arrives between the two; the lab exported while its nodes still ran).
        let first = out + "-first", second = out + "-second"
        defer { for folder in [first, second] { try? FileManager.default.removeItem(atPath: folder) } }
        _ = try logq(cluster, "export", "--out", first)
        _ = try logq(cluster, "export", "--out", second)
        let files = try FileManager.default.subpathsOfDirectory(atPath: first).sorted()
        #expect(files.contains("task-6/4_haproxy.cfg") || files.contains("task-6/3_haproxy.cfg"))
        #expect(try FileManager.default.subpathsOfDirectory(atPath: second).sorted() == files)
        for file in files {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: "\(first)/\(file)", isDirectory: &isDirectory)
            if isDirectory.boolValue { continue }
            #expect(FileManager.default.contentsEqual(atPath: "\(first)/\(file)", andPath: "\(second)/\(file)"), "\(file) differs")
        }
    }
}

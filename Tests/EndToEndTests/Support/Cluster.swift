import Foundation
import MusterTestSupport
import Testing

/// `images/cluster` (or, for `.containers`, `images/containers`) driven from a test: the same
/// tool users run, with a cluster name, subnet and state directory of the test's own, torn
/// down (`down`) when the test ends.
final class Cluster {
    /// What a node is: a network namespace, or a container from the images `images/build` makes.
    enum Kind {
        case namespaces, containers

        var tool: String { self == .namespaces ? "images/cluster" : "images/containers" }
    }

    let name: String
    let subnet: String
    let state: String
    let kind: Kind
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// Fails the test with a clear message when this machine cannot run namespaces.
    static func requireNamespaces() throws {
        try #require(getuid() == 0, "the cluster tests need root (ip netns, veth, bridge); run the tests as root")
        for tool in ["ip", "serf", "s6-svscan", "s6-svc", "s6-svstat", "chattr"] {
            let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
            try #require(found, "'\(tool)' is missing; run scripts/install-deps")
        }
    }

    /// The podman the container tests drive, and the settings images/build and
    /// images/containers give it.
    static func podman() throws -> (path: String, environment: [String: String]) {
        let found = ["/usr/bin", "/usr/local/bin"].map { "\($0)/podman" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        let path = try #require(found, "podman is missing; run scripts/install-deps")
        return (path, ["CONTAINERS_CONF": ProcessInfo.processInfo.environment["CONTAINERS_CONF"] ?? repository + "/images/containers.conf"])
    }

    /// Fails the test with a clear message when this machine cannot run podman containers.
    static func requireContainers() throws {
        try #require(getuid() == 0, "the container tests need root (podman networks with fixed addresses); run the tests as root")
        let (path, environment) = try podman()
        do {
            _ = try execute(path, ["info", "--format", "{{.Host.OCIRuntime.Name}}"], environment: environment)
        } catch {
            Issue.record("podman cannot run on this machine (see images/containers.conf for the settings a constrained host needs): \(error)")
            throw error
        }
    }

    /// `tag`: a short name unique to the test (cluster names are up to 8 characters).
    init(tag: String, subnet: String, kind: Kind = .namespaces) throws {
        self.kind = kind
        if kind == .namespaces { try Self.requireNamespaces() } else { try Self.requireContainers() }
        name = tag
        self.subnet = subnet
        // Under /var/tmp (a disk file system): the tests use chattr, which tmpfs lacks.
        state = "/var/tmp/muster-e2e-\(tag)-\(getpid())"
        // A crashed earlier run may have left this cluster behind.
        _ = try? run("down")
    }

    deinit {
        _ = try? run("down")
    }

    var environment: [String: String] {
        [
            "MUSTER_CLUSTER": name, "MUSTER_CLUSTER_SUBNET": subnet, "MUSTER_CLUSTER_STATE": state,
            "MUSTER_BIN": Binaries.directory.path,
            // Serf's LAN timings tuned for one machine: failures are noticed in ~5 s, not ~15 s.
            "MUSTER_SERF_PROFILE": "local",
            // No host ports (127.0.0.1:80 and :1936) unless a test asks for its own.
            "MUSTER_CLUSTER_PORTS": "",
        ]
    }

    var database: String {
        kind == .namespaces ? state + "/nodes/collector/state/muster.sqlite" : state + "/volumes/collector-data/muster.sqlite"
    }
    func nodeDirectory(_ node: String) -> String { state + "/nodes/" + node }
    func journal(_ node: String) -> String { nodeDirectory(node) + "/state/events.jsonl" }
    func service(_ node: String, _ service: String) -> String { nodeDirectory(node) + "/service/" + service }

    /// Runs `images/cluster ARGS…` (or `images/containers`); throws with its output when it fails.
    @discardableResult
    func run(_ arguments: String...) throws -> String {
        try Self.execute(Self.repository + "/" + kind.tool, arguments, environment: environment)
    }

    /// A command inside a node's namespace (with the node's environment) or container.
    @discardableResult
    func exec(_ node: String, _ command: String...) throws -> String {
        try Self.execute(Self.repository + "/" + kind.tool, ["exec", node] + command, environment: environment)
    }

    /// Output goes to a file, not a pipe: processes the tool starts must not hold our pipe open.
    static func execute(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try SpawnedCommand.run(
            executable, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, output: outputPath)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw TestSetupError("\((executable as NSString).lastPathComponent) \(arguments.joined(separator: " ")) exited \(status):\n\(text)")
        }
        return text
    }
}

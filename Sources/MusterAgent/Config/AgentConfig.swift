import Foundation
import MusterWire
import Yams

/// The agent's settings: a YAML file (documented in agent/agent.example.yaml), then
/// environment variables, then flags, each overriding the one before.
public struct AgentConfig: Sendable, Equatable {
    /// The node's name as it appears in every record; defaults to the host name.
    public var node: String = ProcessInfo.processInfo.hostName
    /// Identifies this agent in origin coordinates; defaults to the node name. Keep it
    /// stable across restarts, or resent lines will not be recognised as duplicates.
    public var agentID: String?
    public var collector = Collector()
    /// Where checkpoints (and rejected batches) live.
    public var stateDirectory: String = "/var/lib/muster-agent"
    public var batch = Batch()
    public var retry = Retry()
    public var sources: [FileSourceConfig] = []
    /// Serf membership (handler journal + reconciliation); off unless configured.
    public var membership: MembershipConfig?
    /// What this node is, reported at start and on change; off unless configured.
    public var inventory: InventoryConfig?

    public var effectiveAgentID: String { agentID ?? node }

    /// The event journal Serf's handler and the agent append to, when either feature is on.
    public var journalPath: String? {
        guard membership != nil || inventory != nil || loadBalancer != nil else { return nil }
        return membership?.journal ?? stateDirectory + "/events.jsonl"
    }

    /// The configured sources plus the event journal, which is shipped like any file.
    public var effectiveSources: [FileSourceConfig] {
        guard let journalPath else { return sources }
        return sources + [FileSourceConfig(id: JournalEntry.sourceID, paths: [journalPath], format: .plain)]
    }

    public struct MembershipConfig: Sendable, Equatable {
        /// Where `muster-agent serf-event` appends (give the handler the same path with --journal).
        /// Default: `<state_dir>/events.jsonl`.
        public var journal: String?
        /// Serf's RPC address for `serf members`.
        public var serfRPC: String = "127.0.0.1:7373"
        public var reconcileIntervalMilliseconds: Int = 5000

        public init() {}
    }

    /// The LB controller (on the load balancer's node only); off unless configured.
    public var loadBalancer: LoadBalancerConfig?

    public struct LoadBalancerConfig: Sendable, Equatable {
        public var template: String = "/etc/muster/haproxy.cfg.mustache"
        /// The live configuration HAProxy runs (`-f`); replaced only by a validated file.
        public var config: String = "/etc/haproxy/haproxy.cfg"
        public var haproxy: String = "haproxy"
        public var masterSocket: String = "/run/haproxy/master.sock"
        public var backend: String = "nodes"
        /// Members with this Serf role that are alive become the backend's servers.
        public var backendRole: String = "web"
        public var render = ConfigRenderer.Settings()
        /// A burst of changes makes one apply: wait until nothing changed for `quiet`, but at
        /// most `maxWait` after the first change (consul-template's `wait min:max`).
        public var quietMilliseconds: Int = 300
        public var maxWaitMilliseconds: Int = 2000
        /// How long a removed server may keep its connections before they are cut.
        public var drainTimeoutMilliseconds: Int = 5000
        /// How often HAProxy's `show stat` is sampled into the history; 0 turns it off.
        public var statsIntervalMilliseconds: Int = 10_000

        public init() {}
    }

    public struct InventoryConfig: Sendable, Equatable {
        /// The s6 scan directory whose services are reported.
        public var scandir: String?
        public var intervalMilliseconds: Int = 10_000
        public var role: String = ""
        public var tags: [String: String] = [:]
        /// Image name and version, e.g. `muster/webapp:1.2` (env MUSTER_IMAGE).
        public var image: String?

        public init() {}
    }

    public struct Collector: Sendable, Equatable {
        public var url: String = "http://127.0.0.1:8088"
        public var token: String?
        public var timeoutMilliseconds: Int = 30_000
    }

    public struct Batch: Sendable, Equatable {
        public var maxRecords: Int = 10_000
        /// Uncompressed NDJSON size at which a batch is closed.
        public var maxBytes: Int = 1 << 20
        /// A batch is sent at the latest this long after its first line was read.
        public var maxAgeMilliseconds: Int = 1000
        /// zlib level 1 (fastest) … 9 (smallest).
        public var compressionLevel: Int = 5
    }

    public struct Retry: Sendable, Equatable {
        public var initialMilliseconds: Int = 200
        public var maxMilliseconds: Int = 30_000
    }

    public struct FileSourceConfig: Sendable, Equatable {
        public var id: String
        public var paths: [String]
        public var format: LineFormat = .auto
        /// Lines parsed into structured fields as they are read (none: the message only).
        public var parse: LineParser?

        public init(id: String, paths: [String], format: LineFormat = .auto, parse: LineParser? = nil) {
            self.id = id
            self.paths = paths
            self.format = format
            self.parse = parse
        }
    }

    public init() {}

    public static func load(path: String) throws(AgentConfigError) -> AgentConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .invalid("cannot read \(path): \(error.localizedDescription)")
        }
        do {
            let file = try YAMLDecoder().decode(ConfigFile.self, from: text)
            return try file.resolved(relativeTo: (path as NSString).deletingLastPathComponent)
        } catch let error as AgentConfigError {
            throw error
        } catch {
            throw .invalid("\(path): \(error)")
        }
    }

    /// Checks what a typo or a missing value would otherwise turn into a confusing failure later.
    public func validate() throws(AgentConfigError) {
        guard !node.isEmpty else { throw .invalid("node name is empty") }
        guard let url = URL(string: collector.url), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil
        else { throw .invalid("collector url '\(collector.url)' is not an http(s) URL") }
        guard collector.token?.isEmpty == false else {
            throw .invalid("no collector token: set collector.token or collector.token_file, MUSTER_TOKEN, or --token")
        }
        guard !effectiveSources.isEmpty else {
            throw .invalid("no sources configured: add one under 'sources' or pass --file ID=GLOB")
        }
        var ids = Set<String>()
        for source in sources where source.id == JournalEntry.sourceID {
            throw .invalid("source id '\(source.id)' is reserved for the event journal (see 'membership')")
        }
        if let membership, membership.reconcileIntervalMilliseconds <= 0 {
            throw .invalid("membership.reconcile_interval_ms must be positive")
        }
        if let inventory, inventory.intervalMilliseconds <= 0 { throw .invalid("inventory.interval_ms must be positive") }
        if let lb = loadBalancer {
            guard lb.quietMilliseconds >= 0, lb.maxWaitMilliseconds >= lb.quietMilliseconds else {
                throw .invalid("lb: quiet_ms must be >= 0 and max_wait_ms >= quiet_ms")
            }
            guard (1...65535).contains(lb.render.httpPort), (1...65535).contains(lb.render.statsPort),
                (1...65535).contains(lb.render.backendPort)
            else { throw .invalid("lb: ports must be 1-65535") }
            guard MemberValidation.isValidName(lb.backend) else { throw .invalid("lb.backend '\(lb.backend)' is not a valid proxy name") }
        }
        for source in sources {
            guard !source.id.isEmpty else { throw .invalid("a source has an empty id") }
            guard ids.insert(source.id).inserted else { throw .invalid("source id '\(source.id)' is used twice") }
            guard !source.paths.isEmpty else { throw .invalid("source '\(source.id)' has no paths") }
        }
        guard batch.maxRecords > 0, batch.maxBytes > 0, batch.maxAgeMilliseconds > 0 else {
            throw .invalid("batch limits must be positive")
        }
    }
}

public enum AgentConfigError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let detail): "invalid agent config: \(detail)" }
    }
}

/// The YAML file's shape; every key optional so that defaults stay in `AgentConfig`.
private struct ConfigFile: Decodable {
    struct Collector: Decodable {
        var url: String?
        var token: String?
        var token_file: String?
        var timeout_ms: Int?
    }
    struct Batch: Decodable {
        var max_records: Int?
        var max_bytes: Int?
        var max_age_ms: Int?
        var compression_level: Int?
    }
    struct Retry: Decodable {
        var initial_ms: Int?
        var max_ms: Int?
    }
    struct Membership: Decodable {
        var journal: String?
        var serf_rpc: String?
        var reconcile_interval_ms: Int?
    }
    struct Inventory: Decodable {
        var scandir: String?
        var interval_ms: Int?
        var role: String?
        var tags: [String: String]?
        var image: String?
    }
    struct LoadBalancer: Decodable {
        var template: String?
        var config: String?
        var haproxy: String?
        var master_socket: String?
        var runtime_socket: String?
        var backend: String?
        var backend_role: String?
        var backend_port: Int?
        var http_port: Int?
        var stats_port: Int?
        var bind_address: String?
        var log_target: String?
        var quiet_ms: Int?
        var max_wait_ms: Int?
        var drain_timeout_ms: Int?
        var stats_interval_ms: Int?
    }
    struct Source: Decodable {
        var id: String
        var type: String?
        var paths: [String]
        var format: LineFormat?
        var parse: String?
    }
    var node: String?
    var agent_id: String?
    var collector: Collector?
    var state_dir: String?
    var batch: Batch?
    var retry: Retry?
    var sources: [Source]?
    var membership: Membership?
    var inventory: Inventory?
    var lb: LoadBalancer?

    func resolved(relativeTo directory: String) throws(AgentConfigError) -> AgentConfig {
        var config = AgentConfig()
        if let node { config.node = node }
        config.agentID = agent_id
        if let collector {
            if let url = collector.url { config.collector.url = url }
            config.collector.token = collector.token
            if let file = collector.token_file {
                let path = file.hasPrefix("/") ? file : directory + "/" + file
                guard let token = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw .invalid("cannot read token_file \(path)")
                }
                config.collector.token = token.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let timeout = collector.timeout_ms { config.collector.timeoutMilliseconds = timeout }
        }
        if let state_dir { config.stateDirectory = state_dir }
        if let batch {
            if let value = batch.max_records { config.batch.maxRecords = value }
            if let value = batch.max_bytes { config.batch.maxBytes = value }
            if let value = batch.max_age_ms { config.batch.maxAgeMilliseconds = value }
            if let value = batch.compression_level { config.batch.compressionLevel = value }
        }
        if let retry {
            if let value = retry.initial_ms { config.retry.initialMilliseconds = value }
            if let value = retry.max_ms { config.retry.maxMilliseconds = value }
        }
        if let membership {
            var resolved = AgentConfig.MembershipConfig()
            resolved.journal = membership.journal
            if let value = membership.serf_rpc { resolved.serfRPC = value }
            if let value = membership.reconcile_interval_ms { resolved.reconcileIntervalMilliseconds = value }
            config.membership = resolved
        }
        if let inventory {
            var resolved = AgentConfig.InventoryConfig()
            resolved.scandir = inventory.scandir
            if let value = inventory.interval_ms { resolved.intervalMilliseconds = value }
            if let value = inventory.role { resolved.role = value }
            if let value = inventory.tags { resolved.tags = value }
            resolved.image = inventory.image
            config.inventory = resolved
        }
        if let lb {
            var resolved = AgentConfig.LoadBalancerConfig()
            func path(_ value: String?) -> String? { value.map { $0.hasPrefix("/") ? $0 : directory + "/" + $0 } }
            if let value = path(lb.template) { resolved.template = value }
            if let value = path(lb.config) { resolved.config = value }
            if let value = lb.haproxy { resolved.haproxy = value }
            if let value = path(lb.master_socket) { resolved.masterSocket = value }
            if let value = path(lb.runtime_socket) { resolved.render.runtimeSocket = value }
            if let value = lb.backend { resolved.backend = value }
            if let value = lb.backend_role { resolved.backendRole = value }
            if let value = lb.backend_port { resolved.render.backendPort = value }
            if let value = lb.http_port { resolved.render.httpPort = value }
            if let value = lb.stats_port { resolved.render.statsPort = value }
            if let value = lb.bind_address { resolved.render.bindAddress = value }
            resolved.render.logTarget = lb.log_target
            if let value = lb.quiet_ms { resolved.quietMilliseconds = value }
            if let value = lb.max_wait_ms { resolved.maxWaitMilliseconds = value }
            if let value = lb.drain_timeout_ms { resolved.drainTimeoutMilliseconds = value }
            if let value = lb.stats_interval_ms { resolved.statsIntervalMilliseconds = value }
            config.loadBalancer = resolved
        }
        for source in sources ?? [] {
            guard (source.type ?? "file") == "file" else {
                throw .invalid("source '\(source.id)': type '\(source.type!)' is not supported yet (supported: file)")
            }
            var parser: LineParser?
            if let name = source.parse {
                guard let known = LineParser(rawValue: name) else {
                    throw .invalid(
                        "source '\(source.id)': unknown parse '\(name)' (known: \(LineParser.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                parser = known
            }
            config.sources.append(.init(id: source.id, paths: source.paths, format: source.format ?? .auto, parse: parser))
        }
        return config
    }
}

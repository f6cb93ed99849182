import Foundation
import MusterConfigFile
import MusterWire

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
    public var spool = SpoolConfig()
    /// `/metrics` and `/healthz`; off unless an address is given.
    public var http = HTTPConfig()
    /// How long a SIGTERM may spend spooling what was read and sending what is spooled.
    public var shutdownGraceMilliseconds: Int = 5000
    public var sources: [FileSourceConfig] = []
    /// Syslog listeners (`type: syslog` under `sources`), e.g. for HAProxy's `log` lines.
    public var syslogSources: [SyslogSourceConfig] = []
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
        /// Loopback backends are refused by default: on the backend port, 127.0.0.1 can be
        /// HAProxy's own frontend. A cluster that really runs on one host (a development
        /// machine, a test) turns this on.
        public var allowLoopbackBackends: Bool = false

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
        /// PEM bundle of the CA(s) that signed the collector's certificate. With an https URL
        /// it is the only trust root (the system store is not consulted); absent, the system
        /// store is used. Meaningless, and refused, with an http URL.
        public var caFile: String?
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

    public struct SpoolConfig: Sendable, Equatable {
        /// Reading pauses while the spool holds this much (lines wait in their files).
        public var maxBytes: Int64 = 256 << 20
        public var segmentBytes: Int64 = 4 << 20

        public func settings(stateDirectory: String) -> Spool.Settings {
            Spool.Settings(directory: stateDirectory + "/spool", maxBytes: maxBytes, segmentBytes: segmentBytes)
        }
    }

    public struct HTTPConfig: Sendable, Equatable {
        public var listen: ListenAddress?
    }

    public struct ListenAddress: Sendable, Equatable {
        public var host: String
        public var port: Int

        /// `HOST:PORT`, e.g. `127.0.0.1:9180`, or `:9180` for every address.
        public init(_ text: String) throws(AgentConfigError) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { throw .invalid("listen address '\(text)' is not HOST:PORT (e.g. 127.0.0.1:9180)") }
            let host = String(text[..<colon])
            self.host = host.isEmpty ? "0.0.0.0" : host
            self.port = port
        }
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
        /// Joins lines into records (stack traces); off unless configured.
        public var multiline: MultilineSettings?
        /// How long a renamed or deleted file is kept open at most, even while still written to.
        public var maxOrphanOpenMilliseconds: Int = 60_000

        public init(
            id: String, paths: [String], format: LineFormat = .auto, parse: LineParser? = nil,
            multiline: MultilineSettings? = nil, maxOrphanOpenMilliseconds: Int = 60_000
        ) {
            self.id = id
            self.paths = paths
            self.format = format
            self.parse = parse
            self.multiline = multiline
            self.maxOrphanOpenMilliseconds = maxOrphanOpenMilliseconds
        }
    }

    public struct SyslogSourceConfig: Sendable, Equatable {
        public var id: String
        /// `udp://HOST:PORT` and/or `unix:///absolute/path` (see `SyslogListenAddress`).
        public var listen: [String]
        /// Applied to each message's MSG part (the header becomes fields of its own).
        public var parse: LineParser?
        /// Messages held in memory for the batcher; when full, the socket is not read.
        public var bufferMessages: Int = 50_000

        public init(id: String, listen: [String], parse: LineParser? = nil, bufferMessages: Int = 50_000) {
            self.id = id
            self.listen = listen
            self.parse = parse
            self.bufferMessages = bufferMessages
        }
    }

    public init() {}

    public static func load(path: String) throws(AgentConfigError) -> AgentConfig {
        let file: ConfigFile
        do {
            file = try YAMLConfigFile.decode(ConfigFile.self, fromFileAt: path)
        } catch {
            switch error {
            case .unreadable(let detail): throw .invalid("cannot read \(path): \(detail)")
            case .invalid(let detail): throw .invalid("\(path): \(detail)")
            }
        }
        return try file.resolved(relativeTo: (path as NSString).deletingLastPathComponent)
    }

    /// Checks what a typo or a missing value would otherwise turn into a confusing failure later.
    public func validate() throws(AgentConfigError) {
        guard !node.isEmpty else { throw .invalid("node name is empty") }
        guard let url = URL(string: collector.url), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil
        else { throw .invalid("collector url '\(collector.url)' is not an http(s) URL") }
        if let caFile = collector.caFile {
            guard !caFile.isEmpty else { throw .invalid("collector.ca_file is empty: give a PEM file, or leave it out to use the system trust store") }
            // A CA only means something to TLS: with http the token would still go in the clear.
            guard scheme == "https" else {
                throw .invalid("ca_file is set but collector url is \(collector.url): use https:// (the collector needs a tls section), or remove ca_file")
            }
        }
        guard collector.token?.isEmpty == false else {
            throw .invalid("no collector token: set collector.token or collector.token_file, MUSTER_TOKEN, or --token")
        }
        guard !effectiveSources.isEmpty || !syslogSources.isEmpty else {
            throw .invalid("no sources configured: add one under 'sources' or pass --file ID=GLOB")
        }
        var ids = Set<String>()
        for source in sources where source.id == JournalEntry.sourceID {
            throw .invalid("source id '\(source.id)' is reserved for the event journal (see 'membership')")
        }
        for source in sources where source.id == NoticeWriter.sourceID {
            throw .invalid("source id '\(source.id)' is reserved for the agent's own notices")
        }
        if let lb = loadBalancer, !MemberValidation.isValidName(lb.backend) {
            throw .invalid("lb.backend '\(lb.backend)' is not a valid proxy name")
        }
        for source in sources {
            guard !source.id.isEmpty else { throw .invalid("a source has an empty id") }
            guard ids.insert(source.id).inserted else { throw .invalid("source id '\(source.id)' is used twice") }
            guard !source.paths.isEmpty else { throw .invalid("source '\(source.id)' has no paths") }
            try source.multiline?.validate(source: source.id)
        }
        try validateSyslogSources(ids: &ids)
        do {
            try checkRanges()
        } catch {
            throw .invalid(error.description)
        }
    }

    /// A day, the longest interval or timeout any setting takes, in milliseconds.
    static let dayMilliseconds = 86_400_000

    /// Every numeric setting against the values the agent can use: outside them a duration or
    /// a size overflows the arithmetic it feeds, or quietly does nothing useful.
    private func checkRanges() throws(YAMLConfigFile.OutOfRange) {
        let day = Self.dayMilliseconds
        try YAMLConfigFile.check(collector.timeoutMilliseconds, in: 100...3_600_000, key: "collector.timeout_ms")
        try YAMLConfigFile.check(batch.maxRecords, in: 1...1_000_000, key: "batch.max_records")
        try YAMLConfigFile.check(batch.maxBytes, in: 1...(1 << 30), key: "batch.max_bytes")
        try YAMLConfigFile.check(batch.maxAgeMilliseconds, in: 1...3_600_000, key: "batch.max_age_ms")
        try YAMLConfigFile.check(batch.compressionLevel, in: 1...9, key: "batch.compression_level")
        try YAMLConfigFile.check(retry.initialMilliseconds, in: 1...3_600_000, key: "retry.initial_ms")
        try YAMLConfigFile.check(
            retry.maxMilliseconds, in: retry.initialMilliseconds...day, key: "retry.max_ms", note: "at least retry.initial_ms")
        try YAMLConfigFile.check(spool.segmentBytes, in: 1...(1 << 30), key: "spool.segment_bytes")
        try YAMLConfigFile.check(
            spool.maxBytes, in: spool.segmentBytes...(1 << 50), key: "spool.max_bytes", note: "at least spool.segment_bytes")
        try YAMLConfigFile.check(shutdownGraceMilliseconds, in: 0...3_600_000, key: "shutdown_grace_ms")
        if let membership {
            try YAMLConfigFile.check(membership.reconcileIntervalMilliseconds, in: 1...day, key: "membership.reconcile_interval_ms")
        }
        if let inventory { try YAMLConfigFile.check(inventory.intervalMilliseconds, in: 1...day, key: "inventory.interval_ms") }
        if let lb = loadBalancer {
            for (key, port) in [("lb.http_port", lb.render.httpPort), ("lb.stats_port", lb.render.statsPort), ("lb.backend_port", lb.render.backendPort)] {
                try YAMLConfigFile.check(port, in: 1...65535, key: key)
            }
            try YAMLConfigFile.check(lb.quietMilliseconds, in: 0...day, key: "lb.quiet_ms")
            try YAMLConfigFile.check(lb.maxWaitMilliseconds, in: lb.quietMilliseconds...day, key: "lb.max_wait_ms", note: "at least lb.quiet_ms")
            try YAMLConfigFile.check(lb.drainTimeoutMilliseconds, in: 0...day, key: "lb.drain_timeout_ms")
            try YAMLConfigFile.check(lb.statsIntervalMilliseconds, in: 0...day, key: "lb.stats_interval_ms", note: "0 turns sampling off")
        }
        for source in sources {
            try YAMLConfigFile.check(source.maxOrphanOpenMilliseconds, in: 1...day, key: "source '\(source.id)': max_orphan_open_ms")
        }
        for source in syslogSources {
            try YAMLConfigFile.check(source.bufferMessages, in: 1...10_000_000, key: "syslog source '\(source.id)': buffer_messages")
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
        var ca_file: String?
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
    struct Spool: Decodable {
        var max_bytes: Int64?
        var segment_bytes: Int64?
    }
    struct HTTP: Decodable {
        var listen: String?
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
        var allow_loopback_backends: Bool?
    }
    /// A file source's `multiline:` section.
    struct Multiline: Decodable {
        var start: String
        var timeout_ms: Int?
        var max_lines: Int?
        var max_bytes: Int?
    }
    struct Source: Decodable {
        var id: String
        var type: String?
        /// `type: file` only.
        var paths: [String]?
        var format: LineFormat?
        var parse: String?
        var multiline: Multiline?
        var max_orphan_open_ms: Int?
        /// `type: syslog` only.
        var listen: [String]?
        var buffer_messages: Int?
    }
    var node: String?
    var agent_id: String?
    var collector: Collector?
    var state_dir: String?
    var batch: Batch?
    var retry: Retry?
    var spool: Spool?
    var http: HTTP?
    var shutdown_grace_ms: Int?
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
                let path = YAMLConfigFile.path(file, relativeTo: directory)
                guard let token = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw .invalid("cannot read token_file \(path)")
                }
                config.collector.token = token.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let timeout = collector.timeout_ms { config.collector.timeoutMilliseconds = timeout }
            // Like token_file: relative to the config file. Read (and checked) when the agent
            // builds its client, so a flag or MUSTER_CA_FILE can still replace it.
            if let file = collector.ca_file { config.collector.caFile = YAMLConfigFile.path(file, relativeTo: directory) }
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
        if let spool {
            if let value = spool.max_bytes { config.spool.maxBytes = value }
            if let value = spool.segment_bytes { config.spool.segmentBytes = value }
        }
        if let listen = http?.listen { config.http.listen = try AgentConfig.ListenAddress(listen) }
        if let value = shutdown_grace_ms { config.shutdownGraceMilliseconds = value }
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
            func path(_ value: String?) -> String? { value.map { YAMLConfigFile.path($0, relativeTo: directory) } }
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
            if let value = lb.allow_loopback_backends { resolved.allowLoopbackBackends = value }
            config.loadBalancer = resolved
        }
        for source in sources ?? [] {
            var parser: LineParser?
            if let name = source.parse {
                guard let known = LineParser(rawValue: name) else {
                    throw .invalid(
                        "source '\(source.id)': unknown parse '\(name)' (known: \(LineParser.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                parser = known
            }
            switch source.type ?? "file" {
            case "file":
                guard let paths = source.paths else { throw .invalid("source '\(source.id)': type file needs paths: [...]") }
                guard source.listen == nil, source.buffer_messages == nil else {
                    throw .invalid("source '\(source.id)': listen and buffer_messages are for type: syslog; a file source takes paths")
                }
                var file = AgentConfig.FileSourceConfig(id: source.id, paths: paths, format: source.format ?? .auto, parse: parser)
                if let multiline = source.multiline {
                    var settings = MultilineSettings(start: multiline.start)
                    if let value = multiline.timeout_ms { settings.timeoutMilliseconds = value }
                    if let value = multiline.max_lines { settings.maxLines = value }
                    if let value = multiline.max_bytes { settings.maxBytes = value }
                    // A bad pattern is reported now, naming the source, not when the first line arrives.
                    try settings.validate(source: source.id)
                    file.multiline = settings
                }
                if let value = source.max_orphan_open_ms { file.maxOrphanOpenMilliseconds = value }
                config.sources.append(file)
            case "syslog":
                guard let listen = source.listen else {
                    throw .invalid("source '\(source.id)': type syslog needs listen: [udp://HOST:PORT, unix:///path]")
                }
                guard source.paths == nil, source.format == nil, source.multiline == nil, source.max_orphan_open_ms == nil else {
                    throw .invalid("source '\(source.id)': paths, format, multiline and max_orphan_open_ms are for type: file; a syslog source takes listen")
                }
                var syslog = AgentConfig.SyslogSourceConfig(id: source.id, listen: listen, parse: parser)
                if let value = source.buffer_messages { syslog.bufferMessages = value }
                config.syslogSources.append(syslog)
            case let other:
                throw .invalid("source '\(source.id)': unknown type '\(other)' (known: file, syslog)")
            }
        }
        return config
    }
}

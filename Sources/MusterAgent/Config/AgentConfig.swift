import Foundation
import Logging
import MusterConfigFile
import MusterWire

/// The agent's settings: a YAML file (documented in agent/agent.example.yaml), then
/// environment variables, then flags, each overriding the one before.
public struct AgentConfig: Sendable {
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
    /// How file sources follow their files: inotify or polling, descriptors held open.
    public var files = FilesConfig()
    /// When the idle agent gives memory back (`Agent.idleMemoryLoop`).
    public var memory = MemoryConfig()
    /// How long a SIGTERM may spend spooling what was read and sending what is spooled.
    public var shutdownGraceMilliseconds: Int = 5000
    /// The `sources:` entries, in the file's order, each the configuration of its type.
    public var sources: [any SourceConfig] = []
    /// The registered components whose section the file has (`membership`, `inventory`,
    /// `lb`), in the order of registration.
    public var components: [any ComponentConfig] = []

    public var effectiveAgentID: String { agentID ?? node }

    /// The event journal the components append to, when any of them does.
    public var journalPath: String? {
        guard components.contains(where: \.writesEventJournal) else { return nil }
        return components.lazy.compactMap(\.eventJournalPath).first ?? stateDirectory + "/events.jsonl"
    }

    /// The configured sources plus the event journal, which is shipped like any file.
    public var effectiveSources: [any SourceConfig] {
        guard let journalPath else { return sources }
        return sources + [EventJournal(path: journalPath).sourceConfig]
    }

    /// The component `Config` when the file has its section.
    public func component<Config: ComponentConfig>(_: Config.Type) -> Config? {
        components.lazy.compactMap { $0 as? Config }.first
    }

    /// Sets (or, with nil, removes) the component `Config`.
    public mutating func setComponent<Config: ComponentConfig>(_ component: Config?, as _: Config.Type = Config.self) {
        let index = components.firstIndex { $0 is Config }
        switch (component, index) {
        case (let component?, let index?): components[index] = component
        case (let component?, nil): components.append(component)
        case (nil, let index?): components.remove(at: index)
        case (nil, nil): break
        }
    }

    /// The top-level keys the agent itself reads; the components' sections come besides.
    static let coreKeys = ConfigFile.CoreKey.allCases.map(\.rawValue)

    public struct Collector: Sendable, Equatable {
        /// The collectors to send to (`url:` one, `urls:` several sharing a store): each agent
        /// starts at one of them, and a batch that one does not take (no answer in
        /// `timeout_ms`, a dropped connection, a 5xx) goes on to the next.
        public var urls: [String] = ["http://127.0.0.1:8088"]
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

    public struct FilesConfig: Sendable, Equatable {
        public var tailing = TailingSettings()
        /// Files all file sources together hold open at most; nil: `DescriptorBudget.defaultLimit`.
        public var maxOpen: Int?

        /// The budget the file sources share, its limit lowered (with a log line) when the
        /// configured one leaves too little of the process's descriptor limit for the rest.
        public func descriptorBudget(logger: Logger) -> DescriptorBudget {
            let processLimit = DescriptorBudget.processLimit()
            let (limit, lowered) = DescriptorBudget.limit(configured: maxOpen, processLimit: processLimit)
            if lowered {
                logger.warning(
                    "files.max_open is more than the process may open beside the agent's own descriptors; using \(limit)",
                    metadata: ["max_open": "\(maxOpen ?? 0)", "process_limit": "\(processLimit)"])
            }
            return DescriptorBudget(limit: limit)
        }
    }

    public struct HTTPConfig: Sendable, Equatable {
        public var listen: ListenAddress?
    }

    public struct MemoryConfig: Sendable, Equatable {
        /// Quiet after work before the agent gives memory back (free heap, code pages only it
        /// maps); the first time after start, a second of quiet is enough. 0: never.
        public var releaseWhenIdleMilliseconds: Int = 30_000
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

    public init() {}

    /// Loads the file at `path`, with the sources and sections `components` registers.
    public static func load(path: String, components: AgentComponents = .standard) throws(AgentConfigError) -> AgentConfig {
        let file: ConfigFile
        do {
            file = try YAMLConfigFile.decode(
                ConfigFile.self, fromFileAt: path, userInfo: [AgentComponents.userInfoKey: components])
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
        guard !collector.urls.isEmpty else { throw .invalid("collector.urls is empty: give at least one collector URL") }
        for text in collector.urls {
            guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw .invalid("collector url '\(text)' is not an http(s) URL")
            }
            if let caFile = collector.caFile {
                guard !caFile.isEmpty else {
                    throw .invalid("collector.ca_file is empty: give a PEM file, or leave it out to use the system trust store")
                }
                // A CA only means something to TLS: with http the token would still go in the clear.
                guard scheme == "https" else {
                    throw .invalid("ca_file is set but collector url is \(text): use https:// (the collector needs a tls section), or remove ca_file")
                }
            }
        }
        guard collector.token?.isEmpty == false else {
            throw .invalid("no collector token: set collector.token or collector.token_file, MUSTER_TOKEN, or --token")
        }
        guard !effectiveSources.isEmpty else {
            throw .invalid("no sources configured: add one under 'sources' or pass --file ID=GLOB")
        }
        for component in components { try component.validate() }
        var claims = SourceClaims()
        for source in sources {
            try claims.claim(id: source.id, label: type(of: source).label)
            try source.validate(claims: &claims)
        }
        do {
            try checkRanges()
        } catch {
            throw .invalid(error.description)
        }
    }

    /// A day, the longest interval or timeout any setting takes, in milliseconds.
    public static let dayMilliseconds = 86_400_000

    /// Every numeric setting against the values the agent can use: outside them a duration or
    /// a size overflows the arithmetic it feeds, or quietly does nothing useful.
    private func checkRanges() throws(YAMLConfigFile.OutOfRange) {
        let day = Self.dayMilliseconds
        try YAMLConfigFile.check(collector.timeoutMilliseconds, in: 100...3_600_000, key: "collector.timeout_ms")
        try YAMLConfigFile.check(batch.maxRecords, in: 1...1_000_000, key: "batch.max_records")
        try YAMLConfigFile.check(batch.maxBytes, in: 1...(1 << 30), key: "batch.max_bytes")
        try YAMLConfigFile.check(batch.maxAgeMilliseconds, in: 1...3_600_000, key: "batch.max_age_ms")
        try YAMLConfigFile.check(batch.compressionLevel, in: BatchCompressor.levels, key: "batch.compression_level")
        try YAMLConfigFile.check(retry.initialMilliseconds, in: 1...3_600_000, key: "retry.initial_ms")
        try YAMLConfigFile.check(
            retry.maxMilliseconds, in: retry.initialMilliseconds...day, key: "retry.max_ms", note: "at least retry.initial_ms")
        try YAMLConfigFile.check(spool.segmentBytes, in: 1...(1 << 30), key: "spool.segment_bytes")
        try YAMLConfigFile.check(
            spool.maxBytes, in: spool.segmentBytes...(1 << 50), key: "spool.max_bytes", note: "at least spool.segment_bytes")
        try YAMLConfigFile.check(shutdownGraceMilliseconds, in: 0...3_600_000, key: "shutdown_grace_ms")
        if let maxOpen = files.maxOpen { try YAMLConfigFile.check(maxOpen, in: 1...1_000_000, key: "files.max_open") }
        if memory.releaseWhenIdleMilliseconds != 0 {
            try YAMLConfigFile.check(
                memory.releaseWhenIdleMilliseconds, in: 1000...day, key: "memory.release_when_idle_ms", note: "or 0 for never")
        }
        for component in components { try component.checkRanges() }
        for source in sources { try source.checkRanges() }
    }
}

public enum AgentConfigError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let detail): "invalid agent config: \(detail)" }
    }
}

/// The YAML file's shape; every key optional so that defaults stay in `AgentConfig`. Sources and
/// sections are decoded by the types `AgentComponents` registers.
private struct ConfigFile: Decodable {
    struct Collector: Decodable {
        var url: String?
        var urls: [String]?
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
    struct Memory: Decodable {
        var release_when_idle_ms: Int?
    }
    struct Files: Decodable {
        var watch: TailingSettings.Watch?
        var poll_interval_ms: Int?
        var rescan_interval_ms: Int?
        var close_idle_ms: Int?
        var max_open: Int?
    }
    /// The top-level keys of the agent itself, in the order they are decoded.
    enum CoreKey: String, CaseIterable {
        case node, agent_id, collector, state_dir, batch, retry, spool, http, files, memory, shutdown_grace_ms, sources
    }
    var node: String?
    var agent_id: String?
    var collector: Collector?
    var state_dir: String?
    var batch: Batch?
    var retry: Retry?
    var spool: Spool?
    var http: HTTP?
    var files: Files?
    var memory: Memory?
    var shutdown_grace_ms: Int?
    var sources: [AgentComponents.RawSource]?
    var sections: [(AgentComponents.Section, any Sendable)]
    let components: AgentComponents

    init(from decoder: any Decoder) throws {
        components = AgentComponents.from(decoder)
        let container = try decoder.container(keyedBy: ConfigKey.self)
        func decode<Value: Decodable>(_ key: CoreKey) throws -> Value? {
            try container.decodeIfPresent(Value.self, forKey: ConfigKey(key.rawValue))
        }
        node = try decode(.node)
        agent_id = try decode(.agent_id)
        collector = try decode(.collector)
        state_dir = try decode(.state_dir)
        batch = try decode(.batch)
        retry = try decode(.retry)
        spool = try decode(.spool)
        http = try decode(.http)
        files = try decode(.files)
        memory = try decode(.memory)
        shutdown_grace_ms = try decode(.shutdown_grace_ms)
        sources = try decode(.sources)
        sections = try components.decodeSections(from: container)
    }

    func resolved(relativeTo directory: String) throws(AgentConfigError) -> AgentConfig {
        var config = AgentConfig()
        if let node { config.node = node }
        config.agentID = agent_id
        if let collector {
            switch (collector.url, collector.urls) {
            case (let url?, nil): config.collector.urls = [url]
            case (nil, let urls?): config.collector.urls = urls
            case (nil, nil): break
            case (.some, .some): throw .invalid("collector: give url (one collector) or urls (several), not both")
            }
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
        if let value = memory?.release_when_idle_ms { config.memory.releaseWhenIdleMilliseconds = value }
        if let files {
            // Checked here: the durations are made from them right away.
            func milliseconds(_ value: Int?, _ key: String, _ range: ClosedRange<Int>) throws(AgentConfigError) -> Duration? {
                guard let value else { return nil }
                do {
                    try YAMLConfigFile.check(value, in: range, key: "files.\(key)")
                } catch {
                    throw .invalid(error.description)
                }
                return .milliseconds(value)
            }
            if let value = files.watch { config.files.tailing.watch = value }
            if let value = try milliseconds(files.poll_interval_ms, "poll_interval_ms", 10...3_600_000) {
                config.files.tailing.pollInterval = value
            }
            if let value = try milliseconds(files.rescan_interval_ms, "rescan_interval_ms", 100...86_400_000) {
                config.files.tailing.rescanInterval = value
            }
            if let value = try milliseconds(files.close_idle_ms, "close_idle_ms", 100...86_400_000) {
                config.files.tailing.closeIdleAfter = value
            }
            config.files.maxOpen = files.max_open
        }
        for (section, value) in sections { config.components.append(try section.resolve(value, directory)) }
        for source in sources ?? [] { config.sources.append(try components.resolve(source, relativeTo: directory)) }
        return config
    }
}

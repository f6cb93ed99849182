import MusterConfigFile
import MusterWire

extension AgentConfig {
    /// `membership:`: Serf's event handler appends to the journal, and the agent reconciles
    /// with `serf members` every interval, so that a lost handler call is made good.
    public struct MembershipConfig: ComponentConfig {
        /// Where `muster-agent serf-event` appends (give the handler the same path with --journal).
        /// Default: `<state_dir>/events.jsonl`.
        public var journal: String?
        /// Serf's RPC address for `serf members`.
        public var serfRPC: String = "127.0.0.1:7373"
        public var reconcileIntervalMilliseconds: Int = 5000

        public init() {}

        public static let key = "membership"

        public struct Section: Decodable, Sendable {
            var journal: String?
            var serf_rpc: String?
            var reconcile_interval_ms: Int?
        }

        public init(section: Section, relativeTo directory: String) {
            journal = section.journal
            if let value = section.serf_rpc { serfRPC = value }
            if let value = section.reconcile_interval_ms { reconcileIntervalMilliseconds = value }
        }

        public func checkRanges() throws(YAMLConfigFile.OutOfRange) {
            try YAMLConfigFile.check(
                reconcileIntervalMilliseconds, in: 1...AgentConfig.dayMilliseconds, key: "membership.reconcile_interval_ms")
        }

        public var eventJournalPath: String? { journal }

        public func run(_ context: ComponentContext) async {
            guard let journal = context.journal else { return }
            await SerfReconciler(
                rpcAddress: serfRPC, interval: .milliseconds(reconcileIntervalMilliseconds), journal: journal,
                observer: context.config.node, logger: context.logger
            ).run()
        }
    }

    /// `inventory:`: what this node is, journalled at start and on change.
    public struct InventoryConfig: ComponentConfig {
        /// The s6 scan directory whose services are reported.
        public var scandir: String?
        public var intervalMilliseconds: Int = 10_000
        public var role: String = ""
        public var tags: [String: String] = [:]
        /// Image name and version, e.g. `muster/webapp:1.2` (env MUSTER_IMAGE).
        public var image: String?

        public init() {}

        public static let key = "inventory"

        public struct Section: Decodable, Sendable {
            var scandir: String?
            var interval_ms: Int?
            var role: String?
            var tags: [String: String]?
            var image: String?
        }

        public init(section: Section, relativeTo directory: String) {
            scandir = section.scandir
            if let value = section.interval_ms { intervalMilliseconds = value }
            if let value = section.role { role = value }
            if let value = section.tags { tags = value }
            image = section.image
        }

        public func checkRanges() throws(YAMLConfigFile.OutOfRange) {
            try YAMLConfigFile.check(intervalMilliseconds, in: 1...AgentConfig.dayMilliseconds, key: "inventory.interval_ms")
        }

        public func run(_ context: ComponentContext) async {
            guard let journal = context.journal else { return }
            await InventoryReporter(config: self, node: context.config.node, journal: journal, logger: context.logger).run()
        }
    }

    /// Serf membership (handler journal + reconciliation); off unless configured.
    public var membership: MembershipConfig? {
        get { component(MembershipConfig.self) }
        set { setComponent(newValue) }
    }

    /// What this node is, reported at start and on change; off unless configured.
    public var inventory: InventoryConfig? {
        get { component(InventoryConfig.self) }
        set { setComponent(newValue) }
    }
}

extension EventJournal {
    /// The journal as the agent ships it: source `events`, a file of plain lines.
    public var sourceConfig: AgentConfig.FileSourceConfig {
        AgentConfig.FileSourceConfig(id: JournalEntry.sourceID, paths: [path], format: .plain)
    }
}

import MusterAgent
import MusterConfigFile

extension AgentConfig {
    /// `lb:`: the LB controller (on the load balancer's node only), which renders HAProxy's
    /// configuration from the cluster's membership and applies it.
    ///
    /// Not among `AgentComponents.standard`: `muster-agent` registers it, so the agent's
    /// library, and every program built on it, does without the template engine and the hashing.
    public struct LoadBalancerConfig: ComponentConfig {
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

        public static let key = "lb"

        public struct Section: Decodable, Sendable {
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

        public init(section lb: Section, relativeTo directory: String) {
            func path(_ value: String?) -> String? { value.map { YAMLConfigFile.path($0, relativeTo: directory) } }
            if let value = path(lb.template) { template = value }
            if let value = path(lb.config) { config = value }
            if let value = lb.haproxy { haproxy = value }
            if let value = path(lb.master_socket) { masterSocket = value }
            if let value = path(lb.runtime_socket) { render.runtimeSocket = value }
            if let value = lb.backend { backend = value }
            if let value = lb.backend_role { backendRole = value }
            if let value = lb.backend_port { render.backendPort = value }
            if let value = lb.http_port { render.httpPort = value }
            if let value = lb.stats_port { render.statsPort = value }
            if let value = lb.bind_address { render.bindAddress = value }
            render.logTarget = lb.log_target
            if let value = lb.quiet_ms { quietMilliseconds = value }
            if let value = lb.max_wait_ms { maxWaitMilliseconds = value }
            if let value = lb.drain_timeout_ms { drainTimeoutMilliseconds = value }
            if let value = lb.stats_interval_ms { statsIntervalMilliseconds = value }
            if let value = lb.allow_loopback_backends { allowLoopbackBackends = value }
        }

        public func validate() throws(AgentConfigError) {
            guard MemberValidation.isValidName(backend) else { throw .invalid("lb.backend '\(backend)' is not a valid proxy name") }
        }

        public func checkRanges() throws(YAMLConfigFile.OutOfRange) {
            let day = AgentConfig.dayMilliseconds
            for (key, port) in [("lb.http_port", render.httpPort), ("lb.stats_port", render.statsPort), ("lb.backend_port", render.backendPort)] {
                try YAMLConfigFile.check(port, in: 1...65535, key: key)
            }
            try YAMLConfigFile.check(quietMilliseconds, in: 0...day, key: "lb.quiet_ms")
            try YAMLConfigFile.check(maxWaitMilliseconds, in: quietMilliseconds...day, key: "lb.max_wait_ms", note: "at least lb.quiet_ms")
            try YAMLConfigFile.check(drainTimeoutMilliseconds, in: 0...day, key: "lb.drain_timeout_ms")
            try YAMLConfigFile.check(statsIntervalMilliseconds, in: 0...day, key: "lb.stats_interval_ms", note: "0 turns sampling off")
        }

        /// Follows the collector's event stream (Serf when it is away) and applies what changes.
        public func run(_ context: ComponentContext) async {
            guard let journal = context.journal else { return }
            let collector = context.config.collector
            await LBController(
                config: self, node: context.config.node, journal: journal,
                streams: collector.urls.map { EventStreamClient(baseURL: $0, token: collector.token ?? "", client: context.client) },
                serfRPC: context.config.membership?.serfRPC, stateDirectory: context.config.stateDirectory, logger: context.logger
            ).run()
        }
    }

    /// The LB controller's section; off unless configured.
    public var loadBalancer: LoadBalancerConfig? {
        get { component(LoadBalancerConfig.self) }
        set { setComponent(newValue) }
    }
}

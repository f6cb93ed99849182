import ArgumentParser
import Foundation
import Logging
import MusterAgent
import MusterLoadBalancer
import ServiceLifecycle

@main
struct MusterAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muster-agent",
        abstract: "Tails log files and Serf events and ships them, compressed and durably, to a muster collector.",
        subcommands: [Run.self, SerfEvent.self],
        defaultSubcommand: Run.self)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent (the default when no subcommand is given).")

    @Option(name: .long, help: "YAML config file (see agent/agent.example.yaml).")
    var config: String?

    @Option(name: .long, help: "Node name on every record (env MUSTER_NODE; default: host name).")
    var node: String?

    @Option(name: .long, help: "Collector base URL, e.g. http://10.0.0.2:8088 (env MUSTER_COLLECTOR_URL).")
    var collectorURL: String?

    @Option(name: .long, help: "Bearer token for the collector (env MUSTER_TOKEN).")
    var token: String?

    @Option(name: .long, help: "PEM CA bundle the https collector is verified against, instead of the system store (env MUSTER_CA_FILE).")
    var caFile: String?

    @Option(name: .long, help: "Directory for checkpoints (env MUSTER_STATE_DIR).")
    var stateDir: String?

    @Option(name: .long, help: "Add a file source: ID=GLOB (repeatable), e.g. --file webapp=/var/log/webapp/current.")
    var file: [String] = []

    @Option(name: .long, help: "Serve /metrics and /healthz on HOST:PORT, e.g. 127.0.0.1:9180 (env MUSTER_HTTP_LISTEN).")
    var httpListen: String?

    @Option(name: .long, help: "Pause reading while the disk spool holds this many bytes (env MUSTER_SPOOL_MAX_BYTES).")
    var spoolMaxBytes: Int64?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        var settings = AgentConfig()
        let environment = ProcessInfo.processInfo.environment
        do {
            // What this program can be configured with: the agent's own sources and sections,
            // and the LB controller's `lb:`.
            let components = try AgentComponents.standard.registering(AgentConfig.LoadBalancerConfig.self)
            if let config { settings = try AgentConfig.load(path: config, components: components) }
            if let value = node ?? environment["MUSTER_NODE"] { settings.node = value }
            if let value = collectorURL ?? environment["MUSTER_COLLECTOR_URL"] { settings.collector.url = value }
            if let value = token ?? environment["MUSTER_TOKEN"], !value.isEmpty { settings.collector.token = value }
            if let value = caFile ?? environment["MUSTER_CA_FILE"], !value.isEmpty { settings.collector.caFile = value }
            if let value = stateDir ?? environment["MUSTER_STATE_DIR"] { settings.stateDirectory = value }
            if let value = httpListen ?? environment["MUSTER_HTTP_LISTEN"] { settings.http.listen = try AgentConfig.ListenAddress(value) }
            if let value = spoolMaxBytes ?? environment["MUSTER_SPOOL_MAX_BYTES"].flatMap({ Int64($0) }) {
                settings.spool.maxBytes = value
                settings.spool.segmentBytes = min(settings.spool.segmentBytes, value)
            }
            if let value = environment["MUSTER_ROLE"], !value.isEmpty, settings.inventory?.role.isEmpty == true {
                settings.inventory?.role = value
            }
            if let value = environment["MUSTER_IMAGE"], !value.isEmpty, settings.inventory?.image == nil {
                settings.inventory?.image = value
            }
            for spec in file {
                guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
                    throw AgentConfigError.invalid("--file expects ID=GLOB, got '\(spec)'")
                }
                let id = String(spec[..<equals])
                let path = String(spec[spec.index(after: equals)...])
                settings.sources.append(AgentConfig.FileSourceConfig(id: id, paths: [path]))
            }
        } catch {
            FileHandle.standardError.write(Data("muster-agent: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var logger = Logger(label: "muster-agent")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let agent: Agent
        do {
            agent = try Agent(config: settings, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("muster-agent: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

struct SerfEvent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serf-event",
        abstract: "Serf's event handler: appends the event to the node's journal and returns.",
        discussion: """
            Run by Serf: serf agent -event-handler "muster-agent serf-event --journal PATH". Reads \
            SERF_EVENT and the member lines on stdin, appends one JSON line per member to the journal \
            (fsynced) and exits; the running agent ships the journal. Exit 0: recorded; 64: the input \
            is not a Serf event; 74: the journal cannot be written.
            """)

    @Option(name: .long, help: "The journal file (env MUSTER_JOURNAL; default /var/lib/muster-agent/events.jsonl).")
    var journal: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let path = journal ?? environment["MUSTER_JOURNAL"] ?? "/var/lib/muster-agent/events.jsonl"
        do {
            let entries = try SerfEventHandler.entries(
                environment: environment, stdin: FileHandle.standardInput.readDataToEndOfFile())
            try EventJournal(path: path).append(entries)
        } catch {
            FileHandle.standardError.write(Data("muster-agent serf-event: \(error)\n".utf8))
            if case .badInput = error { throw ExitCode(64) }
            throw ExitCode(74)
        }
    }
}

import ArgumentParser
import Foundation
import Logging
import MusterAgent
import MusterLoadBalancer
import ServiceLifecycle
import UnixSignals

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
        abstract: "Run the agent (the default when no subcommand is given).",
        discussion: """
            SIGHUP reloads the config file: sources are added, removed and changed while the others \
            run on; other settings take effect at the next restart. SIGTERM and SIGINT stop the \
            agent after spooling what it read.
            """)

    @Option(name: .long, help: "YAML config file (see agent/agent.example.yaml).")
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Check FILE with the environment and the other flags, as the agent would start with it, and exit: 0 and a summary, or 2 and the reason. Binds nothing, writes nothing.",
            valueName: "FILE"))
    var checkConfig: String?

    @Option(name: .long, help: "Node name on every record (env MUSTER_NODE; default: host name).")
    var node: String?

    @Option(
        name: .long,
        help: "Collector base URL, e.g. http://10.0.0.2:8088, or several separated by commas (env MUSTER_COLLECTOR_URL).")
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

    func validate() throws {
        if checkConfig != nil, config != nil {
            throw ValidationError("--check-config FILE checks FILE; leave out --config")
        }
    }

    /// Where the configuration comes from: the file and the flags of this command line.
    var settings: AgentSettings {
        AgentSettings(
            file: checkConfig ?? config, node: node, collectorURL: collectorURL, token: token, caFile: caFile,
            stateDir: stateDir, files: file, httpListen: httpListen, spoolMaxBytes: spoolMaxBytes)
    }

    func run() async throws {
        if checkConfig != nil { return try check(settings) }
        // SIGHUP reloads; it must never stop the agent. Ignored until the handler is in place,
        // which is done before anything slow (the file, the state directory, the spool), so
        // that logrotate's `kill -HUP` cannot catch the agent starting. Once libdispatch's
        // handler is installed it stays for the life of the process.
        signal(SIGHUP, SIG_IGN)
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let settings = self.settings
        let loaded: AgentConfig
        do {
            loaded = try settings.load()
        } catch {
            FileHandle.standardError.write(Data("muster-agent: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var configuredLogger = Logger(label: "muster-agent")
        configuredLogger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let logger = configuredLogger
        let agent: Agent
        do {
            agent = try Agent(config: loaded, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("muster-agent: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in hangups { settings.reload(agent, logger: logger) }
            }
            defer { tasks.cancelAll() }
            try await group.run()
        }
    }

    /// `--check-config`: the summary on stdout, or the reason on stderr and exit status 2.
    private func check(_ settings: AgentSettings) throws {
        let checked: AgentConfig
        do {
            checked = try settings.load()
            try Agent.check(checked)
        } catch {
            FileHandle.standardError.write(Data("muster-agent: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let sources = checked.effectiveSources.map { "\($0.id) (\(type(of: $0).type))" }
        print(
            """
            \(settings.file ?? "configuration"): OK
            node: \(checked.node)
            collector: \(checked.collector.urls.joined(separator: ", "))
            sources: \(sources.joined(separator: ", "))
            """)
    }
}

/// The agent's configuration as its command line gives it: the file, then the environment,
/// then the flags, each overriding the one before. Loaded the same way at start, at each
/// SIGHUP and by `--check-config`.
struct AgentSettings: Sendable {
    var file: String?
    var node: String?
    var collectorURL: String?
    var token: String?
    var caFile: String?
    var stateDir: String?
    var files: [String]
    var httpListen: String?
    var spoolMaxBytes: Int64?

    func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AgentConfig {
        var settings = AgentConfig()
        // What this program can be configured with: the agent's own sources and sections,
        // and the LB controller's `lb:`.
        let components = try AgentComponents.standard.registering(AgentConfig.LoadBalancerConfig.self)
        if let file { settings = try AgentConfig.load(path: file, components: components) }
        if let value = node ?? environment["MUSTER_NODE"] { settings.node = value }
        if let value = collectorURL ?? environment["MUSTER_COLLECTOR_URL"] {
            settings.collector.urls = value.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        }
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
        for spec in files {
            guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
                throw AgentConfigError.invalid("--file expects ID=GLOB, got '\(spec)'")
            }
            let id = String(spec[..<equals])
            let path = String(spec[spec.index(after: equals)...])
            settings.sources.append(AgentConfig.FileSourceConfig(id: id, paths: [path]))
        }
        return settings
    }

    /// SIGHUP: the file read again and checked; the agent takes it on, or, when it is refused,
    /// runs on exactly as it was, and the log says why.
    func reload(_ agent: Agent, logger: Logger) {
        guard let file else {
            logger.notice("SIGHUP: the agent was started without --config, so there is no file to reload; nothing changes")
            return
        }
        let reloaded: AgentConfig
        do {
            reloaded = try load()
            try Agent.check(reloaded)
        } catch {
            logger.error("SIGHUP: cannot reload \(file), running on with the previous configuration: \(error)")
            return
        }
        logger.info("SIGHUP: reloading \(file)")
        agent.reload(reloaded, file: file)
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

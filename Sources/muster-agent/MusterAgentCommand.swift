import ArgumentParser
import Foundation
import Logging
import MusterAgent
import ServiceLifecycle

@main
struct MusterAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muster-agent",
        abstract: "Tails log files and ships them, compressed and durably, to a muster collector.")

    @Option(name: .long, help: "YAML config file (see agent/agent.example.yaml).")
    var config: String?

    @Option(name: .long, help: "Node name on every record (env MUSTER_NODE; default: host name).")
    var node: String?

    @Option(name: .long, help: "Collector base URL, e.g. http://10.0.0.2:8088 (env MUSTER_COLLECTOR_URL).")
    var collectorURL: String?

    @Option(name: .long, help: "Bearer token for the collector (env MUSTER_TOKEN).")
    var token: String?

    @Option(name: .long, help: "Directory for checkpoints (env MUSTER_STATE_DIR).")
    var stateDir: String?

    @Option(name: .long, help: "Add a file source: ID=GLOB (repeatable), e.g. --file webapp=/var/log/webapp/current.")
    var file: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        var settings = AgentConfig()
        let environment = ProcessInfo.processInfo.environment
        do {
            if let config { settings = try AgentConfig.load(path: config) }
            if let value = node ?? environment["MUSTER_NODE"] { settings.node = value }
            if let value = collectorURL ?? environment["MUSTER_COLLECTOR_URL"] { settings.collector.url = value }
            if let value = token ?? environment["MUSTER_TOKEN"], !value.isEmpty { settings.collector.token = value }
            if let value = stateDir ?? environment["MUSTER_STATE_DIR"] { settings.stateDirectory = value }
            for spec in file {
                guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
                    throw AgentConfigError.invalid("--file expects ID=GLOB, got '\(spec)'")
                }
                let id = String(spec[..<equals])
                let path = String(spec[spec.index(after: equals)...])
                settings.sources.append(.init(id: id, paths: [path]))
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

import ArgumentParser
import Foundation
import Logging
import MusterCollector
import MusterStoreSQLite

@main
struct MusterCollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muster-collector",
        abstract: "Receives batches from muster agents and stores them in SQLite.")

    @Option(name: .long, help: "YAML config file (see collector/collector.example.yaml).")
    var config: String?

    @Option(name: .long, help: "SQLite file to write (overrides config; env MUSTER_DB).")
    var database: String?

    @Option(name: .long, help: "Address to listen on (overrides config).")
    var host: String?

    @Option(name: .long, help: "Port to listen on; 0 picks a free one (overrides config).")
    var port: Int?

    @Option(name: .long, help: "Write the listening port to this file once bound.")
    var portFile: String?

    @Option(name: .long, help: "Accepted bearer token (overrides config; env MUSTER_TOKEN).")
    var token: String?

    @Option(name: .long, help: "Server certificate (PEM) for HTTPS; needs --tls-key (overrides config tls.cert_file).")
    var tlsCert: String?

    @Option(name: .long, help: "The certificate's private key (PEM); needs --tls-cert (overrides config tls.key_file).")
    var tlsKey: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        // Process-wide, so before anything else: no SQLite connection exists yet.
        if !SQLiteLibrary.disableMemoryStatistics() {
            FileHandle.standardError.write(Data("muster-collector: SQLite was in use before its settings were made; memory statistics stay on\n".utf8))
        }
        var settings = CollectorConfig()
        do {
            if let config { settings = try CollectorConfig.load(path: config) }
        } catch {
            // Like every other config error: the message alone (it names the key), exit 2.
            FileHandle.standardError.write(Data("muster-collector: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let environment = ProcessInfo.processInfo.environment
        if let value = database ?? environment["MUSTER_DB"] { settings.database = value }
        if let host { settings.listen.host = host }
        if let port { settings.listen.port = port }
        if let portFile { settings.listen.portFile = portFile }
        if let value = token ?? environment["MUSTER_TOKEN"], !value.isEmpty { settings.tokens = [value] }
        if tlsCert != nil || tlsKey != nil {
            // One flag with the other half in the config file is fine; one half alone is
            // refused by `Collector` with the missing key named.
            var tls = settings.tls ?? .init()
            if let tlsCert { tls.certFile = tlsCert }
            if let tlsKey { tls.keyFile = tlsKey }
            settings.tls = tls
        }

        do {
            try settings.validate()
        } catch {
            FileHandle.standardError.write(Data("muster-collector: \(error)\n".utf8))
            throw ExitCode(2)
        }

        var logger = Logger(label: "muster-collector")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let collector: Collector
        do {
            collector = try await Collector(config: settings, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("muster-collector: \(error)\n".utf8))
            throw ExitCode(2)
        }
        try await collector.run()
    }
}

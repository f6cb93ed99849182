import ArgumentParser
import DemoWebapp
import Hummingbird

@main
struct DemoWebappCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-webapp",
        abstract: "The lab's web node: JSON hello with the node's ip and host, and a NODESESSID session.")

    @Option(name: .long, help: "Address to listen on.")
    var host = "0.0.0.0"

    @Option(name: .long, help: "Port to listen on.")
    var port = 3000

    @Option(name: .long, help: "Name reported as 'host' (default: the host name).")
    var name: String?

    @Option(name: .long, help: "Address reported as 'ip' (default: the first non-loopback IPv4 address).")
    var ip: String?

    @Option(name: .long, help: "Sessions kept in memory; the least recently used go first.")
    var maxSessions = 100_000

    func run() async throws {
        var settings = DemoWebapp.Settings()
        settings.host = host
        settings.port = port
        if let name { settings.nodeName = name }
        if let ip { settings.ip = ip }
        settings.maxSessions = maxSessions
        try await DemoWebapp(settings: settings).application().runService()
    }
}

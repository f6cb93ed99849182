import Crypto
import Foundation
import Mustache
import MusterWire

/// Renders the HAProxy configuration from `haproxy.cfg.mustache`.
public struct ConfigRenderer: Sendable {
    public struct Settings: Sendable, Equatable {
        public var httpPort: Int = 80
        public var statsPort: Int = 1936
        public var bindAddress: String = "*"
        public var backendPort: Int = 80
        public var runtimeSocket: String = "/run/haproxy/admin.sock"
        /// HAProxy's `log` target (e.g. `127.0.0.1:514`); no `log` line when nil.
        public var logTarget: String?
        public init() {}
    }

    let template: MustacheTemplate
    let settings: Settings

    public init(templateText: String, settings: Settings) throws(LoadBalancerError) {
        do {
            template = try MustacheTemplate(string: templateText)
        } catch {
            throw .badTemplate("\(error)")
        }
        self.settings = settings
    }

    public func render(servers: [BackendServer], version: Int, generatedAt: Int64) -> String {
        var context: [String: Any] = [
            "version": version,
            "generated_at": Timestamp.format(generatedAt),
            "servers": servers.map { ["name": $0.name, "address": Self.bracketed($0.address), "port": settings.backendPort] as [String: Any] },
            "http_port": settings.httpPort,
            "stats_port": settings.statsPort,
            "bind_address": settings.bindAddress,
            "runtime_socket": settings.runtimeSocket,
        ]
        if let logTarget = settings.logTarget, !logTarget.isEmpty { context["log_target"] = logTarget }
        return template.render(context)
    }

    /// The text without its header's version line: two renders of the same cluster compare equal.
    static func comparable(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("# version ") }
    }

    /// The template writes `ADDRESS:PORT`; an IPv6 address needs its brackets there (`[fd00::1]:80`).
    static func bracketed(_ address: String) -> String {
        address.contains(":") ? "[\(address)]" : address
    }

    public static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The text with the backend's `server` lines taken out: when two versions agree on
    /// this, the change is only servers joining or leaving, which the Runtime API can apply.
    static func skeleton(_ text: String) -> [Substring] {
        comparable(text).filter { !isServerLine($0) }
    }

    static func isServerLine(_ line: Substring) -> Bool {
        line.trimmingCharacters(in: .whitespaces).hasPrefix("server ")
    }

    /// Each rendered `server` line as name → the arguments after the name (what `add server` takes).
    static func serverLines(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") where isServerLine(line) {
            let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            if words.count >= 3 { result[String(words[1])] = words.dropFirst(2).joined(separator: " ") }
        }
        return result
    }
}

public enum LoadBalancerError: Error, CustomStringConvertible, Equatable {
    case badTemplate(String)
    case io(String)
    case haproxy(String)

    public var description: String {
        switch self {
        case .badTemplate(let detail): "the HAProxy template does not parse: \(detail)"
        case .io(let detail): detail
        case .haproxy(let detail): detail
        }
    }
}

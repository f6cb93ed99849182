import Crypto
import Foundation
import Mustache

/// Renders the HAProxy configuration from `haproxy.cfg.mustache`.
public struct ConfigRenderer: Sendable {
    public struct Settings: Sendable, Equatable {
        public var httpPort: Int = 80
        public var statsPort: Int = 1936
        public var bindAddress: String = "*"
        public var backendPort: Int = 80
        public var runtimeSocket: String = "/run/haproxy/admin.sock"
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

    public func render(servers: [BackendServer], version: Int) -> String {
        let context: [String: Any] = [
            "version": version,
            "servers": servers.map { ["name": $0.name, "address": Self.hostPort($0.address, settings.backendPort)] },
            "http_port": settings.httpPort,
            "stats_port": settings.statsPort,
            "bind_address": settings.bindAddress,
            "runtime_socket": settings.runtimeSocket,
        ]
        return template.render(context)
    }

    /// `10.0.0.1:80`, `[fd00::1]:80`.
    static func hostPort(_ address: String, _ port: Int) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    public static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The text with the backend's `server` lines taken out: when two versions agree on
    /// this, the change is only servers joining or leaving, which the Runtime API can apply.
    static func skeleton(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: false).filter { !isServerLine($0) }
    }

    static func isServerLine(_ line: Substring) -> Bool {
        line.trimmingCharacters(in: .whitespaces).hasPrefix("server ")
    }

    /// The arguments after `server ` on the rendered line for `name` (what `add server` takes).
    static func serverArguments(of name: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where isServerLine(line) {
            let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            if words.count >= 3, words[1] == name { return words.dropFirst(2).joined(separator: " ") }
        }
        return nil
    }

    /// A unified-style diff (`-`/`+` lines with two lines of context, `@@` between hunks).
    public static func diff(from old: String, to new: String) -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let changes = b.difference(from: a)
        guard !changes.isEmpty else { return "" }
        var removed = Set<Int>()
        var inserted = Set<Int>()
        for change in changes {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        // Walk both sides in step, emitting context around changes.
        var lines: [(kind: Character, text: String)] = []
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count, removed.contains(i) {
                lines.append(("-", a[i])); i += 1
            } else if j < b.count, inserted.contains(j) {
                lines.append(("+", b[j])); j += 1
            } else {
                if i < a.count { lines.append((" ", a[i])) }
                i += 1; j += 1
            }
        }
        let context = 2
        var keep = Set<Int>()
        for (index, line) in lines.enumerated() where line.kind != " " {
            for k in max(0, index - context)...min(lines.count - 1, index + context) { keep.insert(k) }
        }
        var output = "--- previous\n+++ new\n"
        var last = -2
        for index in keep.sorted() {
            if index != last + 1 { output += "@@\n" }
            output += "\(lines[index].kind)\(lines[index].text)\n"
            last = index
        }
        return output
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

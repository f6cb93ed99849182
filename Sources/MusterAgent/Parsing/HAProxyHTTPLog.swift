import MusterWire

/// One line of HAProxy's default HTTP log format (`option httplog`):
///
/// ```
/// 10.0.0.1:50412 [22/Nov/2026:01:42:05.078] http-in nodes/s1 0/0/1/3/4 200 512 - - ---- 3/3/0/0/0 0/0 "GET / HTTP/1.1"
/// client:port    [accept date]               frontend backend/server TR/Tw/Tc/Tr/Ta status bytes
///                req-cookie resp-cookie termination actconn/feconn/beconn/srvconn/retries srvqueue/backendqueue
///                [{captured request headers}] [{captured response headers}] "request line"
/// ```
///
/// With `log stdout format raw` the line is exactly this; through syslog a header comes first
/// (`<134>Nov 22 01:42:05 haproxy[123]: `), which is skipped. Timers are milliseconds, -1 when
/// the step did not happen (e.g. `Tc` when the server refused the connection).
public struct HAProxyHTTPLog: Sendable, Equatable {
    public var client: String
    public var clientPort: Int64
    public var frontend: String
    public var backend: String
    public var server: String
    /// TR (request received), Tw (queue), Tc (connect), Tr (response), Ta (total) in ms.
    public var timers: [Int64]
    public var status: Int64
    public var bytes: Int64
    /// Four characters: why and in which state the session ended (`----` when normally).
    public var termination: String
    public var retries: Int64
    public var method: String?
    public var path: String?

    public init?(_ line: String) {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        // The client is the word before the bracketed accept date; a syslog header may precede it.
        guard let start = words.indices.prefix(8).first(where: { index in
            index + 1 < words.count && words[index + 1].hasPrefix("[") && words[index + 1].hasSuffix("]")
                && words[index].contains(":")
        }), start + 11 < words.count
        else { return nil }
        let clientWord = words[start]
        guard let colon = clientWord.lastIndex(of: ":"), let port = Int64(clientWord[clientWord.index(after: colon)...]) else { return nil }
        client = String(clientWord[..<colon])
        clientPort = port
        frontend = String(words[start + 2].hasSuffix("~") ? words[start + 2].dropLast() : words[start + 2])
        let route = words[start + 3].split(separator: "/", maxSplits: 1)
        guard route.count == 2 else { return nil }
        backend = String(route[0])
        server = String(route[1])
        let timers = words[start + 4].split(separator: "/").map { Int64($0.drop { $0 == "+" }) }
        guard timers.count == 5, timers.allSatisfy({ $0 != nil }) else { return nil }
        self.timers = timers.map { $0! }
        guard let status = Int64(words[start + 5]), let bytes = Int64(words[start + 6].drop { $0 == "+" }) else { return nil }
        self.status = status
        self.bytes = bytes
        termination = String(words[start + 9])
        guard termination.count == 4 else { return nil }
        let connections = words[start + 10].split(separator: "/")
        guard connections.count == 5, let retries = Int64(connections[4].drop { $0 == "+" }) else { return nil }
        self.retries = retries
        // The request line is the quoted tail (captured headers in braces may come before it).
        if let open = line.firstIndex(of: "\""), let close = line.lastIndex(of: "\""), open < close {
            let request = line[line.index(after: open)..<close].split(separator: " ", omittingEmptySubsequences: true)
            method = request.first.map(String.init)
            path = request.count > 1 ? String(request[1]) : nil
        }
    }

    /// As stored in `logs.fields` (what `logq run status-mix` and friends read).
    public var fields: [String: FieldValue] {
        var fields: [String: FieldValue] = [
            "client": .string(client), "frontend": .string(frontend), "backend": .string(backend), "server": .string(server),
            "status": .int(status), "bytes": .int(bytes), "termination": .string(termination), "retries": .int(retries),
            "tq": .int(timers[0]), "tw": .int(timers[1]), "tc": .int(timers[2]), "tr": .int(timers[3]), "ta": .int(timers[4]),
        ]
        if let method { fields["method"] = .string(method) }
        if let path { fields["path"] = .string(path) }
        return fields
    }
}

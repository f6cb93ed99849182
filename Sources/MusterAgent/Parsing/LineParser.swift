import MusterWire

/// How a source's lines become records (`parse:` of a source; none: each line is a record's
/// message as it is).
public enum LineParser: String, Sendable, Codable, CaseIterable {
    /// HAProxy's `option httplog` lines (see `HAProxyHTTPLog`).
    case haproxyHTTPLog = "haproxy-httplog"
    /// Docker's json-file log driver (see `ContainerLogEntry.init(dockerJSON:)`).
    case dockerJSON = "docker-json"
    /// The CRI log format of containerd and CRI-O (see `ContainerLogEntry.init(cri:)`).
    case cri
    /// An application's JSON lines (see `JSONLines`).
    case json

    /// Whether the parser joins a container runtime's partial entries into one record. Those
    /// continue in a file's next lines, so such a parser is for file sources only, and not
    /// with `multiline:` (which joins raw lines).
    public var joinsEntries: Bool {
        switch self {
        case .dockerJSON, .cri: true
        case .haproxyHTTPLog, .json: false
        }
    }

    /// A line of a parser that reads one line at a time: the record's message and fields; nil
    /// when the line is not in the parser's format (it is stored as it is, without fields).
    /// `messageKey` is `message_key:` (`json` only). A parser that `joinsEntries` reads no line
    /// alone: nil.
    public func parseLine(_ line: String, messageKey: String? = nil) -> (message: String, fields: [String: FieldValue])? {
        switch self {
        case .haproxyHTTPLog: HAProxyHTTPLog(line).map { (line, $0.fields) }
        case .json: JSONLines(messageKey: messageKey).parse(line)
        case .dockerJSON, .cri: nil
        }
    }

    /// The fields `parseLine` gives `message`; none when it is not in the format.
    public func fields(_ message: String) -> [String: FieldValue] {
        parseLine(message)?.fields ?? [:]
    }
}

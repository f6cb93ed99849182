/// Everything logq can refuse, each with a one-line message and an exit code.
public enum QueryError: Error, CustomStringConvertible, Equatable {
    case databaseMissing(String)
    case databaseUnreadable(path: String, detail: String)
    case badTime(String, String)
    case unknownNode(String, known: [String])
    case unknownSource(String, known: [String])
    case badRegex(String, String)
    case badArgument(String)
    /// The collector could not be reached or failed (`logq mark`).
    case collectorUnavailable(String, String)
    /// The collector answered with a refusal (HTTP status, its message).
    case collectorRefused(UInt, String)
    /// An export could not be written.
    case cannotWrite(path: String, detail: String)

    public var description: String {
        switch self {
        case .databaseMissing(let path):
            "database not found: \(path) (point --db or MUSTER_DB at the collector's SQLite file)"
        case .databaseUnreadable(let path, let detail):
            "cannot read database \(path): \(detail)"
        case .badTime(let text, let hint):
            "cannot read time '\(text)': \(hint)"
        case .unknownNode(let name, let known):
            "unknown node '\(name)' (known: \(known.isEmpty ? "none yet" : known.joined(separator: ", ")))"
        case .unknownSource(let name, let known):
            "unknown source '\(name)' (known: \(known.isEmpty ? "none yet" : known.joined(separator: ", ")))"
        case .badRegex(let pattern, let detail):
            "invalid --grep pattern '\(pattern)': \(detail)"
        case .badArgument(let detail):
            detail
        case .collectorUnavailable(let url, let detail):
            "collector at \(url) unavailable: \(detail) (set --collector-url or MUSTER_COLLECTOR_URL)"
        case .collectorRefused(let status, let message):
            "collector refused (HTTP \(status)): \(message)"
        case .cannotWrite(let path, let detail):
            "cannot write \(path): \(detail)"
        }
    }

    /// 66 (EX_NOINPUT) for a missing database, 65 (EX_DATAERR) for bad input, 74 for I/O,
    /// 69 (EX_UNAVAILABLE) when the collector cannot be reached, 77 (EX_NOPERM) for a bad token,
    /// 73 (EX_CANTCREAT) when an export cannot be written.
    public var exitCode: Int32 {
        switch self {
        case .databaseMissing: 66
        case .databaseUnreadable: 74
        case .collectorUnavailable: 69
        case .collectorRefused(let status, _): status == 401 ? 77 : 65
        case .cannotWrite: 73
        default: 65
        }
    }
}

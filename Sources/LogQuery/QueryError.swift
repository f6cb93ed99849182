/// Everything logq can refuse, each with a one-line message and an exit code.
public enum QueryError: Error, CustomStringConvertible, Equatable {
    case databaseMissing(String)
    case databaseUnreadable(path: String, detail: String)
    case badTime(String, String)
    case unknownNode(String, known: [String])
    case unknownSource(String, known: [String])
    case badRegex(String, String)
    case badArgument(String)

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
        }
    }

    /// 66 (EX_NOINPUT) for a missing database, 65 (EX_DATAERR) for bad input, 74 for I/O.
    public var exitCode: Int32 {
        switch self {
        case .databaseMissing: 66
        case .databaseUnreadable: 74
        default: 65
        }
    }
}

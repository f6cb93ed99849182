import MusterStore

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
    /// `logq sql`/`run`: the statement would change the store (or attach, or start a transaction).
    case readOnly(String)
    /// `logq sql`/`run`: SQLite refused the statement (its message).
    case badSQL(String)
    /// `logq run NAME`: no such file in the queries folder.
    case unknownQuery(String, known: [String])
    /// `logq run`: a required parameter was not given (query, parameter, its description).
    case missingParameter(query: String, name: String, description: String)
    /// `logq run`: a parameter the query does not declare (query, parameter, the declared ones).
    case unknownParameter(query: String, name: String, known: [String])
    /// A query file that cannot be used (no header, a bad `param:` line…).
    case badQueryFile(path: String, detail: String)
    /// `logq sql`/`run`: the statement ran longer than `--timeout` seconds and was stopped.
    case timedOut(seconds: Double)
    /// `logq export`: this many files could not be written (each was reported); the rest were.
    case exportIncomplete(directory: String, failed: Int)
    /// The store's backend does not offer what the command needs (a SQL console, say).
    case unsupported(String)

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
        case .readOnly(let detail):
            "the database is opened read-only: \(detail)"
        case .badSQL(let message):
            "SQL error: \(message.split(whereSeparator: \.isNewline).joined(separator: " "))"
        case .unknownQuery(let name, let known):
            "unknown query '\(name)' (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case .missingParameter(let query, let name, let description):
            "query \(query) needs --param \(name)=VALUE: \(description)"
        case .unknownParameter(let query, let name, let known):
            "query \(query) has no parameter '\(name)' (its parameters: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case .badQueryFile(let path, let detail):
            "query file \(path): \(detail)"
        case .timedOut(let seconds):
            "the statement ran longer than \(Self.seconds(seconds)) and was stopped (raise --timeout, or 0 for no limit)"
        case .exportIncomplete(let directory, let failed):
            "export to \(directory) incomplete: \(failed) file\(failed == 1 ? "" : "s") could not be written (listed above); the others were"
        case .unsupported(let detail):
            "this store does not offer \(detail)"
        }
    }

    /// `5 s`, `0.5 s`.
    private static func seconds(_ value: Double) -> String {
        (value.rounded() == value && value < 1e15 ? String(Int64(value)) : String(value)) + " s"
    }

    /// 66 (EX_NOINPUT) for a missing database, 65 (EX_DATAERR) for bad input (arguments,
    /// times, SQL), 74 for I/O, 69 (EX_UNAVAILABLE) when the collector cannot be reached, 77
    /// (EX_NOPERM) for a bad token, 73 (EX_CANTCREAT) when an export cannot be written (or only
    /// partly), 75 (EX_TEMPFAIL) when a statement hit `--timeout` (it may finish with more time),
    /// 69 (EX_UNAVAILABLE) too when the store's backend lacks what the command needs.
    public var exitCode: Int32 {
        switch self {
        case .databaseMissing: 66
        case .databaseUnreadable: 74
        case .collectorUnavailable, .unsupported: 69
        case .collectorRefused(let status, _): status == 401 ? 77 : 65
        case .cannotWrite, .exportIncomplete: 73
        case .timedOut: 75
        case .badTime, .unknownNode, .unknownSource, .badRegex, .badArgument, .readOnly, .badSQL, .unknownQuery,
            .missingParameter, .unknownParameter, .badQueryFile:
            65
        }
    }
}

extension QueryError {
    /// A store's refusal in logq's words, with logq's exit codes: the same whatever the backend.
    public init(_ error: StoreError) {
        switch error {
        case .missing(let location): self = .databaseMissing(location)
        case .unreadable(let location, let detail): self = .databaseUnreadable(path: location, detail: detail)
        case .unknownNode(let name, let known): self = .unknownNode(name, known: known)
        case .unknownSource(let name, let known): self = .unknownSource(name, known: known)
        case .invalidPattern(let pattern, let detail): self = .badRegex(pattern, detail)
        case .nothingToMatch(let text):
            self = .badArgument("--match '\(text)' has no letters or digits to search for; use --grep for punctuation")
        case .readOnly(let detail): self = .readOnly(detail)
        case .invalidStatement(let message): self = .badSQL(message)
        case .timedOut(let seconds): self = .timedOut(seconds: seconds)
        case .timeLimitOutOfRange(let seconds, let longest):
            self = .badArgument("--timeout must be between 0 (no limit) and \(Int(longest)) seconds, not \(seconds)")
        case .unsupported(let detail): self = .unsupported(detail)
        }
    }

    /// Runs a call to the store, its refusal in logq's words.
    static func asking<T>(_ store: () throws(StoreError) -> T) throws(QueryError) -> T {
        do {
            return try store()
        } catch {
            throw QueryError(error)
        }
    }
}

/// Everything a store can refuse or fail at, whatever the backend, each with a message a person
/// can act on. Callers with their own wording (logq's `QueryError`, with its exit codes) map
/// case by case; `description` is for everyone else (a log line).
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// Nothing is at `location` (for the SQLite backend: no file at that path).
    case missing(location: String)
    /// Something is at `location` but cannot be read as a store: not a Muster store, damaged,
    /// locked, no permission. `detail` is the backend's reason.
    case unreadable(location: String, detail: String)
    /// A search named a node (or a source) that no stored line has; `known` are the names that
    /// are stored, sorted. A typo is an error, not an empty answer.
    case unknownNode(String, known: [String])
    case unknownSource(String, known: [String])
    /// A line pattern that is not a regular expression (ICU syntax): the pattern, and why.
    case invalidPattern(String, detail: String)
    /// Words to match (`TextMatch`) that hold no letter or digit.
    case nothingToMatch(String)
    /// `SQLConsole`: the statement would change the store, attach another, or start a
    /// transaction; says what was refused.
    case readOnly(String)
    /// `SQLConsole`: the backend refused the statement (its own message).
    case invalidStatement(String)
    /// `SQLConsole`: the statement worked longer than its time limit and was stopped.
    case timedOut(seconds: Double)
    /// `SQLConsole`: a time limit that is not a number of seconds in 0 (no limit)...`longest`.
    case timeLimitOutOfRange(Double, longest: Double)
    /// The backend does not offer this capability (a SQL console, say); `detail` names it.
    case unsupported(String)

    public var description: String {
        switch self {
        case .missing(let location):
            "no store at \(location)"
        case .unreadable(let location, let detail):
            "cannot read the store at \(location): \(detail)"
        case .unknownNode(let name, let known):
            "unknown node '\(name)' (known: \(Self.list(known)))"
        case .unknownSource(let name, let known):
            "unknown source '\(name)' (known: \(Self.list(known)))"
        case .invalidPattern(let pattern, let detail):
            "invalid pattern '\(pattern)': \(detail)"
        case .nothingToMatch(let text):
            "'\(text)' has no letters or digits to search for"
        case .readOnly(let detail):
            "the store is read-only here: \(detail)"
        case .invalidStatement(let message):
            "the statement was refused: \(message)"
        case .timedOut(let seconds):
            "the statement ran longer than \(seconds) s and was stopped"
        case .timeLimitOutOfRange(let seconds, let longest):
            "a time limit must be between 0 (no limit) and \(longest) seconds, not \(seconds)"
        case .unsupported(let detail):
            "this store does not offer \(detail)"
        }
    }

    private static func list(_ names: [String]) -> String {
        names.isEmpty ? "none yet" : names.joined(separator: ", ")
    }
}

import MusterWire

/// What counts as an error line, for `logq hist --errors` and `queries/errors-per-minute.sql`
/// (through the SQL function `is_error(source, message, status)`), defined once here for every
/// backend.
///
/// - A line with a parsed HTTP status (its `status` field, from HAProxy's httplog) is an
///   error when the status is 5xx, whatever its text says (a request for `/error` is not one).
/// - Any other line is an error when it says `error`, `fail`, `fatal`, `panic`, `exception`,
///   `critical`, `[err]`, `[alert]` or `[emerg]` (any case), or carries an HTTP 5xx status
///   followed by a number: ` 503 8979` in an unparsed httplog line, ` 500 1.04ms` in the demo
///   web app's.
/// - The membership journal (source `events`) is data about the cluster, not a log: never.
public enum ErrorRule {
    public static let words = ["error", "fail", "fatal", "panic", "exception", "critical", "[err]", "[alert]", "[emerg]"]

    public static func matches(source: String?, message: String, status: Int64?) -> Bool {
        if source == JournalEntry.sourceID { return false }
        if let status { return (500...599).contains(status) }
        let lowered = message.lowercased()
        return words.contains { lowered.contains($0) } || hasServerErrorStatus(message)
    }

    /// ` 5dd ` followed by a digit, anywhere in the line.
    static func hasServerErrorStatus(_ message: String) -> Bool {
        let bytes = Array(message.utf8)
        guard bytes.count >= 6 else { return false }
        func digit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
        for index in 0...(bytes.count - 6)
        where bytes[index] == 32 && bytes[index + 1] == 53 && digit(bytes[index + 2]) && digit(bytes[index + 3])
            && bytes[index + 4] == 32 && digit(bytes[index + 5])
        {
            return true
        }
        return false
    }
}

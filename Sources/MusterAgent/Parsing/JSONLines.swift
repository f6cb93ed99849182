import MusterWire

/// An application's JSON log lines (`parse: json`): one object per line, such as
/// `{"level":"info","msg":"listening","port":8080}`.
///
/// The message key's value becomes the record's message (its JSON text when it is not a
/// string); every other top-level key becomes a field: strings as strings, integers as `.int`,
/// other numbers as `.double`, booleans as `.bool`, objects and arrays as their compact JSON
/// text. Keys whose value is `null` are left out. An object without the message key (or with
/// it `null`) keeps the whole line as its message, with all its keys as fields.
public struct JSONLines: Sendable {
    /// Tried in this order when no `message_key` is configured.
    public static let defaultMessageKeys = ["msg", "message", "log"]

    /// The keys that may hold the message, first present wins.
    public let messageKeys: [String]

    /// `messageKey`: the one key holding the message; nil: the first of `defaultMessageKeys`.
    public init(messageKey: String? = nil) {
        messageKeys = messageKey.map { [$0] } ?? Self.defaultMessageKeys
    }

    /// The line's message and fields; nil when the line is not exactly one JSON object.
    public func parse(_ line: String) -> (message: String, fields: [String: FieldValue])? {
        JSONScanner.scanning(line, brokenSurrogatePair: .replaced) { scanner in
            var fields: [String: FieldValue] = [:]
            // The best message candidate so far, with its rank in `messageKeys`.
            var message: (rank: Int, key: String, value: FieldValue)?
            do {
                try scanner.wholeObject { key, scanner throws(JSONScanner.Failure) in
                    guard let value = try scanner.anyFieldValue() else { return }
                    if let rank = messageKeys.firstIndex(of: key), rank <= message?.rank ?? Int.max {
                        // A candidate of a lower rank goes back among the fields.
                        if let previous = message, previous.rank != rank { fields[previous.key] = previous.value }
                        message = (rank, key, value)
                    } else {
                        fields[key] = value
                    }
                }
            } catch {
                return nil
            }
            switch message?.value {
            case nil: return (line, fields)
            case .string(let text): return (text, fields)
            case .int(let number): return (String(number), fields)
            case .double(let number): return ("\(number)", fields)
            case .bool(let flag): return (flag ? "true" : "false", fields)
            }
        }
    }
}

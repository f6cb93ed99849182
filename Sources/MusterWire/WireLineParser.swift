/// Parses one NDJSON line of a batch into its keys.
///
/// Hand-written for the ingest hot path: Foundation's `JSONDecoder` cost ~4 µs a line,
/// which alone capped a collector core at ~250k lines/s before any SQLite work. This parser
/// accepts exactly JSON (RFC 8259) objects (read with `JSONScanner`), reads the keys of
/// docs/wire.md, and skips any other key with its value, so senders may add fields.
enum WireLineParser {
    /// The keys of one line; nil where the line does not have the key (or has it as `null`).
    struct Line {
        var agent: String?
        var node: String?
        var src: String?
        var gen: String?
        var off: Int64?
        var t: Int64?
        var msg: String?
        var fields: [String: FieldValue]?
    }

    typealias Failure = JSONScanner.Failure

    static func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Line {
        var scanner = JSONScanner(bytes, brokenSurrogatePair: .invalid)
        var line = Line()
        try scanner.wholeObject { key, scanner throws(Failure) in try value(of: key, from: &scanner, into: &line) }
        return line
    }

    // MARK: Values for known keys

    private static func value(of key: String, from scanner: inout JSONScanner, into line: inout Line) throws(Failure) {
        if scanner.take("null") { return }
        switch key {
        case "agent": line.agent = try stringValue(key, from: &scanner)
        case "node": line.node = try stringValue(key, from: &scanner)
        case "src": line.src = try stringValue(key, from: &scanner)
        case "gen": line.gen = try stringValue(key, from: &scanner)
        case "msg": line.msg = try stringValue(key, from: &scanner)
        case "off":
            guard !scanner.atString else { throw .field(key, "has the wrong type") }
            line.off = try integerValue(key, from: &scanner)
        case "t":
            if scanner.atString {
                let text = try scanner.string()
                guard let nanos = Timestamp.parseRFC3339(text) else {
                    throw .field(key, "is neither integer nanoseconds nor an RFC 3339 time in the years \(Timestamp.supportedYears.lowerBound)-\(Timestamp.supportedYears.upperBound)")
                }
                line.t = nanos
            } else {
                let nanos = try integerValue(key, from: &scanner)
                guard Timestamp.supportedRange.contains(nanos) else {
                    throw .field(key, "is outside the years \(Timestamp.supportedYears.lowerBound)-\(Timestamp.supportedYears.upperBound)")
                }
                line.t = nanos
            }
        case "f": line.fields = try fieldsValue(from: &scanner)
        default: try scanner.skipValue()
        }
    }

    private static func stringValue(_ key: String, from scanner: inout JSONScanner) throws(Failure) -> String {
        guard scanner.atString else {
            try scanner.skipValue()
            throw .field(key, "has the wrong type")
        }
        return try scanner.string()
    }

    private static func integerValue(_ key: String, from scanner: inout JSONScanner) throws(Failure) -> Int64 {
        guard let number = try scanner.number() else { throw .field(key, "has the wrong type") }
        guard case .int(let value) = number else { throw .field(key, "must be an integer") }
        return value
    }

    private static func fieldsValue(from scanner: inout JSONScanner) throws(Failure) -> [String: FieldValue] {
        guard scanner.peek() == UInt8(ascii: "{") else { throw .field("f", "has the wrong type") }
        var fields: [String: FieldValue] = [:]
        try scanner.members { name, scanner throws(Failure) in
            if scanner.atString {
                fields[name] = .string(try scanner.string())
            } else if scanner.take("true") {
                fields[name] = .bool(true)
            } else if scanner.take("false") {
                fields[name] = .bool(false)
            } else if let number = try scanner.number() {
                fields[name] = number
            } else {
                throw .field("f." + name, "must be a string, number or boolean")
            }
        }
        return fields
    }
}

/// Parses one NDJSON line of a batch into its keys.
///
/// Hand-written for the ingest hot path: Foundation's `JSONDecoder` cost ~4 µs a line,
/// which alone capped a collector core at ~250k lines/s before any SQLite work. This parser
/// accepts exactly JSON (RFC 8259) objects, reads the keys of docs/wire.md, and skips any
/// other key with its value, so senders may add fields.
struct WireLineParser {
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

    enum Failure: Error {
        case syntax(String)
        case field(String, String)
    }

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Line {
        var parser = WireLineParser(bytes)
        var line = Line()
        parser.skipWhitespace()
        try parser.expect(UInt8(ascii: "{"), "a JSON object")
        parser.skipWhitespace()
        if parser.peek() == UInt8(ascii: "}") {
            parser.index += 1
        } else {
            while true {
                parser.skipWhitespace()
                let key = try parser.parseKey()
                parser.skipWhitespace()
                try parser.expect(UInt8(ascii: ":"), "':' after a key")
                parser.skipWhitespace()
                try parser.parseValue(for: key, into: &line)
                parser.skipWhitespace()
                guard let next = parser.peek() else { throw .syntax("unterminated object") }
                parser.index += 1
                if next == UInt8(ascii: "}") { break }
                guard next == UInt8(ascii: ",") else { throw .syntax("expected ',' or '}' at column \(parser.index)") }
            }
        }
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw .syntax("unexpected text after the object at column \(parser.index + 1)") }
        return line
    }

    // MARK: Values for known keys

    private mutating func parseValue(for key: String, into line: inout Line) throws(Failure) {
        if peekLiteral("null") {
            index += 4
            return
        }
        switch key {
        case "agent": line.agent = try stringValue(key)
        case "node": line.node = try stringValue(key)
        case "src": line.src = try stringValue(key)
        case "gen": line.gen = try stringValue(key)
        case "msg": line.msg = try stringValue(key)
        case "off":
            guard peek() != UInt8(ascii: "\"") else { throw .field(key, "has the wrong type") }
            line.off = try integerValue(key)
        case "t":
            if peek() == UInt8(ascii: "\"") {
                let text = try parseString()
                guard let nanos = Timestamp.parseRFC3339(text) else {
                    throw .field(key, "is neither integer nanoseconds nor an RFC 3339 time in the years \(Timestamp.supportedYears.lowerBound)-\(Timestamp.supportedYears.upperBound)")
                }
                line.t = nanos
            } else {
                let nanos = try integerValue(key)
                guard Timestamp.supportedRange.contains(nanos) else {
                    throw .field(key, "is outside the years \(Timestamp.supportedYears.lowerBound)-\(Timestamp.supportedYears.upperBound)")
                }
                line.t = nanos
            }
        case "f": line.fields = try fieldsValue()
        default: try skipValue(depth: 0)
        }
    }

    private mutating func stringValue(_ key: String) throws(Failure) -> String {
        guard peek() == UInt8(ascii: "\"") else {
            try skipValue(depth: 0)
            throw .field(key, "has the wrong type")
        }
        return try parseString()
    }

    private mutating func integerValue(_ key: String) throws(Failure) -> Int64 {
        guard let number = try parseNumber() else { throw .field(key, "has the wrong type") }
        guard case .int(let value) = number else { throw .field(key, "must be an integer") }
        return value
    }

    private mutating func fieldsValue() throws(Failure) -> [String: FieldValue] {
        guard peek() == UInt8(ascii: "{") else { throw .field("f", "has the wrong type") }
        index += 1
        var fields: [String: FieldValue] = [:]
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return fields
        }
        while true {
            skipWhitespace()
            let name = try parseKey()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after a key")
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: "\""): fields[name] = .string(try parseString())
            case UInt8(ascii: "t") where peekLiteral("true"):
                index += 4
                fields[name] = .bool(true)
            case UInt8(ascii: "f") where peekLiteral("false"):
                index += 5
                fields[name] = .bool(false)
            default:
                guard let number = try parseNumber() else {
                    throw .field("f." + name, "must be a string, number or boolean")
                }
                fields[name] = number
            }
            skipWhitespace()
            guard let next = peek() else { throw .syntax("unterminated object") }
            index += 1
            if next == UInt8(ascii: "}") { return fields }
            guard next == UInt8(ascii: ",") else { throw .syntax("expected ',' or '}' at column \(index)") }
        }
    }

    // MARK: JSON pieces

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private func peekLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] { return false }
        return true
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: StaticString) throws(Failure) {
        guard peek() == byte else { throw .syntax("expected \(what) at column \(index + 1)") }
        index += 1
    }

    private mutating func parseKey() throws(Failure) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw .syntax("expected a quoted key at column \(index + 1)") }
        return try parseString()
    }

    /// A JSON string starting at the opening quote. The whole body was checked to be UTF-8
    /// before parsing, so only escapes and control characters need attention here.
    private mutating func parseString() throws(Failure) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw .syntax("unescaped control character in a string at column \(index + 1)") }
            index += 1
        }
        var buffer = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: buffer, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard let escaped = peek() else { break }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escaped)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar), peekLiteral("\\u") {
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw .syntax("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    // A lone surrogate cannot be represented: replaced, as String does.
                    let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    buffer.append(contentsOf: String(character).utf8)
                default:
                    throw .syntax("invalid escape '\\\(Character(Unicode.Scalar(escaped)))' at column \(index)")
                }
            default:
                if byte < 0x20 { throw .syntax("unescaped control character in a string at column \(index + 1)") }
                buffer.append(byte)
                index += 1
            }
        }
        throw .syntax("unterminated string")
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .syntax("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case 48...57: digit = UInt32(byte - 48)
            case 97...102: digit = UInt32(byte - 87)
            case 65...70: digit = UInt32(byte - 55)
            default: throw .syntax("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// A JSON number: `.int` when it has no fraction or exponent and fits in 64 bits,
    /// `.double` otherwise; nil (nothing consumed) when the value is not a number.
    private mutating func parseNumber() throws(Failure) -> FieldValue? {
        let start = index
        var negative = false
        if peek() == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard let first = peek(), first >= 48, first <= 57 else {
            index = start
            return nil
        }
        var magnitude: UInt64 = 0
        var overflow = false
        if first == 48 {
            index += 1
        } else {
            while let digit = peek(), digit >= 48, digit <= 57 {
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(digit - 48))
                overflow = overflow || o1 || o2
                magnitude = sum
                index += 1
            }
        }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard let digit = peek(), digit >= 48, digit <= 57 else { throw .syntax("invalid number at column \(start + 1)") }
            while let digit = peek(), digit >= 48, digit <= 57 { index += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            guard let digit = peek(), digit >= 48, digit <= 57 else { throw .syntax("invalid number at column \(start + 1)") }
            while let digit = peek(), digit >= 48, digit <= 57 { index += 1 }
        }
        if isInteger, !overflow {
            if negative, magnitude <= UInt64(Int64.max) + 1 {
                return .int(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
            }
            if !negative, magnitude <= UInt64(Int64.max) { return .int(Int64(magnitude)) }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text) else { throw .syntax("invalid number at column \(start + 1)") }
        return .double(value)
    }

    /// Skips any JSON value (for keys the wire format does not define).
    private mutating func skipValue(depth: Int) throws(Failure) {
        guard depth < 64 else { throw .syntax("nesting deeper than 64 levels") }
        guard let byte = peek() else { throw .syntax("expected a value") }
        switch byte {
        case UInt8(ascii: "\""): _ = try parseString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            index += 1
            skipWhitespace()
            if peek() == close {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                if close == UInt8(ascii: "}") {
                    _ = try parseKey()
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipWhitespace()
                }
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek() else { throw .syntax("unterminated value") }
                index += 1
                if next == close { return }
                guard next == UInt8(ascii: ",") else { throw .syntax("expected ',' at column \(index)") }
            }
        case UInt8(ascii: "t") where peekLiteral("true"): index += 4
        case UInt8(ascii: "f") where peekLiteral("false"): index += 5
        case UInt8(ascii: "n") where peekLiteral("null"): index += 4
        default:
            guard try parseNumber() != nil else { throw .syntax("unexpected character at column \(index + 1)") }
        }
    }
}

/// Reads JSON (RFC 8259) straight from UTF-8 bytes, one token or value at a time: the one
/// byte-level JSON reader under the collector's batch lines (`WireLineParser`) and the agent's
/// JSON log lines (`JSONLines`, Docker's json-file entries).
///
/// Hand-written because both run on every line: Foundation's `JSONDecoder` cost ~4 µs a wire
/// line and `JSONSerialization` ~8 µs a log line, against well under 2 µs here. It accepts
/// exactly JSON; nesting is limited to `maxDepth` levels, so no input can exhaust the stack.
/// Invalid UTF-8 inside a string becomes U+FFFD (the collector checks a whole batch is UTF-8
/// before parsing it). Errors say what was expected and at which column (1-based byte offset),
/// so that a sender can find its mistake.
package struct JSONScanner {
    package enum Failure: Error, Equatable {
        /// The text is not JSON, or not the shape the reader takes: what, and where.
        case syntax(String)
        /// A key's value is JSON of the wrong kind for the reader: the key, and what is wrong.
        /// Only a reader's `members` closure throws it; the scanner itself never does.
        case field(String, String)
    }

    /// What a `\u` escape of a high surrogate followed by one that is not a low surrogate becomes.
    package enum BrokenSurrogatePair {
        /// An error: no JSON encoder writes one (what the collector takes from its agents).
        case invalid
        /// U+FFFD, and the next escape stands on its own, as a lone surrogate anywhere else does
        /// (what an application wrote is kept rather than the line lost).
        case replaced
    }

    private static let maxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private let brokenSurrogatePair: BrokenSurrogatePair
    /// The offset of the next byte to read.
    private var index = 0

    package init(_ bytes: UnsafeRawBufferPointer, brokenSurrogatePair: BrokenSurrogatePair) {
        self.bytes = bytes
        self.brokenSurrogatePair = brokenSurrogatePair
    }

    /// `body` with a scanner over the string's UTF-8 bytes (a native string's own storage;
    /// another string is copied once).
    package static func scanning<Result>(
        _ text: String, brokenSurrogatePair: BrokenSurrogatePair, _ body: (inout JSONScanner) -> Result
    ) -> Result {
        var text = text
        return text.withUTF8 { bytes in
            var scanner = JSONScanner(UnsafeRawBufferPointer(bytes), brokenSurrogatePair: brokenSurrogatePair)
            return body(&scanner)
        }
    }

    // MARK: Objects

    /// Reads the whole text as exactly one JSON object (whitespace around it allowed), calling
    /// `member` for each of its members as `members` does.
    package mutating func wholeObject(_ member: (String, inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        skipWhitespace()
        try members(member)
        skipWhitespace()
        guard index == bytes.count else { throw .syntax("unexpected text after the object at column \(index + 1)") }
    }

    /// Reads the object at the scanner (at its `{`), calling `member` with each key, the scanner
    /// standing at the key's value: `member` must consume exactly that value.
    package mutating func members(_ member: (String, inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "{"), "a JSON object")
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let key = try key()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after a key")
            skipWhitespace()
            try member(key, &self)
            skipWhitespace()
            guard let next = peek() else { throw .syntax("unterminated object") }
            index += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw .syntax("expected ',' or '}' at column \(index)") }
        }
    }

    // MARK: Values

    /// The byte at the scanner; nil at the end of the text.
    package func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    /// Whether the value at the scanner is a string.
    package var atString: Bool { peek() == UInt8(ascii: "\"") }

    /// Consumes `literal` (`true`, `false`, `null`) when the text continues with it.
    // Inlined: asked of every key's value, and a call costs more than the comparison.
    @inline(__always)
    package mutating func take(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] { return false }
        index += count
        return true
    }

    /// The string at the scanner (at its opening quote), unescaped.
    package mutating func string() throws(Failure) -> String {
        index += 1
        var start = index
        try skipPlainText()
        // Most strings have no escapes: one pass, one copy.
        if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            index += 1
            return text
        }
        // Escapes (a log line's quotes): the plain runs between them are copied whole.
        var buffer: [UInt8] = []
        while true {
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            guard index < bytes.count else { throw .syntax("unterminated string") }
            index += 1
            if bytes[index - 1] == UInt8(ascii: "\"") { return String(decoding: buffer, as: UTF8.self) }
            try unescape(into: &buffer)
            start = index
            try skipPlainText()
        }
    }

    /// Moves the scanner past string bytes that stand for themselves, to the next quote or
    /// backslash (or the end of the text); throws at a control character, which JSON requires
    /// escaped.
    private mutating func skipPlainText() throws(Failure) {
        index = JSONPlainRun.end(in: bytes, from: index)
        if index < bytes.count, bytes[index] < 0x20 {
            throw .syntax("unescaped control character in a string at column \(index + 1)")
        }
    }

    /// A JSON number: `.int` when it has no fraction or exponent and fits in 64 bits, `.double`
    /// otherwise (infinite when its exponent is past `Double`'s range); nil (nothing consumed)
    /// when the value is not a number.
    package mutating func number() throws(Failure) -> FieldValue? {
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
            guard skipDigits() else { throw .syntax("invalid number at column \(start + 1)") }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            guard skipDigits() else { throw .syntax("invalid number at column \(start + 1)") }
        }
        if isInteger, !overflow {
            if negative, magnitude <= UInt64(Int64.max) + 1 {
                return .int(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
            }
            if !negative, magnitude <= UInt64(Int64.max) { return .int(Int64(magnitude)) }
        }
        guard let value = Double(text(from: start)) else { throw .syntax("invalid number at column \(start + 1)") }
        return .double(value)
    }

    /// Skips any JSON value.
    package mutating func skipValue(depth: Int = 0) throws(Failure) {
        guard depth < Self.maxDepth else { throw .syntax("nesting deeper than \(Self.maxDepth) levels") }
        guard let byte = peek() else { throw .syntax("expected a value") }
        switch byte {
        case UInt8(ascii: "\""): try skipString()
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
                    try expectKey()
                    try skipString()
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
        default:
            if take("true") || take("false") || take("null") { return }
            guard try number() != nil else { throw .syntax("unexpected character at column \(index + 1)") }
        }
    }

    /// The value at the scanner as JSON text without the whitespace between its tokens.
    package mutating func compactText() throws(Failure) -> String {
        let start = index
        try skipValue()
        var compact: [UInt8] = []
        compact.reserveCapacity(index - start)
        var inString = false
        var escaped = false
        for byte in bytes[start..<index] {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                continue
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            }
            compact.append(byte)
        }
        return String(decoding: compact, as: UTF8.self)
    }

    /// The value at the scanner, whatever JSON it is, as a field: strings as strings, integers
    /// that fit in 64 bits as `.int`, other finite numbers as `.double` and infinite ones
    /// (`1e999`) as their text, booleans as `.bool`, objects and arrays as their `compactText`;
    /// nil for `null`.
    package mutating func anyFieldValue() throws(Failure) -> FieldValue? {
        switch peek() {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "{"), UInt8(ascii: "["): return .string(try compactText())
        default:
            if take("true") { return .bool(true) }
            if take("false") { return .bool(false) }
            if take("null") { return nil }
            let start = index
            guard let number = try number() else { throw .syntax("unexpected character at column \(index + 1)") }
            if case .double(let value) = number, !value.isFinite { return .string(text(from: start)) }
            return number
        }
    }

    // MARK: Tokens

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Consumes `byte`; `what` names it in the error when the text has something else.
    private mutating func expect(_ byte: UInt8, _ what: StaticString) throws(Failure) {
        guard peek() == byte else { throw .syntax("expected \(what) at column \(index + 1)") }
        index += 1
    }

    private mutating func key() throws(Failure) -> String {
        try expectKey()
        return try string()
    }

    private func expectKey() throws(Failure) {
        guard atString else { throw .syntax("expected a quoted key at column \(index + 1)") }
    }

    /// Checks the string at the scanner as `string()` does, without building it.
    private mutating func skipString() throws(Failure) {
        index += 1
        var scratch: [UInt8] = []
        while true {
            try skipPlainText()
            guard index < bytes.count else { throw .syntax("unterminated string") }
            index += 1
            if bytes[index - 1] == UInt8(ascii: "\"") { return }
            // Checked, not kept: the escape's meaning is not needed.
            scratch.removeAll(keepingCapacity: true)
            try unescape(into: &scratch)
        }
    }

    /// The escape after a backslash (the scanner past the backslash), appended to `buffer` as UTF-8.
    private mutating func unescape(into buffer: inout [UInt8]) throws(Failure) {
        // Nothing after the backslash: the string is unterminated, which the caller reports.
        guard let escaped = peek() else { return }
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
            if (0xD800...0xDBFF).contains(scalar), bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"),
                bytes[index + 1] == UInt8(ascii: "u")
            {
                let resume = index
                index += 2
                let low = try hex4()
                if (0xDC00...0xDFFF).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    guard brokenSurrogatePair == .replaced else { throw .syntax("invalid surrogate pair") }
                    index = resume
                }
            }
            // A lone surrogate has no UTF-8 form: replaced, as String does with invalid bytes.
            buffer.append(contentsOf: String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8)
        default:
            throw .syntax("invalid escape '\\\(Character(Unicode.Scalar(escaped)))' at column \(index)")
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard bytes.count - index >= 4 else { throw .syntax("truncated \\u escape") }
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

    /// Skips one or more digits; false when there is none.
    private mutating func skipDigits() -> Bool {
        let start = index
        while let digit = peek(), digit >= 48, digit <= 57 { index += 1 }
        return index > start
    }

    private func text(from start: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }
}

extension JSONScanner.Failure: CustomStringConvertible {
    /// The detail, after the key it concerns when there is one.
    package var description: String {
        switch self {
        case .syntax(let detail): detail
        case .field(let key, let detail): "'\(key)': \(detail)"
        }
    }
}

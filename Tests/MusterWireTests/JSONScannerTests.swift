import Testing

@testable import MusterWire

/// Strings are scanned sixteen bytes at a time while no byte is special: an escape, a closing
/// quote or a control character must be found at every position of a block, and across blocks.
@Suite struct JSONScannerStringTests {
    func scan(_ json: String) throws -> String {
        try scanWithRest(json).string
    }

    /// The string at the start of `json`, and the byte the scanner stands at after it.
    func scanWithRest(_ json: String) throws -> (string: String, next: UInt8?) {
        try JSONScanner.scanning(json, brokenSurrogatePair: .invalid) { scanner in
            Result { () throws(JSONScanner.Failure) in
                let string = try scanner.string()
                return (string, scanner.peek())
            }
        }.get()
    }

    /// The keys of the object `json`, every value skipped.
    func skipValues(_ json: String) throws -> [String] {
        try JSONScanner.scanning(json, brokenSurrogatePair: .invalid) { scanner in
            Result { () throws(JSONScanner.Failure) in
                var keys: [String] = []
                try scanner.wholeObject { key, scanner throws(JSONScanner.Failure) in
                    keys.append(key)
                    try scanner.skipValue()
                }
                return keys
            }
        }.get()
    }

    /// (the escape as JSON text, what it stands for)
    static let escapes: [(String, String)] = [
        (#"\""#, "\""), (#"\\"#, "\\"), (#"\n"#, "\n"), (#"\u00e9"#, "é"), (#"\ud83c\udf89"#, "🎉"), ("é", "é"),
    ]

    /// `body(before, after)` for one special byte placed at every position of texts of up to 40
    /// bytes: before, in and after the first 16-byte block, and across two.
    func everyPlacement(_ body: (String, String) throws -> Void) rethrows {
        for length in 0..<40 {
            for position in 0...length {
                try body(String(repeating: "a", count: position), String(repeating: "b", count: length - position))
            }
        }
    }

    @Test func everyEscapeAtEveryPositionAcrossTwoBlocks() throws {
        try everyPlacement { (before: String, after: String) throws in
            for (escape, meaning) in Self.escapes {
                let decoded = try scan("\"\(before)\(escape)\(after)\"")
                #expect(decoded == before + meaning + after, "\(before.count) + \(escape) + \(after.count)")
            }
        }
    }

    /// (a character, how `JSONText` writes it): the writer's side of the same test.
    static let written: [(String, String)] = [
        ("\"", #"\""#), ("\\", #"\\"#), ("\n", #"\n"#), ("\r", #"\r"#), ("\t", #"\t"#), ("\u{01}", #"\u0001"#),
        ("\u{1F}", #"\u001f"#), (" ", " "), ("é", "é"), ("\u{7F}", "\u{7F}"),
    ]

    @Test func everyCharacterAtEveryPositionIsWrittenAsJSONWantsAndReadBack() throws {
        try everyPlacement { (before: String, after: String) throws in
            for (character, json) in Self.written {
                let quoted = JSONText.quoted(before + character + after)
                #expect(quoted == "\"\(before)\(json)\(after)\"", "\(before.count) + \(json) + \(after.count)")
                #expect(try scan(quoted) == before + character + after)
            }
        }
        #expect(JSONText.quoted("") == "\"\"")
    }

    @Test func stringsOfEveryLengthEndAtTheirClosingQuote() throws {
        for length in 0..<40 {
            let plain = String(repeating: "x", count: length)
            let scanned = try scanWithRest("\"\(plain)\" \"next\"")
            #expect(scanned.string == plain)
            #expect(scanned.next == UInt8(ascii: " "), "length \(length)")
            let escaped = try scanWithRest("\"\(plain)\\\"\(plain)\" \"next\"")
            #expect(escaped.string == plain + "\"" + plain)
            #expect(escaped.next == UInt8(ascii: " "), "length \(length)")
        }
    }

    @Test func skippedStringsEndAtTheirClosingQuoteToo() throws {
        for length in 0..<40 {
            let plain = String(repeating: "x", count: length)
            #expect(try skipValues(#"{"a":"\#(plain)","b":"\#(plain)\"\#(plain)","c":1}"#) == ["a", "b", "c"])
            #expect(throws: JSONScanner.Failure.syntax("unterminated string")) {
                try skipValues("{\"a\":\"\(plain)")
            }
        }
    }

    /// JSON wants U+0000-U+001F escaped, and only those.
    @Test func theControlCharacterBoundaryIsBelowSpace() throws {
        for length in 16..<34 {
            let plain = String(repeating: "a", count: length)
            #expect(throws: JSONScanner.Failure.self) { try scan("\"\(plain)\u{1F}\"") }
            #expect(try scan("\"\(plain) \u{7F}\u{80}é\"") == plain + " \u{7F}\u{80}é")
        }
    }

    @Test func aControlCharacterIsRefusedWhereverItStands() {
        for length in 1..<40 {
            for position in 0..<length {
                var bytes = Array(repeating: UInt8(ascii: "a"), count: length)
                bytes[position] = 0x09
                let json = "\"" + String(decoding: bytes, as: UTF8.self) + "\""
                // Columns are 1-based and count the opening quote.
                #expect(throws: JSONScanner.Failure.syntax("unescaped control character in a string at column \(position + 2)")) {
                    try scan(json)
                }
            }
        }
    }

    @Test func anUnterminatedStringIsRefusedAtAnyLength() {
        for length in 0..<40 {
            for tail in ["", #"\"#, #"\"x"#] {
                #expect(throws: JSONScanner.Failure.syntax("unterminated string")) {
                    try scan("\"" + String(repeating: "a", count: length) + tail)
                }
            }
        }
    }
}

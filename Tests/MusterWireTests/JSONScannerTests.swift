import Testing

@testable import MusterWire

/// Strings are scanned sixteen bytes at a time while no byte is special: an escape, a closing
/// quote or a control character must be found at every position of a block, and across blocks.
@Suite struct JSONScannerStringTests {
    func scan(_ json: String) throws -> String {
        var text = json
        return try text.withUTF8 { bytes in
            var scanner = JSONScanner(UnsafeRawBufferPointer(bytes), brokenSurrogatePair: .invalid)
            return try scanner.string()
        }
    }

    /// (the escape as JSON text, what it stands for)
    static let escapes: [(String, String)] = [
        (#"\""#, "\""), (#"\\"#, "\\"), (#"\n"#, "\n"), (#"\u00e9"#, "é"), (#"\ud83c\udf89"#, "🎉"), ("é", "é"),
    ]

    @Test func everyEscapeAtEveryPositionAcrossTwoBlocks() throws {
        for length in 0..<40 {
            for position in 0...length {
                for (escape, meaning) in Self.escapes {
                    let before = String(repeating: "a", count: position)
                    let after = String(repeating: "b", count: length - position)
                    let decoded = try scan("\"\(before)\(escape)\(after)\"")
                    #expect(decoded == before + meaning + after, "length \(length), position \(position), \(escape)")
                }
            }
        }
    }

    @Test func plainStringsOfEveryLengthEndAtTheirQuote() throws {
        for length in 0..<40 {
            let plain = String(repeating: "x", count: length)
            #expect(try scan("\"\(plain)\" trailing") == plain)
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

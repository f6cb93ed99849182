import Foundation
import NIOCore
import Testing

@testable import MusterWire

@Suite struct BatchCodecTests {
    func record(_ offset: Int64, _ message: String, source: String = "webapp", time: Int64 = 1_700_000_000_123_456_789)
        -> LogRecord
    {
        LogRecord(
            time: time, node: "s1", origin: Origin(agent: "agent-s1", source: source, generation: "g1", offset: offset),
            message: message)
    }

    func encode(_ records: [LogRecord]) -> ByteBuffer {
        var encoder = BatchEncoder()
        for record in records { encoder.append(record) }
        return ByteBuffer(bytes: encoder.bytes)
    }

    @Test func roundTripKeepsEveryFieldAndEscapesSpecialCharacters() throws {
        var tricky = record(42, "quote \" backslash \\ tab \t newline \n bell \u{07} unicode é 日本 🎉")
        tricky.fields = ["status": .int(503), "backend": .string("web"), "ratio": .double(0.5), "tls": .bool(true)]
        let records = [record(0, "first"), tricky, record(100, "other source", source: "serf", time: 5)]
        let decoded = try BatchCodec.decode(encode(records))
        #expect(decoded == records)
    }

    @Test func stickyFieldsAreWrittenOnlyWhenTheyChange() {
        let text = String(buffer: encode([record(0, "a"), record(2, "b"), record(4, "c", time: 7)]))
        let lines = text.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].contains("\"agent\""))
        #expect(!lines[1].contains("\"agent\"") && !lines[1].contains("\"t\""))
        #expect(lines[2].contains("\"t\":7"))
    }

    @Test func handWrittenBatchWithRFC3339TimeIsAccepted() throws {
        let body = """
            {"agent":"curl","node":"n1","src":"manual","t":"2026-11-21T20:31:50.5Z","off":0,"msg":"hello"}
            {"off":1,"msg":"again"}
            """
        let decoded = try BatchCodec.decode(ByteBuffer(string: body))
        #expect(decoded.count == 2)
        #expect(decoded[1].time == Timestamp.parseRFC3339("2026-11-21T20:31:50.5Z"))
        #expect(decoded[1].origin == Origin(agent: "curl", source: "manual", generation: "", offset: 1))
    }

    @Test(arguments: [
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":0,\"msg\":\"x\"}\n{not json}", "malformed_json"),
        ("[1,2,3]", "malformed_json"),
        ("{\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":0,\"msg\":\"x\"}", "missing_field"),
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"msg\":\"x\"}", "missing_field"),
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":0}", "missing_field"),
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"off\":0,\"msg\":\"x\"}", "missing_field"),
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":\"zero\",\"msg\":\"x\"}", "invalid_field"),
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":-1,\"msg\":\"x\"}", "invalid_field"),
        ("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":\"yesterday\",\"off\":0,\"msg\":\"x\"}", "invalid_field"),
        ("\n  \n", "empty_batch"),
    ])
    func badBatchesAreRefusedWithTheirCode(body: String, code: String) {
        #expect(throws: WireError.self) { try BatchCodec.decode(ByteBuffer(string: body)) }
        do {
            _ = try BatchCodec.decode(ByteBuffer(string: body))
        } catch {
            #expect(error.code == code, "\(error.message)")
        }
    }

    @Test func errorNamesTheLineAndTheField() {
        let body = """
            {"agent":"a","node":"n","src":"s","t":1,"off":0,"msg":"x"}
            {"off":1}
            """
        #expect(throws: WireError.missingField(line: 2, field: "msg")) { try BatchCodec.decode(ByteBuffer(string: body)) }
    }

    @Test func invalidUTF8IsRefusedWithItsOffset() {
        var bytes = Array("{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":0,\"msg\":\"".utf8)
        let badAt = bytes.count
        bytes += [0xC3, 0x28] + Array("\"}".utf8)
        #expect(throws: WireError.invalidUTF8(byteOffset: badAt)) { try BatchCodec.decode(ByteBuffer(bytes: bytes)) }
    }

    @Test func limitsOnLinesAndRecords() {
        let records = (0..<5).map { record(Int64($0), String(repeating: "x", count: 100)) }
        #expect(throws: WireError.tooManyRecords(limit: 4)) {
            try BatchCodec.decode(encode(records), limits: .init(maxRecords: 4, maxLineBytes: 1 << 20))
        }
        #expect(throws: WireError.lineTooLong(line: 1, limit: 50)) {
            try BatchCodec.decode(encode(records), limits: .init(maxRecords: 10, maxLineBytes: 50))
        }
    }
}

@Suite struct ContentCodingTests {
    let payload = ByteBuffer(string: String(repeating: "{\"msg\":\"hello world\"}\n", count: 1000))

    @Test func zlibRawDeflateGzipAndIdentityAllInflate() throws {
        let zlib = try BatchCompressor().compress(Array(payload.readableBytesView))
        #expect(try ContentCoding.deflate.decode(zlib, limit: 1 << 20) == payload)
        // Raw deflate is the zlib stream without its 2-byte header and 4-byte checksum.
        let raw = zlib.getSlice(at: zlib.readerIndex + 2, length: zlib.readableBytes - 6)!
        #expect(!ContentCoding.looksLikeZlib(raw))
        #expect(try ContentCoding.deflate.decode(raw, limit: 1 << 20) == payload)
        let gzip = try BatchCompressor(gzip: true).compress(Array(payload.readableBytesView))
        #expect(try ContentCoding.gzip.decode(gzip, limit: 1 << 20) == payload)
        #expect(try ContentCoding.identity.decode(payload, limit: 1 << 20) == payload)
    }

    @Test func headerNames() throws {
        #expect(try ContentCoding(header: nil) == .identity)
        #expect(try ContentCoding(header: " Deflate ") == .deflate)
        #expect(try ContentCoding(header: "x-gzip") == .gzip)
        #expect(throws: WireError.unsupportedEncoding("br")) { try ContentCoding(header: "br") }
    }

    @Test func corruptDataIsRefused() {
        let garbage = ByteBuffer(bytes: [0x78, 0x9C, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect { try ContentCoding.deflate.decode(garbage, limit: 1 << 20) } throws: { error in
            (error as? WireError)?.code == "corrupt_compression"
        }
    }

    /// A body cut short must not pass as a shorter batch.
    @Test func truncatedStreamsAndTrailingBytesAreRefused() throws {
        let whole = try BatchCompressor().compress(Array(payload.readableBytesView))
        let cut = whole.getSlice(at: 0, length: whole.readableBytes - 10)!
        #expect(throws: WireError.corruptCompression("the compressed stream is truncated")) {
            try ContentCoding.deflate.decode(cut, limit: 1 << 20)
        }
        var trailing = whole
        trailing.writeString("junk")
        #expect { try ContentCoding.deflate.decode(trailing, limit: 1 << 20) } throws: { error in
            (error as? WireError)?.code == "corrupt_compression"
        }
    }

    /// 64 MiB of zeros compresses to ~64 KiB; inflating must stop at the limit, not after.
    @Test func decompressionBombStopsAtTheLimit() throws {
        let bomb = try BatchCompressor(level: 9).compress([UInt8](repeating: 0, count: 64 << 20))
        #expect(bomb.readableBytes < 100 << 10)
        #expect(throws: WireError.decompressedTooLarge(limit: 1 << 20)) {
            try ContentCoding.deflate.decode(bomb, limit: 1 << 20)
        }
        let exact = try BatchCompressor().compress([UInt8](repeating: 1, count: 1 << 20))
        #expect(try ContentCoding.deflate.decode(exact, limit: 1 << 20).readableBytes == 1 << 20)
    }
}

@Suite struct TimestampTests {
    @Test func formatsAndParsesBackExactly() {
        for nanos: Int64 in [0, 1, 999_999_999, 1_700_000_000_123_456_789, 1_795_293_559_064_962_496, Timestamp.supportedRange.upperBound] {
            let text = Timestamp.format(nanos)
            #expect(Timestamp.parseRFC3339(text) == nanos, "\(text)")
        }
        #expect(Timestamp.format(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z")
        #expect(Timestamp.format(Timestamp.supportedRange.upperBound) == "2261-12-31T23:59:59.999999999Z")
    }

    /// Years that have no nanosecond count in `Int64` (or whose differences would not) are
    /// refused, not trapped on; so are offsets that are not offsets.
    @Test func timesOutsideTheSupportedYearsAreRefused() {
        for text in [
            "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2263-01-01T00:00:00Z", "2262-04-12T00:00:00Z",
            "1969-12-31T23:59:59Z", "1677-01-01T00:00:00Z", "1970-01-01T00:00:00+00:01", "2261-12-31T23:59:59-00:01",
            "2026-01-01T00:00:00+99:00", "2026-01-01T00:00:00+01:99", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z",
        ] {
            #expect(Timestamp.parseRFC3339(text) == nil, "\(text)")
        }
        #expect(Timestamp.parseRFC3339("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.parseRFC3339("1970-01-01T01:00:00+01:00") == 0)
        #expect(Timestamp.nanos(year: 2261, month: 12, day: 31, hour: 23, minute: 59, second: 60) == nil)
        #expect(Timestamp.clamped(.min) == 0)
        #expect(Timestamp.clamped(.max) == Timestamp.supportedRange.upperBound)
        // The property the range is chosen for: any difference of two supported times fits.
        #expect(Timestamp.supportedRange.upperBound.subtractingReportingOverflow(Timestamp.supportedRange.lowerBound).overflow == false)
    }

    @Test func offsetsAndTimesOutOfRangeOnTheWireAreRefused() {
        #expect(throws: WireError.invalidField(line: 1, field: "off", detail: "must be between 0 and 2^62")) {
            try BatchCodec.decode(ByteBuffer(string: #"{"agent":"a","node":"n","src":"s","t":1,"off":9223372036854775807,"msg":"x"}"#))
        }
        #expect { try BatchCodec.decode(ByteBuffer(string: #"{"agent":"a","node":"n","src":"s","t":-5,"off":0,"msg":"x"}"#)) }
            throws: { ($0 as? WireError)?.code == "invalid_field" }
        #expect { try BatchCodec.decode(ByteBuffer(string: #"{"agent":"a","node":"n","src":"s","t":"9999-12-31T23:59:59Z","off":0,"msg":"x"}"#)) }
            throws: { ($0 as? WireError)?.code == "invalid_field" }
    }

    @Test func parsesOffsetsAndShortFractions() {
        #expect(Timestamp.parseRFC3339("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000)
        #expect(Timestamp.parseRFC3339("2023-11-14 22:13:20Z") == 1_700_000_000_000_000_000)
        #expect(Timestamp.parseRFC3339("2023-11-14T22:13:20") == nil)
        #expect(Timestamp.parseRFC3339("2023-13-14T22:13:20Z") == nil)
        #expect(Timestamp.parseRFC3339("yesterday") == nil)
    }
}

@Suite struct WireParsingTests {
    func decode(_ text: String) throws -> [LogRecord] { try BatchCodec.decode(ByteBuffer(string: text)) }
    let head = #"{"agent":"a","node":"n","src":"s","gen":"g","t":1,"#

    @Test func offsetMayBeLeftOutForTheNextLineOfTheSameFile() throws {
        let records = try decode(head + #""off":10,"msg":"héllo"}"# + "\n" + #"{"msg":"next"}"# + "\n" + #"{"gen":"h","off":0,"msg":"x"}"#)
        #expect(records.map(\.origin.offset) == [10, 17, 0])
        // A new generation (or source, or agent) must say where it is.
        #expect(throws: WireError.missingField(line: 3, field: "off")) {
            try decode(head + #""off":0,"msg":"a"}"# + "\n" + #"{"msg":"b"}"# + "\n" + #"{"src":"other","msg":"c"}"#)
        }
    }

    @Test func encoderOmitsOnlyOffsetsTheDecoderCanInfer() throws {
        var encoder = BatchEncoder()
        let origins: [(String, Int64, String)] = [("g", 0, "abc"), ("g", 4, "défg"), ("g", 100, "jump"), ("h", 105, "new gen")]
        var records: [LogRecord] = []
        for (generation, offset, message) in origins {
            let record = LogRecord(time: 5, node: "n", origin: Origin(agent: "a", source: "s", generation: generation, offset: offset), message: message)
            records.append(record)
            encoder.append(record)
        }
        let text = String(decoding: encoder.bytes, as: UTF8.self)
        #expect(text.components(separatedBy: "\"off\"").count - 1 == 3)
        #expect(try BatchCodec.decode(ByteBuffer(bytes: encoder.bytes)) == records)
    }

    @Test func unknownKeysAreSkippedAndNullMeansAbsent() throws {
        let records = try decode(
            head + #""off":0,"extra":{"deep":[1,{"x":null},"s",true,-2.5e3]},"f":{"n":-7,"d":1.25,"b":false,"s":"v"},"msg":"m"}"#
                + "\n" + #"{"agent":null,"off":1,"msg":"\u00e9\ud83c\udf89\n\"\\\/"}"#)
        #expect(records[0].fields == ["n": .int(-7), "d": .double(1.25), "b": .bool(false), "s": .string("v")])
        #expect(records[1].origin.agent == "a")
        #expect(records[1].message == "é🎉\n\"\\/")
    }

    @Test(arguments: [
        #"{"agent":"a","node":"n","src":"s","t":1,"off":0,"msg":"x"} trailing"#,
        #"{"agent":"a","node":"n","src":"s","t":1,"off":0,"msg":"x""#,
        "{\"agent\":\"a\",\"node\":\"n\",\"src\":\"s\",\"t\":1,\"off\":0,\"msg\":\"tab\there\"}",
        #"{"agent":"a","node":"n","src":"s","t":1,"off":0,"msg":"bad \q escape"}"#,
        #"{"agent":"a","node":"n","src":"s","t":1,"off":01x,"msg":"x"}"#,
        #"{"agent":"a" "node":"n"}"#,
        #"{agent:"a"}"#,
    ])
    func syntaxErrorsAreMalformedJSON(text: String) {
        #expect { try decode(text) } throws: { ($0 as? WireError)?.code == "malformed_json" }
    }

    @Test func wrongTypesNameTheField() {
        #expect(throws: WireError.invalidField(line: 1, field: "off", detail: "must be an integer")) {
            try decode(#"{"agent":"a","node":"n","src":"s","t":1,"off":1.5,"msg":"x"}"#)
        }
        #expect(throws: WireError.invalidField(line: 1, field: "msg", detail: "has the wrong type")) {
            try decode(#"{"agent":"a","node":"n","src":"s","t":1,"off":1,"msg":42}"#)
        }
        #expect(throws: WireError.invalidField(line: 1, field: "f.x", detail: "must be a string, number or boolean")) {
            try decode(#"{"agent":"a","node":"n","src":"s","t":1,"off":1,"msg":"m","f":{"x":[1]}}"#)
        }
    }

    /// Whatever the agent can read (any bytes decoded as UTF-8), the wire carries unchanged.
    @Test func randomMessagesSurviveTheRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        var encoder = BatchEncoder()
        var records: [LogRecord] = []
        var offset: Int64 = 0
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<80, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let message = String(decoding: bytes, as: UTF8.self)
            let record = LogRecord(time: Int64.random(in: Timestamp.supportedRange, using: &generator), node: "n",
                                   origin: Origin(agent: "a", source: "s", generation: "g", offset: offset), message: message)
            offset += Int64(Bool.random(using: &generator) ? message.utf8.count + 1 : Int.random(in: 1...500, using: &generator))
            records.append(record)
            encoder.append(record)
        }
        #expect(try BatchCodec.decode(ByteBuffer(bytes: encoder.bytes)) == records)
    }
}

/// The spool's and the tailer's CRC-32 are zlib's: the values a file written by an earlier
/// agent (zlib's crc32) holds must still verify.
@Suite struct ChecksumTests {
    @Test func knownAnswersAndContinuation() {
        #expect(Checksum.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(Checksum.crc32([]) == 0)
        let a = Array("The quick brown fox ".utf8)
        let b = Array("jumps over the lazy dog".utf8)
        #expect(Checksum.crc32(a + b) == 0x414F_A339)
        #expect(Checksum.crc32(b, continuing: Checksum.crc32(a)) == Checksum.crc32(a + b))
    }
}

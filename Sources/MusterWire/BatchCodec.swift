import Foundation
import NIOCore

/// The batch format: NDJSON, one record per line (see docs/wire.md).
///
/// `agent`, `node`, `src`, `gen` and `t` are *sticky*: a line that leaves one out takes it from
/// the line before, so what is constant across a batch is sent once. `off` and `msg` are on
/// every line.
public enum BatchCodec {
    public struct Limits: Sendable {
        public var maxRecords: Int
        public var maxLineBytes: Int

        public init(maxRecords: Int = 100_000, maxLineBytes: Int = 1 << 20) {
            self.maxRecords = maxRecords
            self.maxLineBytes = maxLineBytes
        }
    }

    /// One NDJSON line as sent. Optional everywhere: stickiness is resolved by `decode`.
    struct WireLine: Decodable {
        var agent: String?
        var node: String?
        var src: String?
        var gen: String?
        var off: Int64?
        var t: TimeValue?
        var msg: String?
        var f: [String: FieldValue]?
    }

    /// `t` is nanoseconds since the epoch, or an RFC 3339 string for hand-written batches.
    enum TimeValue: Decodable {
        case nanos(Int64)

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let nanos = try? container.decode(Int64.self) {
                self = .nanos(nanos)
                return
            }
            let text = try container.decode(String.self)
            guard let nanos = Timestamp.parseRFC3339(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "is neither integer nanoseconds nor an RFC 3339 time")
            }
            self = .nanos(nanos)
        }

        var nanos: Int64 {
            switch self { case .nanos(let value): value }
        }
    }

    /// Decodes and validates a whole batch; throws on the first problem so that a batch is
    /// stored whole or not at all.
    public static func decode(_ body: ByteBuffer, limits: Limits = .init()) throws(WireError) -> [LogRecord] {
        let bytes = body.readableBytesView
        if let badOffset = firstInvalidUTF8Offset(bytes) {
            throw .invalidUTF8(byteOffset: badOffset)
        }
        let decoder = JSONDecoder()
        var records: [LogRecord] = []
        var agent: String?
        var node: String?
        var source: String?
        var generation: String?
        var time: Int64?
        var lineNumber = 0
        var lineStart = bytes.startIndex
        while lineStart < bytes.endIndex {
            lineNumber += 1
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            let line = bytes[lineStart..<lineEnd]
            lineStart = lineEnd == bytes.endIndex ? lineEnd : bytes.index(after: lineEnd)
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            guard line.count <= limits.maxLineBytes else {
                throw .lineTooLong(line: lineNumber, limit: limits.maxLineBytes)
            }
            guard records.count < limits.maxRecords else { throw .tooManyRecords(limit: limits.maxRecords) }
            let wire: WireLine
            do {
                wire = try decoder.decode(WireLine.self, from: Data(line))
            } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
                throw fieldError(context, line: lineNumber, detail: "has the wrong type")
            } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
                throw fieldError(context, line: lineNumber, detail: context.debugDescription)
            } catch {
                throw .malformedJSON(line: lineNumber, detail: describe(error))
            }
            agent = wire.agent ?? agent
            node = wire.node ?? node
            source = wire.src ?? source
            generation = wire.gen ?? generation
            time = wire.t?.nanos ?? time
            guard let agent, !agent.isEmpty else { throw .missingField(line: lineNumber, field: "agent") }
            guard let node, !node.isEmpty else { throw .missingField(line: lineNumber, field: "node") }
            guard let source, !source.isEmpty else { throw .missingField(line: lineNumber, field: "src") }
            guard let time else { throw .missingField(line: lineNumber, field: "t") }
            guard let offset = wire.off else { throw .missingField(line: lineNumber, field: "off") }
            guard offset >= 0 else {
                throw .invalidField(line: lineNumber, field: "off", detail: "must not be negative")
            }
            guard let message = wire.msg else { throw .missingField(line: lineNumber, field: "msg") }
            records.append(
                LogRecord(
                    time: time, node: node,
                    origin: Origin(agent: agent, source: source, generation: generation ?? "", offset: offset),
                    message: message, fields: wire.f ?? [:]))
        }
        guard !records.isEmpty else { throw .emptyBatch }
        return records
    }

    private static func fieldError(_ context: DecodingError.Context, line: Int, detail: String) -> WireError {
        let field = context.codingPath.map(\.stringValue).joined(separator: ".")
        return field.isEmpty
            ? .malformedJSON(line: line, detail: "expected a JSON object")
            : .invalidField(line: line, field: field, detail: detail)
    }

    private static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            if let underlying = context.underlyingError as NSError?,
                let detail = underlying.userInfo[NSDebugDescriptionErrorKey] as? String
            {
                return detail
            }
            return context.debugDescription
        }
        return "\(error)"
    }

    /// Offset of the first byte that breaks UTF-8, or nil when the whole buffer is valid.
    static func firstInvalidUTF8Offset(_ bytes: ByteBufferView) -> Int? {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var consumed = 0
        var lastGood = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                consumed += UTF8.width(scalar)
                lastGood = consumed
            case .emptyInput:
                return nil
            case .error:
                return lastGood
            }
        }
    }
}

/// Builds one batch's NDJSON text, writing sticky keys only when they change.
///
/// Hand-written rather than `JSONEncoder` because it runs for every line an agent reads.
public struct BatchEncoder {
    public private(set) var bytes: [UInt8] = []
    public private(set) var count = 0
    private var agent: String?
    private var node: String?
    private var source: String?
    private var generation: String?
    private var time: Int64?

    public init(capacity: Int = 1 << 20) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func append(_ record: LogRecord) {
        append(
            time: record.time, node: record.node, origin: record.origin, message: record.message,
            fields: record.fields)
    }

    public mutating func append(
        time: Int64, node: String, origin: Origin, message: String, fields: [String: FieldValue] = [:]
    ) {
        bytes.append(UInt8(ascii: "{"))
        var first = true
        func key(_ name: StaticString) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        if origin.agent != agent {
            key("agent"); appendString(origin.agent); agent = origin.agent
        }
        if node != self.node {
            key("node"); appendString(node); self.node = node
        }
        if origin.source != source {
            key("src"); appendString(origin.source); source = origin.source
        }
        if origin.generation != generation {
            key("gen"); appendString(origin.generation); generation = origin.generation
        }
        if time != self.time {
            key("t"); appendInteger(time); self.time = time
        }
        key("off"); appendInteger(origin.offset)
        key("msg"); appendString(message)
        if !fields.isEmpty {
            key("f")
            bytes.append(UInt8(ascii: "{"))
            for (index, name) in fields.keys.sorted().enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                appendString(name)
                bytes.append(UInt8(ascii: ":"))
                switch fields[name]! {
                case .string(let value): appendString(value)
                case .int(let value): appendInteger(value)
                case .double(let value): bytes.append(contentsOf: Array((value.isFinite ? "\(value)" : "null").utf8))
                case .bool(let value): bytes.append(contentsOf: Array((value ? "true" : "false").utf8))
                }
            }
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(contentsOf: [UInt8(ascii: "}"), UInt8(ascii: "\n")])
        count += 1
    }

    private mutating func appendInteger(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    private mutating func appendString(_ value: String) {
        JSONText.append(value, to: &bytes)
    }
}

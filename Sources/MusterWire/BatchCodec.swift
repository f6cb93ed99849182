import NIOCore

/// The batch format: NDJSON, one record per line (see docs/wire.md).
///
/// `agent`, `node`, `src`, `gen` and `t` are *sticky*: a line that leaves one out takes it from
/// the line before, so what is constant across a batch is sent once. `off` may be left out
/// when the line directly follows the previous one in the same file (the previous `off` plus
/// its message's UTF-8 length plus one); `msg` is on every line.
public enum BatchCodec {
    public struct Limits: Sendable {
        public var maxRecords: Int
        public var maxLineBytes: Int

        public init(maxRecords: Int = 100_000, maxLineBytes: Int = 1 << 20) {
            self.maxRecords = maxRecords
            self.maxLineBytes = maxLineBytes
        }
    }

    /// Decodes and validates a whole batch; throws on the first problem so that a batch is
    /// stored whole or not at all.
    public static func decode(_ body: ByteBuffer, limits: Limits = .init()) throws(WireError) -> [LogRecord] {
        if let badOffset = firstInvalidUTF8Offset(body.readableBytesView) {
            throw .invalidUTF8(byteOffset: badOffset)
        }
        let result: Result<[LogRecord], WireError> = body.withUnsafeReadableBytes { bytes in
            do throws(WireError) {
                return .success(try decodeLines(bytes, limits: limits))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func decodeLines(_ bytes: UnsafeRawBufferPointer, limits: Limits) throws(WireError) -> [LogRecord] {
        var records: [LogRecord] = []
        var agent: String?
        var node: String?
        var source: String?
        var generation: String?
        var time: Int64?
        /// Where the next line starts if it is the next line of the same file: the implicit `off`.
        var nextOffset: Int64?
        var lineNumber = 0
        var lineStart = 0
        while lineStart < bytes.count {
            lineNumber += 1
            let lineEnd = ByteSearch.firstIndex(of: UInt8(ascii: "\n"), in: bytes, from: lineStart) ?? bytes.count
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])
            lineStart = lineEnd + 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            guard line.count <= limits.maxLineBytes else {
                throw .lineTooLong(line: lineNumber, limit: limits.maxLineBytes)
            }
            guard records.count < limits.maxRecords else { throw .tooManyRecords(limit: limits.maxRecords) }
            let wire: WireLineParser.Line
            do {
                wire = try WireLineParser.parse(line)
            } catch {
                switch error {
                case .syntax(let detail): throw .malformedJSON(line: lineNumber, detail: detail)
                case .field(let field, let detail): throw .invalidField(line: lineNumber, field: field, detail: detail)
                }
            }
            if wire.agent != nil || wire.src != nil || wire.gen != nil { nextOffset = nil }
            agent = wire.agent ?? agent
            node = wire.node ?? node
            source = wire.src ?? source
            generation = wire.gen ?? generation
            time = wire.t ?? time
            guard let agent, !agent.isEmpty else { throw .missingField(line: lineNumber, field: "agent") }
            guard let node, !node.isEmpty else { throw .missingField(line: lineNumber, field: "node") }
            guard let source, !source.isEmpty else { throw .missingField(line: lineNumber, field: "src") }
            guard let time else { throw .missingField(line: lineNumber, field: "t") }
            guard let offset = wire.off ?? nextOffset else { throw .missingField(line: lineNumber, field: "off") }
            guard Origin.offsetRange.contains(offset) else {
                throw .invalidField(line: lineNumber, field: "off", detail: "must be between 0 and 2^62")
            }
            guard let message = wire.msg else { throw .missingField(line: lineNumber, field: "msg") }
            nextOffset = offset + Int64(message.utf8.count) + 1
            records.append(
                LogRecord(
                    time: time, node: node,
                    origin: Origin(agent: agent, source: source, generation: generation ?? "", offset: offset),
                    message: message, fields: wire.fields ?? [:]))
        }
        guard !records.isEmpty else { throw .emptyBatch }
        return records
    }

    /// Offset of the first byte that breaks UTF-8, or nil when the whole buffer is valid.
    static func firstInvalidUTF8Offset(_ bytes: ByteBufferView) -> Int? {
        // The standard library's validator is vectorised; the scalar walk below only runs to
        // say where a bad batch goes wrong.
        let valid = bytes.withContiguousStorageIfAvailable { String(validating: $0, as: UTF8.self) != nil }
            ?? (String(validating: Array(bytes), as: UTF8.self) != nil)
        if valid { return nil }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var consumed = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): consumed += UTF8.width(scalar)
            case .emptyInput: return nil
            case .error: return consumed
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
    /// The offset a record of the same stream would have if it directly followed the last one.
    private var nextOffset: Int64?

    /// Bytes reserved when the caller gives no capacity.
    public static let defaultCapacity = 1 << 20

    public init(capacity: Int = defaultCapacity) {
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
        var sameStream = true
        if origin.agent != agent {
            key("agent"); appendString(origin.agent); agent = origin.agent
            sameStream = false
        }
        if node != self.node {
            key("node"); appendString(node); self.node = node
        }
        if origin.source != source {
            key("src"); appendString(origin.source); source = origin.source
            sameStream = false
        }
        if origin.generation != generation {
            key("gen"); appendString(origin.generation); generation = origin.generation
            sameStream = false
        }
        if time != self.time {
            key("t"); appendInteger(time); self.time = time
        }
        if !sameStream || origin.offset != nextOffset {
            key("off"); appendInteger(origin.offset)
        }
        nextOffset = origin.offset + Int64(message.utf8.count) + 1
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

/// Where a record came from, precisely enough to recognise it when it arrives twice.
///
/// For a file source `offset` is the byte offset of the line in that file generation;
/// for other sources it is a sequence number that grows within a generation.
public struct Origin: Hashable, Sendable {
    public var agent: String
    public var source: String
    public var generation: String
    public var offset: Int64

    /// Offsets a sender may give: a file offset or sequence number below 2^62 (4 EiB), so the
    /// implicit offset of the next line (`off` + message length + 1) can never overflow.
    public static let offsetRange: ClosedRange<Int64> = 0...(1 << 62)

    public init(agent: String, source: String, generation: String, offset: Int64) {
        self.agent = agent
        self.source = source
        self.generation = generation
        self.offset = offset
    }
}

/// A value of a structured field attached to a record (parsed HTTP status, timings, …).
public enum FieldValue: Hashable, Sendable, Codable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "a field value must be a string, number or boolean")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }
}

/// One log line (or event) as it travels from an agent to the collector and into the store.
public struct LogRecord: Hashable, Sendable {
    /// Nanoseconds since the Unix epoch, UTC.
    public var time: Int64
    public var node: String
    public var origin: Origin
    public var message: String
    public var fields: [String: FieldValue]

    public var source: String { origin.source }

    public init(time: Int64, node: String, origin: Origin, message: String, fields: [String: FieldValue] = [:]) {
        self.time = time
        self.node = node
        self.origin = origin
        self.message = message
        self.fields = fields
    }
}

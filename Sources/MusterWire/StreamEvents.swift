import Foundation

/// The bodies of the collector's event stream (`GET /v1/events`, the `events` table): one type
/// for what each kind of event says, written by the collector's ledger and read back by
/// consumers such as the LB controller, so a body's shape is stated once.
///
/// A body is one JSON object: its content's keys, plus when the event happened as `t`
/// (nanoseconds since the epoch) and `time` (RFC 3339). Keys are in the order Foundation's
/// `JSONSerialization` sorts them (case-insensitive, digits by value, locale-aware), not
/// `JSONEncoder`'s (by code unit): the two differ where member tags mix cases, digits or
/// accents, and every body ever stored was written in the former, so a consumer that compares
/// bodies as text, or an export diffed against an older one, sees the same bytes.
public struct StreamEventBody<Content: StreamEventContent>: Sendable, Equatable, Codable {
    /// When it happened, nanoseconds since the epoch (the `events` row's `t`).
    public var t: Int64
    public var content: Content

    public init(t: Int64, content: Content) {
        self.t = t
        self.content = content
    }

    private enum StampKeys: String, CodingKey {
        case t, time
    }

    // The content's keys and the stamp share one object: both encode into the same container.
    public func encode(to encoder: any Encoder) throws {
        try content.encode(to: encoder)
        var stamp = encoder.container(keyedBy: StampKeys.self)
        try stamp.encode(t, forKey: .t)
        try stamp.encode(Timestamp.format(t), forKey: .time)
    }

    public init(from decoder: any Decoder) throws {
        content = try Content(from: decoder)
        t = try decoder.container(keyedBy: StampKeys.self).decode(Int64.self, forKey: .t)
    }

    /// The body as stored and streamed.
    public func json() throws -> String {
        // JSONEncoder states the shape; JSONSerialization writes it in the stream's key order
        // (see the type's comment). Content holds no floating point, so the round trip through
        // Foundation's objects is exact.
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self))
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads a body from the stream; throws `DecodingError` when `json` is not a body of this kind.
    public init(json: String) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(json.utf8))
    }
}

/// What one kind of stream event says. Its keys must not be `t` or `time` (the body adds them),
/// and its values are strings, integers, booleans, and arrays and string-keyed objects of them:
/// no floating point, which would not survive the body's trip through `JSONSerialization` exactly.
public protocol StreamEventContent: Codable, Sendable, Equatable {}

// MARK: Membership

/// A change in the canonical membership (stream kind `membership`).
public struct MembershipChangeEvent: StreamEventContent {
    public var member: String
    public var change: MemberChange
    public var status: MemberStatus
    public var address: String
    public var role: String
    public var tags: [String: String]
    /// The node whose Serf saw it.
    public var observer: String
    /// What told the collector: a Serf event name (`member-join`, …), `snapshot`, or
    /// `address taken by NAME`.
    public var cause: String
    /// The member's state before the change, when it had one.
    public var previous: Previous?

    public struct Previous: Codable, Sendable, Equatable {
        public var status: MemberStatus
        public var address: String

        public init(status: MemberStatus, address: String) {
            self.status = status
            self.address = address
        }
    }

    public init(
        member: String, change: MemberChange, status: MemberStatus, address: String, role: String, tags: [String: String],
        observer: String, cause: String, previous: Previous? = nil
    ) {
        self.member = member
        self.change = change
        self.status = status
        self.address = address
        self.role = role
        self.tags = tags
        self.observer = observer
        self.cause = cause
        self.previous = previous
    }
}

/// How a member's entry in the canonical membership changed.
public enum MemberChange: String, Sendable, Codable, CaseIterable {
    case joined, left, failed, updated
    /// Alive before and after, at another address.
    case readdressed
    case reaped
    /// Another member took its address.
    case replaced
}

// MARK: User events and queries

/// A Serf user event or query as one observer received it (stream kinds `user` and `query`):
/// the event's own keys and `observer`.
public struct ObservedUserEvent: StreamEventContent {
    public var event: UserEvent
    /// The node whose Serf received it.
    public var observer: String

    public init(_ event: UserEvent, observer: String) {
        self.event = event
        self.observer = observer
    }

    private enum CodingKeys: String, CodingKey {
        case observer
    }

    public func encode(to encoder: any Encoder) throws {
        try event.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(observer, forKey: .observer)
    }

    public init(from decoder: any Decoder) throws {
        event = try UserEvent(from: decoder)
        observer = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .observer)
    }
}

// MARK: Inventory

/// A node's inventory changed (stream kind `inventory`): the body is the inventory itself.
extension Inventory: StreamEventContent {}

// MARK: Configuration

/// A load balancer rendered and applied (or refused) a configuration (stream kind `config`):
/// ``ConfigApply`` without the text and diff, and the node that applied it.
public struct ConfigApplyEvent: StreamEventContent {
    public var node: String
    public var version: Int
    public var sha256: String
    public var method: String
    public var outcome: ConfigApply.Outcome
    public var trigger: [String]
    public var durationMilliseconds: Int
    public var message: String?
    public var servers: [String]

    public init(node: String, apply: ConfigApply) {
        self.node = node
        version = apply.version
        sha256 = apply.sha256
        method = apply.method
        outcome = apply.outcome
        trigger = apply.trigger
        durationMilliseconds = apply.durationMilliseconds
        message = apply.message
        servers = apply.servers
    }

    private enum CodingKeys: String, CodingKey {
        case node, version, sha256, method, outcome, trigger, message, servers
        case durationMilliseconds = "duration_ms"
    }
}

extension ConfigApply {
    /// How one render and apply ended. Journal lines and stored rows are outside input, and
    /// a newer agent may report an outcome this version does not know: that one is kept as
    /// it came (``unrecognized(_:)``) rather than refusing the line.
    public enum Outcome: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        /// HAProxy runs it (or will, from the file, when it starts).
        case applied
        /// Applied, and a member's name or address was refused (the other servers are in it).
        case appliedWithRejections
        /// Nothing changed but a member's name or address was refused.
        case rejected
        /// `haproxy -c` refused it; the last good configuration keeps serving.
        case invalid
        /// Writing or applying it failed.
        case failed
        case unrecognized(String)

        public init(rawValue: String) {
            switch rawValue {
            case "applied": self = .applied
            case "applied-with-rejections": self = .appliedWithRejections
            case "rejected": self = .rejected
            case "invalid": self = .invalid
            case "failed": self = .failed
            default: self = .unrecognized(rawValue)
            }
        }

        public var rawValue: String {
            switch self {
            case .applied: "applied"
            case .appliedWithRejections: "applied-with-rejections"
            case .rejected: "rejected"
            case .invalid: "invalid"
            case .failed: "failed"
            case .unrecognized(let text): text
            }
        }

        public var description: String { rawValue }

        public init(from decoder: any Decoder) throws {
            self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }
    }
}

// MARK: Marks

/// Someone marked an instant (stream kind `mark`, `logq mark`).
public struct MarkEvent: StreamEventContent {
    public var name: String
    public var note: String

    public init(name: String, note: String) {
        self.name = name
        self.note = note
    }
}

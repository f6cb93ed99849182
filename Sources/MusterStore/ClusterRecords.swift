import MusterWire

/// The kinds of events on the stream (`events.kind`).
public enum EventKind: String, Sendable, CaseIterable {
    /// A change in the canonical membership.
    case membership
    /// A Serf user event or query, as an observer received it.
    case user, query
    /// A node's inventory changed.
    case inventory
    /// A load balancer rendered and applied (or refused) a configuration.
    case config
    /// Someone marked an instant (`logq mark`).
    case mark
}

/// One change of one member in the canonical membership (a `membership` row).
public struct MembershipChange: Sendable, Equatable, Codable {
    public var id: Int64
    /// When the change was observed, nanoseconds since the epoch.
    public var t: Int64
    public var member: String
    public var change: Change
    public var status: MemberStatus
    public var address: String
    public var role: String
    /// The member's tags as a JSON object with sorted keys.
    public var tags: String
    /// The node whose Serf saw it.
    public var observer: String
    /// What told us: a Serf event name (`member-join`, …), `snapshot` (reconciliation), or
    /// `address` (another member took this one's address).
    public var cause: String
    /// The `events` row (stream id) that announced it.
    public var event: Int64

    public init(
        id: Int64, t: Int64, member: String, change: Change, status: MemberStatus, address: String,
        role: String, tags: String, observer: String, cause: String, event: Int64
    ) {
        self.id = id
        self.t = t
        self.member = member
        self.change = change
        self.status = status
        self.address = address
        self.role = role
        self.tags = tags
        self.observer = observer
        self.cause = cause
        self.event = event
    }

    /// Stated in MusterWire, where the stream's bodies carry it.
    public typealias Change = MemberChange

}

import Foundation

/// What an agent observed about the cluster, one JSON object per line of its event journal.
///
/// Serf's event handler (`muster-agent serf-event`), the agent's reconciliation with
/// `serf members` and its inventory all append to one local file; the agent ships that file
/// like any other, as source `events`, and the collector reads each shipped line back into a
/// `JournalEntry`. Writing to a file first is what makes an event durable the moment the
/// handler returns, and orders it with everything else the node saw.
public struct JournalEntry: Codable, Sendable, Equatable {
    /// When the observer saw it, nanoseconds since the Unix epoch.
    public var t: Int64
    public var event: JournalEvent
    /// The node that saw it (Serf's `SERF_SELF_NAME`, or the agent's node).
    public var observer: String
    /// The member a `member-*` event is about (Serf coalesces: one entry per member).
    public var member: Member?
    /// Every member the observer's Serf knows, for `snapshot`.
    public var members: [Member]?
    /// For `user` and `query` events.
    public var user: UserEvent?
    /// For `inventory`.
    public var inventory: Inventory?

    public init(
        t: Int64, event: JournalEvent, observer: String, member: Member? = nil, members: [Member]? = nil,
        user: UserEvent? = nil, inventory: Inventory? = nil
    ) {
        self.t = t
        self.event = event
        self.observer = observer
        self.member = member
        self.members = members
        self.user = user
        self.inventory = inventory
    }

    /// The journal's source id on the wire; the collector interprets lines from it.
    public static let sourceID = "events"

    /// One line of the journal, without the newline. Keys sorted so equal entries are equal text.
    public func encodedLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these value types cannot fail: every member is a string, number or array of them.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public static func decode(line: String) throws -> JournalEntry {
        try JSONDecoder().decode(JournalEntry.self, from: Data(line.utf8))
    }
}

public enum JournalEvent: String, Codable, Sendable, CaseIterable {
    case memberJoin = "member-join"
    case memberLeave = "member-leave"
    case memberFailed = "member-failed"
    case memberUpdate = "member-update"
    case memberReap = "member-reap"
    case user
    case query
    /// The observer's whole `serf members` list (reconciliation).
    case snapshot
    case inventory

    /// What a member event says about the member's status.
    public var memberStatus: MemberStatus? {
        switch self {
        case .memberJoin, .memberUpdate: .alive
        case .memberLeave: .left
        case .memberFailed: .failed
        case .memberReap: .reaped
        default: nil
        }
    }
}

/// Where a member stands. `leaving` (Serf's own word) is recorded as `left`; `replaced` is
/// the collector's: another member took this one's address.
public enum MemberStatus: String, Codable, Sendable, CaseIterable {
    case alive, left, failed, reaped, replaced

    /// Serf's `serf members` status words.
    public init?(serf: String) {
        switch serf {
        case "alive": self = .alive
        case "leaving", "left": self = .left
        case "failed": self = .failed
        case "reap", "reaped": self = .reaped
        default: return nil
        }
    }
}

/// A Serf member as an event or snapshot describes it.
public struct Member: Codable, Sendable, Hashable {
    public var name: String
    public var address: String
    public var role: String
    public var tags: [String: String]
    /// Set in snapshots; events imply it.
    public var status: MemberStatus?

    public init(name: String, address: String, role: String = "", tags: [String: String] = [:], status: MemberStatus? = nil) {
        self.name = name
        self.address = address
        self.role = role
        self.tags = tags
        self.status = status
    }
}

public struct UserEvent: Codable, Sendable, Equatable {
    public var name: String
    public var payload: String
    /// Serf's Lamport time for the event, when given.
    public var ltime: Int64?

    public init(name: String, payload: String, ltime: Int64? = nil) {
        self.name = name
        self.payload = payload
        self.ltime = ltime
    }
}

/// What a node is: the `docker ps` / `docker inspect` of a cluster without Docker.
public struct Inventory: Codable, Sendable, Equatable {
    public var node: String
    public var hostname: String
    public var addresses: [String]
    public var role: String
    public var tags: [String: String]
    /// Image name and version when known (`MUSTER_IMAGE`), and the agent's version.
    public var image: String?
    public var agentVersion: String
    public var services: [ServiceState]

    public init(
        node: String, hostname: String, addresses: [String], role: String, tags: [String: String], image: String?,
        agentVersion: String, services: [ServiceState]
    ) {
        self.node = node
        self.hostname = hostname
        self.addresses = addresses
        self.role = role
        self.tags = tags
        self.image = image
        self.agentVersion = agentVersion
        self.services = services
    }
}

/// One s6 service as `s6-svstat` reports it.
public struct ServiceState: Codable, Sendable, Equatable {
    public var name: String
    public var up: Bool
    public var pid: Int?
    /// When it last went up or down, nanoseconds since the epoch; uptime is now minus this.
    public var since: Int64?
    /// Whether s6 will restart it (it is wanted up).
    public var wantedUp: Bool

    public init(name: String, up: Bool, pid: Int?, since: Int64?, wantedUp: Bool) {
        self.name = name
        self.up = up
        self.pid = pid
        self.since = since
        self.wantedUp = wantedUp
    }
}

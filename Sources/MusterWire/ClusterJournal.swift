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
    /// For `config`: one render and apply of the load balancer's configuration.
    public var config: ConfigApply?
    /// For `haproxy-stats`: a sample of HAProxy's `show stat`.
    public var stats: [ServerStats]?

    public init(
        t: Int64, event: JournalEvent, observer: String, member: Member? = nil, members: [Member]? = nil,
        user: UserEvent? = nil, inventory: Inventory? = nil, config: ConfigApply? = nil, stats: [ServerStats]? = nil
    ) {
        self.t = t
        self.event = event
        self.observer = observer
        self.member = member
        self.members = members
        self.user = user
        self.inventory = inventory
        self.config = config
        self.stats = stats
    }

    /// The journal's source id on the wire; the collector interprets lines from it.
    public static let sourceID = "events"

    /// One line of the journal, without the newline.
    public func encodedLine() -> String { CanonicalJSON.string(self) }

    /// Decodes and range-checks one journal line. The collector derives the canonical
    /// membership from these, so a time outside ``Timestamp/supportedRange`` or a negative
    /// count is refused here, where it enters, rather than overflowing the ledger's arithmetic.
    public static func decode(line: String) throws -> JournalEntry {
        let entry = try JSONDecoder().decode(JournalEntry.self, from: Data(line.utf8))
        try entry.checkRanges()
        return entry
    }

    /// A journal line that is JSON of the right shape but holds a value out of range.
    public struct OutOfRange: Error, CustomStringConvertible {
        public var field: String
        public var detail: String
        public var description: String { "'\(field)' \(detail)" }
    }

    func checkRanges() throws(OutOfRange) {
        func time(_ value: Int64?, _ field: String) throws(OutOfRange) {
            guard let value, !Timestamp.supportedRange.contains(value) else { return }
            throw OutOfRange(
                field: field,
                detail: "is \(value), outside the years \(Timestamp.supportedYears.lowerBound)-\(Timestamp.supportedYears.upperBound) in nanoseconds")
        }
        func count<Value: BinaryInteger>(_ value: Value?, _ field: String) throws(OutOfRange) {
            guard let value, value < 0 else { return }
            throw OutOfRange(field: field, detail: "must not be negative, not \(value)")
        }
        try time(t, "t")
        try count(user?.ltime, "user.ltime")
        for service in inventory?.services ?? [] {
            try time(service.since, "inventory.services.since")
            try count(service.pid, "inventory.services.pid")
        }
        try count(config?.version, "config.version")
        try count(config?.durationMilliseconds, "config.durationMilliseconds")
        for row in stats ?? [] {
            for (value, field) in [
                (row.currentSessions, "currentSessions"), (row.totalSessions, "totalSessions"),
                (row.responses2xx, "responses2xx"), (row.responses5xx, "responses5xx"),
            ] {
                try count(value, "stats." + field)
            }
        }
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
    /// The LB controller rendered and applied (or refused) a configuration.
    case config
    /// A sample of HAProxy's per-server state and counters.
    case haproxyStats = "haproxy-stats"

    /// Whether Serf itself raises this event (and so its handler may be called with it).
    public var isSerfEvent: Bool { memberStatus != nil || self == .user || self == .query }

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

/// One render → validate → apply of the load balancer's configuration, as the LB controller
/// reports it: the history `logq configs` shows.
public struct ConfigApply: Codable, Sendable, Equatable {
    /// Counts every render the controller made, applied or not.
    public var version: Int
    public var sha256: String
    public var text: String
    /// Unified diff against the previous version that was applied.
    public var diff: String
    /// The changes that led to it, e.g. `s1 joined`, `s2 failed`, `start`, `serf fallback`.
    public var trigger: [String]
    /// `runtime` (Runtime API, no reload), `reload` (master-worker reload), `unchanged`, or `none`.
    public var method: String
    public var durationMilliseconds: Int
    public var outcome: Outcome
    /// HAProxy's own message, or why a member was refused.
    public var message: String?
    /// The backend servers the version lists.
    public var servers: [String]

    public init(
        version: Int, sha256: String, text: String, diff: String, trigger: [String], method: String,
        durationMilliseconds: Int, outcome: Outcome, message: String?, servers: [String]
    ) {
        self.version = version
        self.sha256 = sha256
        self.text = text
        self.diff = diff
        self.trigger = trigger
        self.method = method
        self.durationMilliseconds = durationMilliseconds
        self.outcome = outcome
        self.message = message
        self.servers = servers
    }
}

/// One row of HAProxy's `show stat` that matters for the history: a server's or backend's state and counters.
public struct ServerStats: Codable, Sendable, Equatable {
    public var proxy: String
    /// `BACKEND`, `FRONTEND` or the server's name.
    public var name: String
    public var status: String
    public var currentSessions: Int
    public var totalSessions: Int
    public var responses2xx: Int
    public var responses5xx: Int

    public init(proxy: String, name: String, status: String, currentSessions: Int, totalSessions: Int, responses2xx: Int, responses5xx: Int) {
        self.proxy = proxy
        self.name = name
        self.status = status
        self.currentSessions = currentSessions
        self.totalSessions = totalSessions
        self.responses2xx = responses2xx
        self.responses5xx = responses5xx
    }
}

/// The one JSON form Muster stores and compares: sorted keys, slashes unescaped, so equal
/// values are equal text (journal lines, tags, inventories, config history).
public enum CanonicalJSON {
    /// Encoding the journal's value types cannot fail: every member is a string, number,
    /// boolean, or an array or string-keyed object of them.
    public static func string(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}

import Foundation
import MusterStore
import MusterWire

/// Membership, nodes, the timeline, configurations and marks, read from the store's
/// `ClusterHistoryReader` and shown as logq prints them.
public struct ClusterHistory {
    /// The whole history (export and report read its lines and figures too).
    public let store: any HistoryStore

    public init(store: any HistoryStore) {
        self.store = store
    }

    /// Runs a call to the store, its refusal in logq's words.
    private func ask<T>(_ call: (any HistoryStore) throws(StoreError) -> T) throws(QueryError) -> T {
        try QueryError.asking { () throws(StoreError) in try call(store) }
    }

    /// Who was a member at `instant` (reaped members left out), as `logq members --at` prints it.
    public func members(at instant: Int64) throws(QueryError) -> Table {
        let members = try ask { store throws(StoreError) in try store.members(at: instant) }
        var table = Table(columns: ["name", "address", "role", "status", "since", "tags"])
        table.rows = members.map { change in
            [.text(change.member), .text(change.address), .text(change.role), .text(change.status.rawValue),
             .text(Timestamp.format(change.t)), .json(change.tags)]
        }
        return table
    }

    /// Every membership change in [since, until), in order.
    public func changes(since: Int64?, until: Int64?, members: [String] = []) throws(QueryError) -> [MembershipChange] {
        try ask { store throws(StoreError) in try store.changes(since: since, until: until, members: members) }
    }

    /// Every membership change in [since, until), in order, as `logq timeline` prints them.
    public func timeline(since: Int64?, until: Int64?, members: [String] = []) throws(QueryError) -> Table {
        Self.timeline(try changes(since: since, until: until, members: members))
    }

    static func timeline(_ changes: [MembershipChange]) -> Table {
        var table = Table(columns: ["time", "member", "change", "status", "address", "role", "observer", "cause", "event"])
        table.rows = changes.map { change in
            [.text(Timestamp.format(change.t)), .text(change.member), .text(change.change.rawValue), .text(change.status.rawValue),
             .text(change.address), .text(change.role), .text(change.observer), .text(change.cause), .integer(change.event)]
        }
        return table
    }

    /// The `docker ps` of the cluster at `instant`: every member and every node that reported
    /// an inventory, with its state, since when, and its supervised services.
    public func nodes(at instant: Int64) throws(QueryError) -> Table {
        let cluster = try ask { store throws(StoreError) in try store.nodes(at: instant) }
        let (members, inventories) = (cluster.members, cluster.inventories)
        let names = Set(members.map(\.member)).union(inventories.keys).sorted()
        let byName = Dictionary(members.map { ($0.member, $0) }, uniquingKeysWith: { $1 })
        var table = Table(columns: ["name", "address", "role", "state", "since", "services", "image"])
        for name in names {
            let member = byName[name]
            let reported = inventories[name]
            let inventory = reported?.inventory
            table.rows.append([
                .text(name),
                .text(member?.address ?? inventory?.addresses.first ?? ""),
                .text(member?.role.isEmpty == false ? member!.role : inventory?.role ?? ""),
                // A node that reports an inventory but is not in Serf (the collector's own node).
                .text(member?.status.rawValue ?? "not in serf"),
                member.map { .text(Timestamp.format($0.t)) } ?? .null,
                reported.map { .text(Self.services($0, member: member)) } ?? .null,
                inventory?.image.map { .text($0) } ?? .null,
            ])
        }
        return table
    }

    /// The services column: the node's last report while it is a member. A node that left or
    /// failed reports no more, and its last report would read as live ("3/3 up": a node that
    /// stops gracefully leaves Serf first and reports once more on its way down), so its
    /// services are then down (it left) or unknown (it failed), with the last report beside.
    static func services(_ reported: ReportedInventory, member: MembershipChange?) -> String {
        let services = reported.inventory.services
        let summary =
            "\(services.filter(\.up).count)/\(services.count) up"
            + (services.isEmpty ? "" : " (" + services.map { "\($0.name)\($0.up ? "" : " down")" }.joined(separator: ", ") + ")")
        guard let member, member.status != .alive else { return summary }
        let state = member.status == .left ? "down" : "unknown"
        return "\(state) (\(member.status.rawValue) at \(Timestamp.format(member.t)); last report \(summary) at \(Timestamp.format(reported.t)))"
    }

    /// Each node's latest inventory at `instant` as JSON (the `docker inspect` of a node).
    public func inventory(of node: String, at instant: Int64) throws(QueryError) -> String? {
        try ask { store throws(StoreError) in try store.inventory(of: node, at: instant) }
    }
}

extension ClusterHistory {
    /// Every recorded render and apply of a load balancer's configuration in [since, until),
    /// oldest first, with each version's text when `withText` (it is the one large column).
    public func configRecords(node: String? = nil, since: Int64? = nil, until: Int64? = nil, withText: Bool = false)
        throws(QueryError) -> [ConfigRecord]
    {
        try ask { store throws(StoreError) in try store.configRecords(node: node, since: since, until: until, withText: withText) }
    }

    /// The configurations in [since, until) as `logq configs` prints them.
    public func configs(node: String? = nil, since: Int64? = nil, until: Int64? = nil) throws(QueryError) -> Table {
        Self.configs(try configRecords(node: node, since: since, until: until))
    }

    static func configs(_ records: [ConfigRecord]) -> Table {
        var table = Table(columns: ["version", "time", "node", "method", "outcome", "servers", "trigger", "duration_ms", "sha256", "message"])
        table.rows = records.map { record in
            [.integer(Int64(record.version)), .text(Timestamp.format(record.t)), .text(record.node), .text(record.method),
             .text(record.outcome.rawValue), .json(CanonicalJSON.string(record.servers)), .json(CanonicalJSON.string(record.trigger)),
             .integer(Int64(record.durationMilliseconds)), .text(String(record.sha256.prefix(12))),
             record.message.map { .text($0) } ?? .null]
        }
        return table
    }

    /// The text of version `version` (of `node`, or of the only node that has one).
    public func configText(version: Int, node: String? = nil) throws(QueryError) -> String {
        let texts = try ask { store throws(StoreError) in try store.configTexts(version: version, node: node) }
        guard let first = texts.first else {
            let known = try ask { store throws(StoreError) in try store.configVersions() }
            throw .badArgument(
                "no config version \(version)\(node.map { " from node \($0)" } ?? "") (recorded: \(known.isEmpty ? "none yet" : known.map(String.init).joined(separator: ", ")))")
        }
        guard texts.count == 1 else {
            throw .badArgument("several load balancers have a version \(version); choose one with --node (\(texts.map(\.node).joined(separator: ", ")))")
        }
        return first.text
    }
}

extension ClusterHistory {
    /// The marks, oldest first (none in a store made before marks existed).
    public func markList() throws(QueryError) -> [Mark] {
        try ask { store throws(StoreError) in try store.marks() }
    }

    /// The marks as `logq marks` prints them.
    public func marks() throws(QueryError) -> Table {
        var table = Table(columns: ["name", "time", "event", "note"])
        table.rows = try markList().map { [.text($0.name), .text(Timestamp.format($0.t)), .integer($0.event), .text($0.note)] }
        return table
    }

    /// Each mark's task, oldest first: from the mark to the next one (the last lasts to the end;
    /// `MarkedTask.tasks(of:)`).
    public func tasks() throws(QueryError) -> [MarkedTask] {
        MarkedTask.tasks(of: try markList())
    }
}

extension QueryError {
    /// A `--mark NAME` that names no mark.
    static func unknownMark(_ name: String, known: [String]) -> QueryError {
        .badArgument("no mark named '\(name)' (marks: \(known.isEmpty ? "none yet" : known.joined(separator: ", ")))")
    }
}

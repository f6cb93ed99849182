import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire

/// Membership, nodes and the timeline, read from the collector's canonical membership.
public struct ClusterHistory {
    public let database: LogDatabase

    public init(database: LogDatabase) {
        self.database = database
    }

    /// Who was a member at `instant` (reaped members left out), as `logq members --at` prints it.
    public func members(at instant: Int64) throws(QueryError) -> Table {
        let members = try database.read { db in try ClusterLedger.members(at: instant, in: db) }
        var table = Table(columns: ["name", "address", "role", "status", "since", "tags"])
        table.rows = members.map { change in
            [.text(change.member), .text(change.address), .text(change.role), .text(change.status.rawValue),
             .text(Timestamp.format(change.t)), .json(change.tags)]
        }
        return table
    }

    /// Every membership change in [since, until), in order.
    public func changes(since: Int64?, until: Int64?, members: [String] = []) throws(QueryError) -> [MembershipChange] {
        var conditions = SQLConditions()
        conditions.timeRange("t", since: since, until: until)
        conditions.isIn("member", members)
        let sql = "SELECT \(MembershipChange.columns) FROM membership \(conditions.whereClause) ORDER BY t, id"
        let arguments = conditions.arguments
        return try database.read { db in try MembershipChange.fetchAll(db, sql: sql, arguments: arguments) }
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
        let (members, inventories) = try database.read { db in
            let members = try ClusterLedger.members(at: instant, in: db)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT node, body FROM inventory AS i
                    WHERE i.id = (SELECT id FROM inventory WHERE node = i.node AND t <= ? ORDER BY t DESC, id DESC LIMIT 1)
                    """,
                arguments: [instant])
            var inventories: [String: Inventory] = [:]
            for row in rows {
                let body: String = row["body"]
                if let inventory = try? JSONDecoder().decode(Inventory.self, from: Data(body.utf8)) {
                    inventories[row["node"]] = inventory
                }
            }
            return (members, inventories)
        }
        let names = Set(members.map(\.member)).union(inventories.keys).sorted()
        let byName = Dictionary(members.map { ($0.member, $0) }, uniquingKeysWith: { $1 })
        var table = Table(columns: ["name", "address", "role", "state", "since", "services", "image"])
        for name in names {
            let member = byName[name]
            let inventory = inventories[name]
            let services = inventory.map { inventory in
                "\(inventory.services.filter(\.up).count)/\(inventory.services.count) up"
                    + (inventory.services.isEmpty ? "" : " (" + inventory.services.map { "\($0.name)\($0.up ? "" : " down")" }.joined(separator: ", ") + ")")
            }
            table.rows.append([
                .text(name),
                .text(member?.address ?? inventory?.addresses.first ?? ""),
                .text(member?.role.isEmpty == false ? member!.role : inventory?.role ?? ""),
                // A node that reports an inventory but is not in Serf (the collector's own node).
                .text(member?.status.rawValue ?? "not in serf"),
                member.map { .text(Timestamp.format($0.t)) } ?? .null,
                services.map { .text($0) } ?? .null,
                inventory?.image.map { .text($0) } ?? .null,
            ])
        }
        return table
    }

    /// Each node's latest inventory at `instant` as JSON (the `docker inspect` of a node).
    public func inventory(of node: String, at instant: Int64) throws(QueryError) -> String? {
        try database.read { db in
            try String.fetchOne(
                db, sql: "SELECT body FROM inventory WHERE node = ? AND t <= ? ORDER BY t DESC, id DESC LIMIT 1",
                arguments: [node, instant])
        }
    }
}

extension ClusterHistory {
    /// Every recorded render and apply of a load balancer's configuration in [since, until),
    /// oldest first, with each version's text when `withText` (it is the one large column).
    public func configRecords(node: String? = nil, since: Int64? = nil, until: Int64? = nil, withText: Bool = false)
        throws(QueryError) -> [ConfigRecord]
    {
        var conditions = SQLConditions()
        if let node { conditions.add("node = ?", [node]) }
        conditions.timeRange("t", since: since, until: until)
        let sql = """
            SELECT node, version, t, sha256, method, outcome, trigger, duration_ms, message, servers, diff\(withText ? ", text" : "")
            FROM configs \(conditions.whereClause) ORDER BY t, id
            """
        let arguments = conditions.arguments
        return try database.read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(ConfigRecord.init) }
    }

    /// The configurations in [since, until) as `logq configs` prints them.
    public func configs(node: String? = nil, since: Int64? = nil, until: Int64? = nil) throws(QueryError) -> Table {
        Self.configs(try configRecords(node: node, since: since, until: until))
    }

    static func configs(_ records: [ConfigRecord]) -> Table {
        var table = Table(columns: ["version", "time", "node", "method", "outcome", "servers", "trigger", "duration_ms", "sha256", "message"])
        table.rows = records.map { record in
            [.integer(Int64(record.version)), .text(Timestamp.format(record.t)), .text(record.node), .text(record.method),
             .text(record.outcome), .json(CanonicalJSON.string(record.servers)), .json(CanonicalJSON.string(record.trigger)),
             .integer(Int64(record.durationMilliseconds)), .text(String(record.sha256.prefix(12))),
             record.message.map { .text($0) } ?? .null]
        }
        return table
    }

    /// The text of version `version` (of `node`, or of the only node that has one).
    public func configText(version: Int, node: String? = nil) throws(QueryError) -> String {
        let texts = try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT node, text FROM configs WHERE version = ?\(node == nil ? "" : " AND node = ?")",
                arguments: node.map { [version, $0] } ?? [version])
        }
        guard let first = texts.first else {
            let known = try database.read { db in try Int.fetchAll(db, sql: "SELECT version FROM configs ORDER BY version") }
            throw .badArgument(
                "no config version \(version)\(node.map { " from node \($0)" } ?? "") (recorded: \(known.isEmpty ? "none yet" : known.map(String.init).joined(separator: ", ")))")
        }
        guard texts.count == 1 else {
            throw .badArgument("several load balancers have a version \(version); choose one with --node (\(texts.map { $0["node"] as String }.joined(separator: ", ")))")
        }
        return first["text"]
    }
}

extension ClusterHistory {
    /// The marks, oldest first (none in a store made before marks existed).
    public func markList() throws(QueryError) -> [Mark] {
        try database.read { db in try db.tableExists("marks") ? try Mark.all(in: db) : [] }
    }

    /// The marks as `logq marks` prints them.
    public func marks() throws(QueryError) -> Table {
        var table = Table(columns: ["name", "time", "event", "note"])
        table.rows = try markList().map { [.text($0.name), .text(Timestamp.format($0.t)), .integer($0.event), .text($0.note)] }
        return table
    }

    /// Each mark's task, oldest first: from the mark to the next one (the last lasts to the end).
    /// Reports and exports compute with a task's ends (`until - 1`, spans), so a stored mark
    /// time outside `Timestamp.supportedRange` is clamped into it here.
    public func tasks() throws(QueryError) -> [MarkedTask] {
        let marks = try markList().map { mark in
            var mark = mark
            mark.t = Timestamp.clamped(mark.t)
            return mark
        }
        return marks.enumerated().map { index, mark in
            MarkedTask(mark: mark, until: index + 1 < marks.count ? marks[index + 1].t : nil)
        }
    }
}

/// A task: a mark's stretch of history, [mark.t, until).
public struct MarkedTask: Sendable, Equatable {
    public var mark: Mark
    /// The next mark's time; nil for the last mark, whose task lasts to the end of the history.
    public var until: Int64?
    public var since: Int64 { mark.t }
}

extension QueryError {
    /// A `--mark NAME` that names no mark.
    static func unknownMark(_ name: String, known: [String]) -> QueryError {
        .badArgument("no mark named '\(name)' (marks: \(known.isEmpty ? "none yet" : known.joined(separator: ", ")))")
    }
}

/// One row of `configs`: a load balancer's render and apply of a configuration version.
public struct ConfigRecord: Sendable, Equatable {
    public var node: String
    public var version: Int
    public var t: Int64
    public var sha256: String
    public var method: String
    public var outcome: String
    public var trigger: [String]
    public var durationMilliseconds: Int
    public var message: String?
    public var servers: [String]
    public var diff: String
    /// The configuration itself, when asked for (`configRecords(withText: true)`).
    public var text: String?

    init(row: Row) {
        node = row["node"]
        version = row["version"]
        t = row["t"]
        sha256 = row["sha256"]
        method = row["method"]
        outcome = row["outcome"]
        trigger = Self.strings(row["trigger"])
        durationMilliseconds = row["duration_ms"]
        message = row["message"]
        servers = Self.strings(row["servers"])
        diff = row["diff"]
        text = row.hasColumn("text") ? row["text"] : nil
    }

    /// The stored JSON arrays (`trigger`, `servers`), written by the collector with `CanonicalJSON`.
    private static func strings(_ json: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? []
    }
}

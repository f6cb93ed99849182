import Foundation
import GRDB
import MusterStore
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
    public func timeline(since: Int64?, until: Int64?, members: [String] = []) throws(QueryError) -> Table {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let since {
            conditions.append("t >= ?")
            arguments += [since]
        }
        if let until {
            conditions.append("t < ?")
            arguments += [until]
        }
        if !members.isEmpty {
            conditions.append("member IN (\(Array(repeating: "?", count: members.count).joined(separator: ",")))")
            arguments += StatementArguments(members)
        }
        let sql = "SELECT \(MembershipChange.columns) FROM membership"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) + " ORDER BY t, id"
        let changes = try database.read { db in try MembershipChange.fetchAll(db, sql: sql, arguments: arguments) }
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
    /// Every recorded render and apply of a load balancer's configuration, oldest first.
    public func configs(node: String? = nil) throws(QueryError) -> Table {
        let rows = try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT version, t, node, method, outcome, servers, trigger, duration_ms, sha256, message FROM configs
                    \(node == nil ? "" : "WHERE node = ?") ORDER BY t, id
                    """,
                arguments: node.map { [$0] } ?? [])
        }
        var table = Table(columns: ["version", "time", "node", "method", "outcome", "servers", "trigger", "duration_ms", "sha256", "message"])
        table.rows = rows.map { row in
            [.integer(row["version"]), .text(Timestamp.format(row["t"])), .text(row["node"]), .text(row["method"]),
             .text(row["outcome"]), .json(row["servers"]), .json(row["trigger"]), .integer(row["duration_ms"]),
             .text(String((row["sha256"] as String).prefix(12))), (row["message"] as String?).map { .text($0) } ?? .null]
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

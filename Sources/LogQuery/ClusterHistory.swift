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

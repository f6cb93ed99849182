import Foundation
import GRDB
import MusterStore
import MusterWire

/// The cluster's history: `membership` (through `ClusterLedger`'s own queries), `inventory`,
/// `configs`, `marks` and `events`.
extension SQLiteHistoryReader: ClusterHistoryReader {
    public func members(at t: Int64) throws(StoreError) -> [MembershipChange] {
        try read { db in try ClusterLedger.members(at: t, in: db) }
    }

    public func changes(since: Int64?, until: Int64?, members: [String]) throws(StoreError) -> [MembershipChange] {
        var conditions = SQLConditions()
        conditions.timeRange("t", since: since, until: until)
        conditions.isIn("member", members)
        let sql = "SELECT \(MembershipChange.columns) FROM membership \(conditions.whereClause) ORDER BY t, id"
        let arguments = conditions.arguments
        return try read { db in try MembershipChange.fetchAll(db, sql: sql, arguments: arguments) }
    }

    public func nodes(at t: Int64) throws(StoreError) -> ClusterNodes {
        try read { db in
            let members = try ClusterLedger.members(at: t, in: db)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT node, t, body FROM inventory AS i
                    WHERE i.id = (SELECT id FROM inventory WHERE node = i.node AND t <= ? ORDER BY t DESC, id DESC LIMIT 1)
                    """,
                arguments: [t])
            var inventories: [String: ReportedInventory] = [:]
            for row in rows {
                let body: String = row["body"]
                if let inventory = try? JSONDecoder().decode(Inventory.self, from: Data(body.utf8)) {
                    // Stored rows are outside input too: clamp before anyone computes with it.
                    inventories[row["node"]] = ReportedInventory(t: Timestamp.clamped(row["t"]), inventory: inventory)
                }
            }
            return ClusterNodes(members: members, inventories: inventories)
        }
    }

    public func inventory(of node: String, at t: Int64) throws(StoreError) -> String? {
        try read { db in
            try String.fetchOne(
                db, sql: "SELECT body FROM inventory WHERE node = ? AND t <= ? ORDER BY t DESC, id DESC LIMIT 1",
                arguments: [node, t])
        }
    }

    public func configRecords(node: String?, since: Int64?, until: Int64?, withText: Bool) throws(StoreError) -> [ConfigRecord] {
        var conditions = SQLConditions()
        if let node { conditions.add("node = ?", [node]) }
        conditions.timeRange("t", since: since, until: until)
        let sql = """
            SELECT node, version, t, sha256, method, outcome, trigger, duration_ms, message, servers, diff\(withText ? ", text" : "")
            FROM configs \(conditions.whereClause) ORDER BY t, id
            """
        let arguments = conditions.arguments
        return try read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(ConfigRecord.init) }
    }

    public func configTexts(version: Int, node: String?) throws(StoreError) -> [ConfigText] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT node, text FROM configs WHERE version = ?\(node == nil ? "" : " AND node = ?")",
                arguments: node.map { [version, $0] } ?? [version]
            ).map { ConfigText(node: $0["node"], text: $0["text"]) }
        }
    }

    public func configVersions() throws(StoreError) -> [Int] {
        try read { db in try Int.fetchAll(db, sql: "SELECT version FROM configs ORDER BY version") }
    }

    public func marks() throws(StoreError) -> [Mark] {
        try read { db in try db.tableExists("marks") ? try Mark.all(in: db) : [] }
    }

    /// An open end is the end of `Int64` (the same query either way).
    public func events(since: Int64?, until: Int64?) throws(StoreError) -> [StoredEvent] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, t, kind, body FROM events WHERE t >= ? AND t < ? ORDER BY t, id",
                arguments: [since ?? Int64.min, until ?? Int64.max]
            ).map(StoredEvent.init(row:))
        }
    }
}

extension ConfigRecord {
    /// A `configs` row; `text` when the query selected it.
    init(row: Row) {
        self.init(
            node: row["node"], version: row["version"], t: row["t"], sha256: row["sha256"], method: row["method"],
            outcome: ConfigApply.Outcome(rawValue: row["outcome"]), trigger: Self.strings(row["trigger"]), durationMilliseconds: row["duration_ms"],
            message: row["message"], servers: Self.strings(row["servers"]), diff: row["diff"],
            text: row.hasColumn("text") ? row["text"] : nil)
    }

    /// The stored JSON arrays (`trigger`, `servers`), written by the collector with `CanonicalJSON`.
    private static func strings(_ json: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? []
    }
}

import Foundation
import GRDB
import MusterStore
import MusterWire

extension MembershipChange: FetchableRecord {
    public init(row: Row) throws {
        self.init(
            id: row["id"],
            // Stored rows are outside input too: a row written before times were range-checked
            // must not overflow the arithmetic of whoever reads it.
            t: Timestamp.clamped(row["t"]),
            member: row["member"],
            change: Change(rawValue: row["change"]) ?? .updated,
            status: MemberStatus(rawValue: row["status"]) ?? .failed,
            address: row["address"], role: row["role"], tags: row["tags"],
            observer: row["observer"], cause: row["cause"], event: row["event"])
    }

    public static let columns = "id, t, member, change, status, address, role, tags, observer, cause, event"
}

/// The SQLite store's rows for `ClusterLedger`'s rules: its queries, inside the ingest
/// transaction (`db`) that stores the lines.
struct SQLiteLedgerRows: LedgerRows {
    let db: Database

    func state(of member: String, at t: Int64) throws -> MembershipChange? {
        try ClusterLedger.state(of: member, at: t, in: db)
    }

    func nextChange(of member: String, after t: Int64) throws -> MembershipChange? {
        try MembershipChange.fetchOne(
            db,
            sql: "SELECT \(MembershipChange.columns) FROM membership WHERE member = ? AND t > ? ORDER BY t, id LIMIT 1",
            arguments: [member, t])
    }

    func members(seenAt address: String, except: String, until t: Int64) throws -> [String] {
        try String.fetchAll(
            db, sql: "SELECT DISTINCT member FROM membership WHERE address = ? AND member != ? AND t <= ? ORDER BY member",
            arguments: [address, except, t])
    }

    func latestInventory(of node: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT body FROM inventory WHERE node = ? ORDER BY t DESC, id DESC LIMIT 1", arguments: [node])
    }

    func appendEvent(kind: EventKind, t: Int64, body: String) throws -> Int64 {
        try db.execute(sql: "INSERT INTO events(t, kind, body) VALUES (?, ?, ?)", arguments: [t, kind.rawValue, body])
        return db.lastInsertedRowID
    }

    func insertChange(_ change: MembershipChange) throws {
        try db.execute(
            sql: """
                INSERT INTO membership(t, member, change, status, address, role, tags, observer, cause, event)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                change.t, change.member, change.change.rawValue, change.status.rawValue, change.address, change.role, change.tags,
                change.observer, change.cause, change.event,
            ])
    }

    func moveChange(id: Int64, of member: String, to t: Int64, observer: String, cause: String) throws {
        try db.execute(sql: "UPDATE membership SET t = ?, observer = ?, cause = ? WHERE id = ?", arguments: [t, observer, cause, id])
    }

    func insertInventory(node: String, t: Int64, body: String, event: Int64) throws {
        try db.execute(sql: "INSERT INTO inventory(node, t, body, event) VALUES (?, ?, ?, ?)", arguments: [node, t, body, event])
    }

    func putConfig(_ config: ConfigApply, node: String, t: Int64, event: Int64) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO configs(node, version, t, sha256, method, outcome, trigger, duration_ms, message, servers,
                                               diff, text, event)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                node, config.version, t, config.sha256, config.method, config.outcome.rawValue,
                CanonicalJSON.string(config.trigger), config.durationMilliseconds, config.message,
                CanonicalJSON.string(config.servers), config.diff, config.text, event,
            ])
    }
}

extension ClusterLedger {
    /// Applies newly stored journal lines (in arrival order) inside the transaction `db`;
    /// returns how many stream events it appended.
    @discardableResult
    public func apply(_ entries: [JournalEntry], in db: Database) throws -> Int {
        var rows = SQLiteLedgerRows(db: db)
        return try apply(entries, to: &rows)
    }

    /// Appends to the stream inside the transaction `db`.
    @discardableResult
    static func appendEvent(kind: EventKind, t: Int64, body: some StreamEventContent, in db: Database) throws -> Int64 {
        var rows = SQLiteLedgerRows(db: db)
        return try appendEvent(kind: kind, t: t, body: body, to: &rows)
    }

    /// The member's latest change at or before `t`.
    public static func state(of member: String, at t: Int64, in db: Database) throws -> MembershipChange? {
        try MembershipChange.fetchOne(
            db,
            sql: "SELECT \(MembershipChange.columns) FROM membership WHERE member = ? AND t <= ? ORDER BY t DESC, id DESC LIMIT 1",
            arguments: [member, t])
    }

    /// Every member's latest change at or before `t` (reaped members left out), by name.
    public static func members(at t: Int64, in db: Database) throws -> [MembershipChange] {
        try MembershipChange.fetchAll(
            db,
            sql: """
                SELECT \(MembershipChange.columns) FROM membership AS m
                WHERE m.id = (SELECT id FROM membership WHERE member = m.member AND t <= ? ORDER BY t DESC, id DESC LIMIT 1)
                  AND m.status != 'reaped'
                ORDER BY m.member
                """,
            arguments: [t])
    }
}

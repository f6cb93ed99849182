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

/// Turns what agents observed (their journal lines) into the canonical membership, the
/// inventory and the event stream, inside the ingest transaction that stored the lines.
///
/// Every observer reports every change (each node's Serf runs the handler), so the ledger
/// records a change only when an observation differs from the member's state at the
/// observation's own time: the first report of a join is a change, the other observers'
/// reports of it are not, and a report that arrives late lands at its own instant without
/// disturbing what came after. A late report of a change already recorded at a later instant
/// moves that change back to the earlier instant rather than recording it twice.
///
/// Snapshots (reconciliation) correct the view when a handler call was lost, but observers
/// notice failures a few seconds apart, so a snapshot that contradicts a change younger than
/// `snapshotSettle` is taken for that lag and ignored; the next snapshot repeats it if it was
/// right.
public struct ClusterLedger: Sendable {
    public var snapshotSettle: Int64

    public init(snapshotSettle: Duration = .seconds(10)) {
        let parts = snapshotSettle.components
        self.snapshotSettle = parts.seconds * Timestamp.nanosPerSecond + parts.attoseconds / 1_000_000_000
    }

    /// Applies newly stored journal lines (in arrival order); returns how many stream events it appended.
    @discardableResult
    public func apply(_ entries: [JournalEntry], in db: Database) throws -> Int {
        var appended = 0
        for entry in entries {
            switch entry.event {
            case .memberJoin, .memberLeave, .memberFailed, .memberUpdate, .memberReap:
                guard let member = entry.member, let status = entry.event.memberStatus else { continue }
                appended += try observe(member, status: status, at: entry.t, observer: entry.observer, cause: entry.event.rawValue, in: db)
            case .snapshot:
                for member in entry.members ?? [] {
                    appended += try observe(
                        member, status: member.status ?? .alive, at: entry.t, observer: entry.observer, cause: "snapshot", in: db)
                }
            case .user, .query:
                guard let user = entry.user else { continue }
                try Self.appendEvent(
                    kind: entry.event == .user ? .user : .query, t: entry.t, body: ObservedUserEvent(user, observer: entry.observer),
                    in: db)
                appended += 1
            case .config:
                guard let config = entry.config else { continue }
                appended += try record(config, from: entry.observer, at: entry.t, in: db)
            case .haproxyStats:
                // Kept as the log line it arrived as; nothing to derive.
                continue
            case .inventory:
                guard let inventory = entry.inventory else { continue }
                appended += try record(inventory, at: entry.t, in: db)
            }
        }
        return appended
    }

    // MARK: Membership

    private func observe(
        _ member: Member, status: MemberStatus, at t: Int64, observer: String, cause: String, in db: Database
    ) throws -> Int {
        let tags = CanonicalJSON.string(member.tags)
        let current = try Self.state(of: member.name, at: t, in: db)
        if let current {
            if current.status == status, current.address == member.address, current.role == member.role, current.tags == tags {
                return 0
            }
            if cause == "snapshot", t - current.t < snapshotSettle { return 0 }
            // A member that is gone says nothing new by being updated or reaped again.
            if current.status == .reaped, status != .alive { return 0 }
            // A member that left gracefully does not fail afterwards: an observer that says so
            // missed the leave (seen in a clean-clone CI run: joined, left, failed, left). Only
            // a join brings it back.
            if current.status == .left, status == .failed { return 0 }
        } else if status == .reaped {
            return 0
        }
        // Another observer already reported this very change, later than this one saw it
        // (agents ship at their own pace): the change happened at the earlier instant.
        if let next = try Self.nextChange(of: member.name, after: t, in: db), next.status == status,
            next.address == member.address, next.role == member.role, next.tags == tags
        {
            try db.execute(
                sql: "UPDATE membership SET t = ?, observer = ?, cause = ? WHERE id = ?",
                arguments: [t, observer, cause, next.id])
            return 0
        }
        var appended = 0
        if status == .alive {
            // Someone else alive at this address has been replaced: addresses are what
            // HAProxy routes to, so one address must not stand for two live members.
            for holder in try Self.aliveHolders(of: member.address, except: member.name, at: t, in: db) {
                appended += try insertChange(
                    member: holder.member, change: .replaced, status: .replaced, address: holder.address, role: holder.role,
                    tags: holder.tags, t: t, observer: observer, cause: "address taken by \(member.name)", in: db)
            }
        }
        let change: MembershipChange.Change
        switch status {
        case .alive:
            if let current, current.status == .alive {
                change = current.address != member.address ? .readdressed : .updated
            } else {
                change = .joined
            }
        case .left: change = .left
        case .failed: change = .failed
        case .reaped: change = .reaped
        case .replaced: change = .replaced
        }
        appended += try insertChange(
            member: member.name, change: change, status: status, address: member.address, role: member.role, tags: tags, t: t,
            observer: observer, cause: cause, in: db, previous: current)
        return appended
    }

    private func insertChange(
        member: String, change: MembershipChange.Change, status: MemberStatus, address: String, role: String, tags: String,
        t: Int64, observer: String, cause: String, in db: Database, previous: MembershipChange? = nil
    ) throws -> Int {
        let body = MembershipChangeEvent(
            member: member, change: change, status: status, address: address, role: role,
            tags: (try? JSONDecoder().decode([String: String].self, from: Data(tags.utf8))) ?? [:], observer: observer, cause: cause,
            previous: previous.map { MembershipChangeEvent.Previous(status: $0.status, address: $0.address) })
        let event = try Self.appendEvent(kind: .membership, t: t, body: body, in: db)
        try db.execute(
            sql: """
                INSERT INTO membership(t, member, change, status, address, role, tags, observer, cause, event)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [t, member, change.rawValue, status.rawValue, address, role, tags, observer, cause, event])
        return 1
    }

    /// The member's latest change at or before `t`.
    public static func state(of member: String, at t: Int64, in db: Database) throws -> MembershipChange? {
        try MembershipChange.fetchOne(
            db,
            sql: "SELECT \(MembershipChange.columns) FROM membership WHERE member = ? AND t <= ? ORDER BY t DESC, id DESC LIMIT 1",
            arguments: [member, t])
    }

    private static func nextChange(of member: String, after t: Int64, in db: Database) throws -> MembershipChange? {
        try MembershipChange.fetchOne(
            db,
            sql: "SELECT \(MembershipChange.columns) FROM membership WHERE member = ? AND t > ? ORDER BY t, id LIMIT 1",
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

    private static func aliveHolders(of address: String, except name: String, at t: Int64, in db: Database) throws
        -> [MembershipChange]
    {
        let candidates = try String.fetchAll(
            db, sql: "SELECT DISTINCT member FROM membership WHERE address = ? AND member != ? AND t <= ?",
            arguments: [address, name, t])
        return try candidates.compactMap { member in
            guard let state = try state(of: member, at: t, in: db), state.status == .alive, state.address == address else {
                return nil
            }
            return state
        }
    }


    // MARK: Inventory and events

    private func record(_ inventory: Inventory, at t: Int64, in db: Database) throws -> Int {
        let body = CanonicalJSON.string(inventory)
        // An agent that restarts reports again what it already reported.
        let latest = try String.fetchOne(
            db, sql: "SELECT body FROM inventory WHERE node = ? ORDER BY t DESC, id DESC LIMIT 1", arguments: [inventory.node])
        guard latest != body else { return 0 }
        let event = try Self.appendEvent(kind: .inventory, t: t, body: inventory, in: db)
        try db.execute(
            sql: "INSERT INTO inventory(node, t, body, event) VALUES (?, ?, ?, ?)", arguments: [inventory.node, t, body, event])
        return 1
    }

    private func record(_ config: ConfigApply, from node: String, at t: Int64, in db: Database) throws -> Int {
        let event = try Self.appendEvent(kind: .config, t: t, body: ConfigApplyEvent(node: node, apply: config), in: db)
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
        return 1
    }

    /// Appends to the stream; the body gets the event's time as `t` and `time` (``StreamEventBody``).
    @discardableResult
    static func appendEvent(kind: EventKind, t: Int64, body: some StreamEventContent, in db: Database) throws -> Int64 {
        let json = try StreamEventBody(t: t, content: body).json()
        try db.execute(sql: "INSERT INTO events(t, kind, body) VALUES (?, ?, ?)", arguments: [t, kind.rawValue, json])
        return db.lastInsertedRowID
    }
}

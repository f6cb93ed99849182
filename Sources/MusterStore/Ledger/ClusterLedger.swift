import Foundation
import MusterWire

/// Turns what agents observed (their journal lines) into the canonical membership, the
/// inventory and the event stream, inside the commit that stored the lines. The rules are
/// here once; each backend gives them its rows through `LedgerRows`.
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
        self.snapshotSettle = snapshotSettle.saturatingNanoseconds
    }

    /// Applies newly stored journal lines (in arrival order); returns how many stream events it appended.
    @discardableResult
    public func apply(_ entries: [JournalEntry], to rows: inout some LedgerRows) throws -> Int {
        var appended = 0
        for entry in entries {
            switch entry.event {
            case .memberJoin, .memberLeave, .memberFailed, .memberUpdate, .memberReap:
                guard let member = entry.member, let status = entry.event.memberStatus else { continue }
                appended += try observe(
                    member, status: status, at: entry.t, observer: entry.observer, cause: entry.event.rawValue, rows: &rows)
            case .snapshot:
                for member in entry.members ?? [] {
                    appended += try observe(
                        member, status: member.status ?? .alive, at: entry.t, observer: entry.observer, cause: "snapshot",
                        rows: &rows)
                }
            case .user, .query:
                guard let user = entry.user else { continue }
                try Self.appendEvent(
                    kind: entry.event == .user ? .user : .query, t: entry.t, body: ObservedUserEvent(user, observer: entry.observer),
                    to: &rows)
                appended += 1
            case .config:
                guard let config = entry.config else { continue }
                let event = try Self.appendEvent(
                    kind: .config, t: entry.t, body: ConfigApplyEvent(node: entry.observer, apply: config), to: &rows)
                try rows.putConfig(config, node: entry.observer, t: entry.t, event: event)
                appended += 1
            case .haproxyStats:
                // Kept as the log line it arrived as; nothing to derive.
                continue
            case .inventory:
                guard let inventory = entry.inventory else { continue }
                let body = CanonicalJSON.string(inventory)
                // An agent that restarts reports again what it already reported.
                guard try rows.latestInventory(of: inventory.node) != body else { continue }
                let event = try Self.appendEvent(kind: .inventory, t: entry.t, body: inventory, to: &rows)
                try rows.insertInventory(node: inventory.node, t: entry.t, body: body, event: event)
                appended += 1
            }
        }
        return appended
    }

    /// Appends to the stream; the body gets the event's time as `t` and `time` (``StreamEventBody``).
    @discardableResult
    public static func appendEvent(kind: EventKind, t: Int64, body: some StreamEventContent, to rows: inout some LedgerRows) throws
        -> Int64
    {
        try rows.appendEvent(kind: kind, t: t, body: try StreamEventBody(t: t, content: body).json())
    }

    // MARK: Membership

    private func observe(
        _ member: Member, status: MemberStatus, at t: Int64, observer: String, cause: String, rows: inout some LedgerRows
    ) throws -> Int {
        let tags = CanonicalJSON.string(member.tags)
        let current = try rows.state(of: member.name, at: t)
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
        if let next = try rows.nextChange(of: member.name, after: t), next.status == status,
            next.address == member.address, next.role == member.role, next.tags == tags
        {
            try rows.moveChange(id: next.id, of: member.name, to: t, observer: observer, cause: cause)
            return 0
        }
        var appended = 0
        if status == .alive {
            // Someone else alive at this address has been replaced: addresses are what
            // HAProxy routes to, so one address must not stand for two live members.
            for holder in try aliveHolders(of: member.address, except: member.name, at: t, rows: rows) {
                appended += try insertChange(
                    member: holder.member, change: .replaced, status: .replaced, address: holder.address, role: holder.role,
                    tags: holder.tags, t: t, observer: observer, cause: "address taken by \(member.name)", rows: &rows)
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
            observer: observer, cause: cause, rows: &rows, previous: current)
        return appended
    }

    private func insertChange(
        member: String, change: MembershipChange.Change, status: MemberStatus, address: String, role: String, tags: String,
        t: Int64, observer: String, cause: String, rows: inout some LedgerRows, previous: MembershipChange? = nil
    ) throws -> Int {
        let body = MembershipChangeEvent(
            member: member, change: change, status: status, address: address, role: role,
            tags: (try? JSONDecoder().decode([String: String].self, from: Data(tags.utf8))) ?? [:], observer: observer, cause: cause,
            previous: previous.map { MembershipChangeEvent.Previous(status: $0.status, address: $0.address) })
        let event = try Self.appendEvent(kind: .membership, t: t, body: body, to: &rows)
        try rows.insertChange(
            MembershipChange(
                id: 0, t: t, member: member, change: change, status: status, address: address, role: role, tags: tags,
                observer: observer, cause: cause, event: event))
        return 1
    }

    private func aliveHolders(of address: String, except name: String, at t: Int64, rows: some LedgerRows) throws
        -> [MembershipChange]
    {
        try rows.members(seenAt: address, except: name, until: t).compactMap { member in
            guard let state = try rows.state(of: member, at: t), state.status == .alive, state.address == address else {
                return nil
            }
            return state
        }
    }
}

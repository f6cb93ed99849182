import MusterWire

/// The ledger's rows (membership, inventory, configurations) and the event stream, as
/// `ClusterLedger`'s rules read and change them inside one commit.
///
/// A backend gives the rules a view of its rows as they stand at the commit (every earlier
/// commit applied, and every change this commit made so far), and keeps their changes in the
/// commit: they are stored with the commit's lines or not at all.
///
/// Orders every backend keeps, so the rules decide alike everywhere:
/// - a member's changes are ordered by `t`, ties by the order they were inserted;
/// - event ids grow in the order `appendEvent` is called.
public protocol LedgerRows {
    /// The member's latest change at or before `t` (of two at the same `t`, the later inserted).
    func state(of member: String, at t: Int64) throws -> MembershipChange?

    /// The member's earliest change after `t` (of two at the same `t`, the earlier inserted).
    func nextChange(of member: String, after t: Int64) throws -> MembershipChange?

    /// The members other than `except` with a change at or before `t` at `address`, by name
    /// (the order decides the order of their `replaced` events).
    func members(seenAt address: String, except: String, until t: Int64) throws -> [String]

    /// The body of `node`'s latest inventory, nil when it sent none.
    func latestInventory(of node: String) throws -> String?

    /// Appends an event to the stream and returns its id.
    mutating func appendEvent(kind: EventKind, t: Int64, body: String) throws -> Int64

    /// Stores a new membership change (its `id` is the backend's to give).
    mutating func insertChange(_ change: MembershipChange) throws

    /// Moves the change `id` of `member` to the earlier instant `t`, now credited to `observer` and `cause`.
    mutating func moveChange(id: Int64, of member: String, to t: Int64, observer: String, cause: String) throws

    /// Stores a node's inventory (the canonical JSON of `Inventory`).
    mutating func insertInventory(node: String, t: Int64, body: String, event: Int64) throws

    /// Stores a load balancer's configuration record, replacing one of the same node and version.
    mutating func putConfig(_ config: ConfigApply, node: String, t: Int64, event: Int64) throws
}

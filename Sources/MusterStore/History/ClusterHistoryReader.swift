import MusterWire

/// One render and apply of a load balancer's configuration version.
public struct ConfigRecord: Sendable, Equatable {
    public var node: String
    public var version: Int
    public var t: Int64
    public var sha256: String
    public var method: String
    public var outcome: ConfigApply.Outcome
    public var trigger: [String]
    public var durationMilliseconds: Int
    public var message: String?
    public var servers: [String]
    public var diff: String
    /// The configuration itself, when asked for (`configRecords(withText: true)`).
    public var text: String?

    public init(
        node: String, version: Int, t: Int64, sha256: String, method: String, outcome: ConfigApply.Outcome, trigger: [String],
        durationMilliseconds: Int, message: String?, servers: [String], diff: String, text: String? = nil
    ) {
        self.node = node
        self.version = version
        self.t = t
        self.sha256 = sha256
        self.method = method
        self.outcome = outcome
        self.trigger = trigger
        self.durationMilliseconds = durationMilliseconds
        self.message = message
        self.servers = servers
        self.diff = diff
        self.text = text
    }
}

/// The text of one configuration version, and the load balancer it is from.
public struct ConfigText: Sendable, Equatable {
    public var node: String
    public var text: String

    public init(node: String, text: String) {
        self.node = node
        self.text = text
    }
}

/// The cluster at an instant: the members, and each node's latest inventory.
public struct ClusterNodes: Sendable, Equatable {
    /// Every member's latest change (reaped members left out), by name.
    public var members: [MembershipChange]
    /// Each node's latest inventory, by node; an inventory that cannot be decoded is left out.
    public var inventories: [String: ReportedInventory]

    public init(members: [MembershipChange], inventories: [String: ReportedInventory]) {
        self.members = members
        self.inventories = inventories
    }
}

/// A node's inventory and when the node reported it: a node that left or failed since then
/// cannot report again, so its last inventory describes the node as it was, not as it is.
public struct ReportedInventory: Sendable, Equatable {
    /// When it was reported, nanoseconds since the epoch.
    public var t: Int64
    public var inventory: Inventory

    public init(t: Int64, inventory: Inventory) {
        self.t = t
        self.inventory = inventory
    }
}

/// A task: a mark's stretch of history, [mark.t, until).
public struct MarkedTask: Sendable, Equatable {
    public var mark: Mark
    /// The next mark's time; nil for the last mark, whose task lasts to the end of the history.
    public var until: Int64?
    public var since: Int64 { mark.t }

    public init(mark: Mark, until: Int64?) {
        self.mark = mark
        self.until = until
    }

    /// Each mark's task, in the order of `marks` (oldest first): from the mark to the next one,
    /// the last to the end. Reports and exports compute with a task's ends (`until - 1`,
    /// spans), so a stored mark time outside `Timestamp.supportedRange` is clamped into it here.
    public static func tasks(of marks: [Mark]) -> [MarkedTask] {
        let marks = marks.map { mark in
            var mark = mark
            mark.t = Timestamp.clamped(mark.t)
            return mark
        }
        return marks.enumerated().map { index, mark in
            MarkedTask(mark: mark, until: index + 1 < marks.count ? marks[index + 1].t : nil)
        }
    }
}

/// The cluster's history: membership, nodes, configurations, marks and the event stream, as
/// the ledger recorded them inside the commits that stored their journal lines.
///
/// Guarantees every backend gives:
///
/// - **One snapshot per call**, of committed commits only (see `LogReader`): the members and
///   inventories of `nodes(at:)` are of the same state, and the ledger's changes are never
///   seen without the lines that caused them.
/// - **"At T" means the latest row at or before T**, ties broken by the later-stored row: so
///   `members(at:)` and `nodes(at:)` answer the same for every T after a prune's cutoff as
///   before it (`StoreMaintenance` keeps each subject's latest row).
/// - **Ranges are [since, until)**, either end open, and lists are in time order (then id),
///   so the same store gives the same answers in the same order.
/// - Reading never writes and never blocks the collector; a store that cannot be read throws
///   `StoreError.unreadable`. Calls block the calling thread, from any thread.
public protocol ClusterHistoryReader: Sendable {
    /// Who was a member at `t` (reaped members left out), by name.
    func members(at t: Int64) throws(StoreError) -> [MembershipChange]

    /// Every membership change in [since, until) of `members` (all when empty), in order.
    func changes(since: Int64?, until: Int64?, members: [String]) throws(StoreError) -> [MembershipChange]

    /// Every member and every node's latest inventory at `t`.
    func nodes(at t: Int64) throws(StoreError) -> ClusterNodes

    /// `node`'s latest inventory at `t` as it was sent (JSON), or nil when it sent none.
    func inventory(of node: String, at t: Int64) throws(StoreError) -> String?

    /// Every render and apply of a configuration in [since, until) (of `node`, or of every load
    /// balancer), oldest first, with each version's text when `withText` (the one large column).
    func configRecords(node: String?, since: Int64?, until: Int64?, withText: Bool) throws(StoreError) -> [ConfigRecord]

    /// The texts recorded for `version` (of `node`, or of every load balancer that has one).
    func configTexts(version: Int, node: String?) throws(StoreError) -> [ConfigText]

    /// Every recorded version number, in order (for saying which exist).
    func configVersions() throws(StoreError) -> [Int]

    /// The marks, oldest first (none in a store made before marks existed).
    func marks() throws(StoreError) -> [Mark]

    /// Every stream event in [since, until), in time order.
    func events(since: Int64?, until: Int64?) throws(StoreError) -> [StoredEvent]
}

extension ClusterHistoryReader {
    /// Each mark's task, oldest first (`MarkedTask.tasks(of:)`).
    public func tasks() throws(StoreError) -> [MarkedTask] {
        MarkedTask.tasks(of: try marks())
    }
}

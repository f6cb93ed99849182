import MusterStore
import MusterStoreEtcd
import MusterWire

/// What logq reads on the scale-out path: lines and the numbers over them from ClickHouse,
/// the cluster's history from etcd. Each call is answered by the one that holds its data, so
/// its snapshot is that store's (a call that needs both, `firstInstant`/`lastInstant`, reads
/// each once).
public final class ScaleOutHistory: HistoryStore {
    let lines: any LogReader & AggregateReader
    let history: EtcdHistoryReader

    public init(lines: any LogReader & AggregateReader, history: EtcdHistoryReader) {
        self.lines = lines
        self.history = history
    }

    // MARK: LogReader

    public func scan(_ filter: LogFilter, _ body: (LogLine) -> Void) throws(StoreError) { try lines.scan(filter, body) }

    public func linesWithContext(_ filter: LogFilter, context: Int) throws(StoreError) -> [ContextItem] {
        try lines.linesWithContext(filter, context: context)
    }

    public func newestLineID() throws(StoreError) -> Int64 { try lines.newestLineID() }

    public func searchIndexBacklog() throws(StoreError) -> Int64 { try lines.searchIndexBacklog() }

    // MARK: ClusterHistoryReader

    public func members(at t: Int64) throws(StoreError) -> [MembershipChange] { try history.members(at: t) }

    public func changes(since: Int64?, until: Int64?, members: [String]) throws(StoreError) -> [MembershipChange] {
        try history.changes(since: since, until: until, members: members)
    }

    public func nodes(at t: Int64) throws(StoreError) -> ClusterNodes { try history.nodes(at: t) }

    public func inventory(of node: String, at t: Int64) throws(StoreError) -> String? { try history.inventory(of: node, at: t) }

    public func configRecords(node: String?, since: Int64?, until: Int64?, withText: Bool) throws(StoreError) -> [ConfigRecord] {
        try history.configRecords(node: node, since: since, until: until, withText: withText)
    }

    public func configTexts(version: Int, node: String?) throws(StoreError) -> [ConfigText] {
        try history.configTexts(version: version, node: node)
    }

    public func configVersions() throws(StoreError) -> [Int] { try history.configVersions() }

    public func marks() throws(StoreError) -> [Mark] { try history.marks() }

    public func events(since: Int64?, until: Int64?) throws(StoreError) -> [StoredEvent] {
        try history.events(since: since, until: until)
    }

    // MARK: AggregateReader

    public func lineCounts(_ request: LineCountRequest) throws(StoreError) -> [LineCount] { try lines.lineCounts(request) }

    public func stats(now: Int64) throws(StoreError) -> StoreStats { try lines.stats(now: now) }

    /// The earliest time of anything stored: lines (ClickHouse), changes, configurations and
    /// marks (etcd).
    public func firstInstant() throws(StoreError) -> Int64? {
        [try lines.firstInstant(), try history.firstInstant()].compactMap { $0 }.min()
    }

    public func lastInstant() throws(StoreError) -> Int64? {
        [try lines.lastInstant(), try history.lastInstant()].compactMap { $0 }.max()
    }

    public func haproxySamples(since: Int64, until: Int64) throws(StoreError) -> [JournalEntry] {
        try lines.haproxySamples(since: since, until: until)
    }
}

/// What the collector keeps, and for how long.
///
/// Logs go first: they are most of the file. The cluster's history (membership changes,
/// inventories, configuration versions, stream events) is small and is what people come back
/// for ("who was in the cluster when"), so it is kept longer by default. Pruning history
/// never changes an answer about the kept period: each member's, node's and load balancer's
/// latest row before the cutoff stays, so `logq members --at T` and `logq nodes --at T` are
/// the same for every T after the cutoff. Marks are kept.
public struct RetentionPolicy: Sendable, Equatable {
    /// Log rows older than this are pruned (nil: no age limit).
    public var logsMaxAge: Int64?
    /// History rows older than this are pruned, keeping each subject's latest (nil: no limit).
    public var historyMaxAge: Int64?
    /// When the database uses more than this many bytes, the oldest log rows are pruned until
    /// it uses less than `sizeTarget` of it (nil: no size limit). Free pages are reused by
    /// SQLite, so "uses" is pages in use, not the file's length.
    public var maxDatabaseBytes: Int64?
    /// The fraction of `maxDatabaseBytes` a size prune brings the store down to, so it does not
    /// run again at every new batch.
    public var sizeTarget: Double = 0.9

    public init(logsMaxAge: Int64? = nil, historyMaxAge: Int64? = nil, maxDatabaseBytes: Int64? = nil) {
        self.logsMaxAge = logsMaxAge
        self.historyMaxAge = historyMaxAge
        self.maxDatabaseBytes = maxDatabaseBytes
    }

    public var isEnabled: Bool { logsMaxAge != nil || historyMaxAge != nil || maxDatabaseBytes != nil }
}

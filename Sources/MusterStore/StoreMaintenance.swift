/// One chunk of search indexing.
public struct SearchIndexProgress: Sendable, Equatable {
    /// Rows indexed by this call.
    public var indexed: Int
    /// The newest log row the index covers after this call.
    public var indexedThrough: Int64
    /// Rows stored but not yet indexed after this call.
    public var pending: Int64

    public init(indexed: Int, indexedThrough: Int64, pending: Int64) {
        self.indexed = indexed
        self.indexedThrough = indexedThrough
        self.pending = pending
    }
}

/// One chunk of pruning.
public struct PruneProgress: Sendable, Equatable {
    public var logRows = 0
    public var historyRows = 0
    /// True when this chunk did not finish what the policy asks: call again.
    public var more = false

    public init(logRows: Int = 0, historyRows: Int = 0, more: Bool = false) {
        self.logRows = logRows
        self.historyRows = historyRows
        self.more = more
    }
}

/// The work a store does behind ingest, in chunks the caller schedules.
///
/// Each call is one short unit of work. `pruneChunk` may hold up a concurrent
/// `IngestStore.commit` for at most one chunk, so the caller (the collector) decides how much
/// of the store's time pruning gets. `indexNextChunk` must not hold up `commit` at all: the
/// collector calls it back to back while rows are waiting (the SQLite store's index has a
/// writer of its own).
///
/// Guarantees every backend gives:
///
/// - **Search stays complete.** Indexing only makes `--match` faster: a reader answers the
///   rows not yet indexed by reading them, so an answer never depends on how far indexing got.
/// - **Pruning never changes an answer about the kept period.** Log rows older than the
///   policy's age go first; history rows older than its age go too, except each member's,
///   node's and load balancer's latest row before the cutoff, so members and nodes at any
///   instant after the cutoff answer as before. Marks are kept.
public protocol StoreMaintenance: Sendable {
    /// Indexes up to `maxRows` stored rows not yet searchable by words.
    func indexNextChunk(maxRows: Int) async throws -> SearchIndexProgress

    /// Prunes up to `maxRows` rows that `policy` no longer keeps, at `now`. `trimming` is the
    /// previous chunk's `more` while a size limit is being brought down to its target.
    func pruneChunk(_ policy: RetentionPolicy, now: Int64, maxRows: Int, trimming: Bool) async throws -> PruneProgress
}

/// Everything the collector needs of a store.
public typealias CollectorStore = IngestStore & EventLog & StoreMaintenance

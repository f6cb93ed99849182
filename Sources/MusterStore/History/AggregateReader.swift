import MusterWire

/// What `lineCounts` counts.
public struct LineCountRequest: Sendable, Equatable {
    /// The interval's length in nanoseconds (more than 0).
    public var interval: Int64
    /// Only lines of these nodes (all when empty).
    public var nodes: [String]
    /// [since, until), either end open.
    public var since: Int64?
    public var until: Int64?
    /// Only error lines (`ErrorRule`).
    public var errorsOnly: Bool

    public init(interval: Int64, nodes: [String] = [], since: Int64? = nil, until: Int64? = nil, errorsOnly: Bool = false) {
        self.interval = interval
        self.nodes = nodes
        self.since = since
        self.until = until
        self.errorsOnly = errorsOnly
    }
}

/// Lines of one node in one interval.
public struct LineCount: Sendable, Equatable {
    /// The interval's start: a multiple of the interval since the Unix epoch.
    public var bucket: Int64
    public var node: String
    public var count: Int64

    public init(bucket: Int64, node: String, count: Int64) {
        self.bucket = bucket
        self.node = node
        self.count = count
    }
}

/// What the store holds and how it is doing (`logq stats`).
public struct StoreStats: Sendable, Equatable {
    public struct Source: Sendable, Equatable {
        public var node: String
        public var source: String
        public var lines: Int64
        /// Bytes of the stored messages (UTF-8).
        public var bytes: Int64
        public var first: Int64
        public var last: Int64

        public init(node: String, source: String, lines: Int64, bytes: Int64, first: Int64, last: Int64) {
            self.node = node
            self.source = source
            self.lines = lines
            self.bytes = bytes
            self.first = first
            self.last = last
        }
    }

    /// Per node and source, by node then source.
    public var sources: [Source]
    /// Lines with a time in the last minute and in the last hour before `now`.
    public var linesLastMinute: Int64
    public var linesLastHour: Int64
    /// Lines stored and not yet in the search index, and the newest line id it covers.
    public var notIndexed: Int64
    public var indexedThrough: Int64
    /// The bytes the store uses, and those of its write-ahead log beside it (0 when none).
    public var databaseBytes: Int64
    public var walBytes: Int64
    /// What retention pruned (0 and nil until it first runs).
    public var prunedLogRows: Int64
    public var prunedHistoryRows: Int64
    public var prunedLogsBefore: Int64?
    public var lastPruneAt: Int64?

    public init(
        sources: [Source], linesLastMinute: Int64, linesLastHour: Int64, notIndexed: Int64, indexedThrough: Int64,
        databaseBytes: Int64, walBytes: Int64, prunedLogRows: Int64, prunedHistoryRows: Int64, prunedLogsBefore: Int64?,
        lastPruneAt: Int64?
    ) {
        self.sources = sources
        self.linesLastMinute = linesLastMinute
        self.linesLastHour = linesLastHour
        self.notIndexed = notIndexed
        self.indexedThrough = indexedThrough
        self.databaseBytes = databaseBytes
        self.walBytes = walBytes
        self.prunedLogRows = prunedLogRows
        self.prunedHistoryRows = prunedHistoryRows
        self.prunedLogsBefore = prunedLogsBefore
        self.lastPruneAt = lastPruneAt
    }

    public var lines: Int64 { sources.reduce(0) { $0 + $1.lines } }
    public var bytes: Int64 { sources.reduce(0) { $0 + $1.bytes } }
    public var ratePerSecondLastMinute: Double { Double(linesLastMinute) / 60 }
    public var ratePerSecondLastHour: Double { Double(linesLastHour) / 3_600 }
}

/// Numbers computed over the history: histograms, the store's statistics, and what a report
/// draws (the history's extent, HAProxy's request samples).
///
/// Guarantees every backend gives: one snapshot per call of committed commits only, no writes
/// and no blocking of the collector, as `LogReader` states them. Times the store holds may be
/// anything an old store kept (before times were range-checked); every time these calls
/// compute with is clamped into `Timestamp.supportedRange` first, so no answer overflows.
public protocol AggregateReader: Sendable {
    /// Lines per interval and node, in [since, until), by interval then node; intervals and
    /// nodes without lines are left out. A line counts in the interval of its time clamped into
    /// the supported range. Throws `StoreError.unknownNode` for a node no line has.
    func lineCounts(_ request: LineCountRequest) throws(StoreError) -> [LineCount]

    /// The store's statistics at `now` (clamped into the supported range).
    func stats(now: Int64) throws(StoreError) -> StoreStats

    /// The earliest and the latest time of anything stored (lines, membership changes,
    /// configurations, marks), each clamped into the supported range; nil for an empty store.
    func firstInstant() throws(StoreError) -> Int64?
    func lastInstant() throws(StoreError) -> Int64?

    /// The `haproxy-stats` samples of the event journal (source `JournalEntry.sourceID`) in
    /// [since, until), in time order; a journal line that is not a readable sample is skipped.
    /// Costs the journal's size, never that of the log lines around it.
    func haproxySamples(since: Int64, until: Int64) throws(StoreError) -> [JournalEntry]
}

/// Everything logq reads: lines, the cluster's history, and the numbers over them.
public typealias HistoryStore = LogReader & ClusterHistoryReader & AggregateReader

/// One stored line.
public struct LogLine: Sendable, Equatable {
    /// The line's place in the store: a line stored later has a larger id than every kept line
    /// stored before it.
    public var id: Int64
    public var time: Int64
    public var node: String
    public var source: String
    public var message: String
    /// Structured fields as stored (a JSON object), when the record had any.
    public var fields: String?
    /// Where the line stands in its file: the file's stream (one per agent, source and
    /// generation, numbered by the store) and the line's offset in it.
    public var stream: Int64
    public var offset: Int64

    public init(
        id: Int64, time: Int64, node: String, source: String, message: String, fields: String? = nil, stream: Int64 = 0,
        offset: Int64 = 0
    ) {
        self.id = id
        self.time = time
        self.node = node
        self.source = source
        self.message = message
        self.fields = fields
        self.stream = stream
        self.offset = offset
    }
}

/// Which lines a search wants (what `logq logs` asks for).
public struct LogFilter: Sendable {
    /// Only lines of these nodes and sources (all when empty).
    public var nodes: [String] = []
    public var sources: [String] = []
    /// [since, until), either end open.
    public var since: Int64?
    public var until: Int64?
    /// A regular expression (ICU syntax) the message must contain a match of.
    public var grep: String?
    /// Words the message must contain, in order (see `TextMatch`), answered from the
    /// full-text index.
    public var match: String?
    /// At most this many lines, oldest first.
    public var limit: Int?
    /// Only the newest this many lines (still handed over oldest first).
    public var tail: Int?
    /// Only lines stored after this id, in the order they were stored (follow mode). A store
    /// whose ids come from several clocks gives only lines old enough that none can still be
    /// stored below them (`ClickHouseLogReader.followSettling`); they come at the next call.
    public var afterID: Int64?
    /// Only lines with ids up to this one. With `afterID` it replaces the settling horizon
    /// above: every stored line in the range is given, settled or not.
    public var throughID: Int64?

    public init() {}
}

/// What `logq logs --context N` prints: matching lines with the lines around them, in groups.
public enum ContextItem: Sendable, Equatable {
    /// A line, and whether it matched the search (or is context around a match).
    case line(LogLine, match: Bool)
    /// `--` between groups that are not next to each other.
    case separator
}

/// The stored log lines: the read side of what `IngestStore.commit` writes.
///
/// Guarantees every backend gives:
///
/// - **One snapshot per call.** A call answers from one consistent state of the store: every
///   commit that had returned when the call began, nothing of one made while it runs. Two
///   calls may see different states; following the store is calling again with `afterID`.
/// - **Committed lines only**, each once: a reader never sees part of a commit, and never
///   blocks the collector's writes.
/// - **Search is complete.** `match` is answered from the search index where indexing has
///   reached and by reading the lines where it has not (`StoreMaintenance`), so an answer never
///   depends on how far indexing got; only its speed does (see `searchIndexBacklog`).
/// - **Order.** Lines come oldest first by time, then id; with `afterID`, in the order they
///   were stored (by id); with `tail`, the newest `tail` lines, still oldest first.
/// - **Requests are checked** before anything is read, in this order: a `grep` that is no
///   regular expression throws `StoreError.invalidPattern`, a `match` without words
///   `.nothingToMatch`, a node or source that no stored line has `.unknownNode` or
///   `.unknownSource` (a typo is an error, not an empty answer). A store that cannot be read
///   throws `.unreadable`.
///
/// Calls block the calling thread until answered, and a reader may be used from several
/// threads at once. (Synchronous on purpose: its caller is a command-line tool, and a scan
/// hands millions of lines to one callback, where a suspension per line would cost more than
/// reading it.)
public protocol LogReader: Sendable {
    /// Hands each line `filter` selects to `body` as it is read, in the order above, so an
    /// export of millions of lines holds one line at a time.
    func scan(_ filter: LogFilter, _ body: (LogLine) -> Void) throws(StoreError)

    /// Each line `filter` selects with up to `context` lines before and after it from the same
    /// file, grouped like `grep -C` (see `ContextItem.grouping`); hits and context come from
    /// one snapshot.
    func linesWithContext(_ filter: LogFilter, context: Int) throws(StoreError) -> [ContextItem]

    /// Where following starts (0 when nothing is stored): every line stored from now on has a
    /// larger id. The id of the newest stored line, or an older one where a line can still be
    /// stored below the newest (lines above it that a listing gave are given again when
    /// following; `LogPrinter` leaves them out).
    func newestLineID() throws(StoreError) -> Int64

    /// About how many stored lines the search index has not reached yet (an estimate that
    /// costs no scan): `match` reads those one by one.
    func searchIndexBacklog() throws(StoreError) -> Int64
}

extension LogReader {
    /// Every line `filter` selects, in the order of `scan`.
    public func lines(_ filter: LogFilter) throws(StoreError) -> [LogLine] {
        var lines: [LogLine] = []
        try scan(filter) { lines.append($0) }
        return lines
    }
}

extension ContextItem {
    /// `grep -C` over stored lines, one rule for every backend: each hit with up to `context`
    /// lines before and after it from the same file (same stream, by offset). Groups that
    /// overlap or touch are given as one, other groups are separated by `.separator`, and no
    /// line is given twice. Hits keep their order (time), each group is in the order of its file.
    ///
    /// - `neighbours(line, before, count)`: up to `count` lines of `line`'s stream right before
    ///   it (nearest first) or right after it.
    /// - `anyBetween(stream, after, before)`: whether the stream holds a line with an offset
    ///   strictly between the two.
    public static func grouping<Failure: Error>(
        _ hits: [LogLine], context: Int, neighbours: (LogLine, _ before: Bool, _ count: Int) throws(Failure) -> [LogLine],
        anyBetween: (_ stream: Int64, _ after: Int64, _ before: Int64) throws(Failure) -> Bool
    ) throws(Failure) -> [ContextItem] {
        guard context > 0 else { return hits.map { .line($0, match: true) } }
        let hitIDs = Set(hits.map(\.id))
        var items: [ContextItem] = []
        var printedThrough: [Int64: Int64] = [:]  // stream -> offset of its last line given
        var last: LogLine?
        for hit in hits {
            let before = try neighbours(hit, true, context)
            let after = try neighbours(hit, false, context)
            let window = (before.reversed() + [hit] + after).filter { $0.offset > printedThrough[hit.stream, default: Int64.min] }
            guard let first = window.first, let end = window.last else { continue }
            if let last {
                // Right after the previous group in the same stream, with no line between: one group.
                var follows = false
                if first.stream == last.stream, first.offset > last.offset {
                    follows = try !anyBetween(first.stream, last.offset, first.offset)
                }
                if !follows { items.append(.separator) }
            }
            items += window.map { .line($0, match: hitIDs.contains($0.id)) }
            printedThrough[hit.stream] = end.offset
            last = end
        }
        return items
    }
}

import MusterStore

/// `logq logs`' questions to the store's `LogReader`, answered in logq's words.
public struct LogSearch {
    public let store: any LogReader

    public init(store: any LogReader) {
        self.store = store
    }

    public func lines(_ filter: LogFilter) throws(QueryError) -> [LogLine] {
        try QueryError.asking { () throws(StoreError) in try store.lines(filter) }
    }

    /// Hands each matching line to `body` as it is read, so an export of millions of lines
    /// holds one line at a time, not all of them.
    public func scan(_ filter: LogFilter, _ body: (LogLine) -> Void) throws(QueryError) {
        try QueryError.asking { () throws(StoreError) in try store.scan(filter, body) }
    }

    /// Each matching line with up to `context` lines before and after it from the same file,
    /// grouped like `grep -C` (`ContextItem.grouping`).
    public func linesWithContext(_ filter: LogFilter, context: Int) throws(QueryError) -> [ContextItem] {
        try QueryError.asking { () throws(StoreError) in try store.linesWithContext(filter, context: context) }
    }

    /// The id of the newest stored row (where follow mode starts).
    public func newestID() throws(QueryError) -> Int64 {
        try QueryError.asking { () throws(StoreError) in try store.newestLineID() }
    }

    /// What the user should know about how `filter` is answered, one sentence each (logq
    /// prints them on stderr as `logq: note: …`): a search the index cannot help with reads
    /// every row in range, and a search index far behind ingest makes `--match` read the rows
    /// it has not reached yet.
    public func notes(_ filter: LogFilter, lagWorthSaying: Int64 = 100_000) throws(QueryError) -> [String] {
        if filter.grep != nil, filter.match == nil {
            return ["--grep cannot use the search index: it reads every line in range (add --match WORDS to narrow it through the index)"]
        }
        guard filter.match != nil else { return [] }
        let behind = try QueryError.asking { () throws(StoreError) in try store.searchIndexBacklog() }
        guard behind >= lagWorthSaying else { return [] }
        return ["the search index is about \(behind) rows behind ingest: --match reads those rows one by one"]
    }
}

import Foundation
import GRDB
import MusterStore

/// Searching the lines: `logs` joined to `streams`, the search index for `match`, SQL functions of
/// the connection for what SQL cannot say (`muster_grep`, `muster_match`).
extension SQLiteHistoryReader: LogReader {
    public func scan(_ filter: LogFilter, _ body: (LogLine) -> Void) throws(StoreError) {
        let search = try LineSearch(filter)
        try read { db in
            try Self.validate(nodes: filter.nodes, sources: filter.sources, in: db)
            try search.run(in: db, body)
        }
    }

    /// Hits and their context in one read, so both are of the same snapshot.
    public func linesWithContext(_ filter: LogFilter, context: Int) throws(StoreError) -> [ContextItem] {
        let search = try LineSearch(filter)
        return try read { db in
            try Self.validate(nodes: filter.nodes, sources: filter.sources, in: db)
            var hits: [LogLine] = []
            try search.run(in: db) { hits.append($0) }
            return try ContextItem.grouping(
                hits, context: context,
                neighbours: { line, before, count in try Self.neighbours(of: line, before: before, count: count, in: db) },
                anyBetween: { stream, after, before in
                    try Bool.fetchOne(
                        db, sql: "SELECT EXISTS (SELECT 1 FROM logs WHERE stream = ? AND off > ? AND off < ?)",
                        arguments: [stream, after, before])!
                })
        }
    }

    public func newestLineID() throws(StoreError) -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0 }
    }

    /// Ids are dense, so the difference is the count without counting (a store whose index is
    /// millions of rows behind is where counting would take longest).
    public func searchIndexBacklog() throws(StoreError) -> Int64 {
        try read { db in
            (try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0) - max(SearchIndex.coverage(db).indexedThrough, 0)
        }
    }

    /// Up to `count` lines of `line`'s stream right before (nearest first) or after it.
    private static func neighbours(of line: LogLine, before: Bool, count: Int, in db: Database) throws -> [LogLine] {
        let sql = """
            SELECT id, t, msg, fields, off FROM logs WHERE stream = ? AND off \(before ? "<" : ">") ? \
            ORDER BY off \(before ? "DESC" : "") LIMIT ?
            """
        return try Row.fetchAll(db, sql: sql, arguments: [line.stream, line.offset, count]).map { row in
            LogLine(
                id: row[0], time: row[1], node: line.node, source: line.source, message: row[2], fields: row[3], stream: line.stream,
                offset: row[4])
        }
    }
}

/// One `LogFilter` made ready to run: its pattern compiled, its words read.
struct LineSearch {
    let filter: LogFilter
    let regex: LinePattern?
    let match: TextMatch?

    init(_ filter: LogFilter) throws(StoreError) {
        self.filter = filter
        regex = try filter.grep.map { pattern throws(StoreError) in try LinePattern(pattern) }
        match = try filter.match.map { text throws(StoreError) in try TextMatch(text) }
    }

    /// Hands each line to `body` as it is read.
    func run(in db: Database, _ body: (LogLine) -> Void) throws {
        if let regex {
            db.add(
                function: DatabaseFunction("muster_grep", argumentCount: 1, pure: true) { values in
                    String.fromDatabaseValue(values[0]).map(regex.matches) ?? false
                })
        }
        if let match {
            db.add(
                function: DatabaseFunction("muster_match", argumentCount: 1, pure: true) { values in
                    String.fromDatabaseValue(values[0]).map(match.matches) ?? false
                })
        }
        // What the index covers, read once: every query of this search uses the same.
        let coverage = match != nil ? SearchIndex.coverage(db) : .none
        if let match, let wanted = filter.limit ?? filter.tail, try Self.isCommon(match, coverage, db) {
            for line in try Self.walkThenIndex(filter, wanted: wanted, match: match, grep: regex != nil, coverage: coverage, db: db) {
                body(line)
            }
            return
        }
        let (sql, arguments) = Self.sql(for: filter, match: match, grep: regex != nil, coverage: coverage)
        let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
        while let row = try rows.next() { body(Self.line(row)) }
    }

    private static func line(_ row: Row) -> LogLine {
        LogLine(
            id: row[0], time: row[1], node: row[2], source: row[3], message: row[4], fields: row[5], stream: row[6],
            offset: row[7])
    }

    /// How `match` finds its rows.
    enum MatchPlan {
        /// Through the full-text index (and a direct check of rows it does not cover yet).
        case index
        /// Checking each line, in time order, up to the row `through` (all rows when nil).
        case walk(through: (t: Int64, id: Int64)?)
        /// Through the index, only rows past `row` in the search's order.
        case indexBeyond(row: (t: Int64, id: Int64))
    }

    /// Rows a limited search on common words checks one by one before it asks the index.
    static let walkRows = 20_000

    /// A word on many lines, and only the first (`limit`) or last (`tail`) few wanted:
    /// checking the lines in order usually finds them within a few hundred rows, where the
    /// index would hand over every matching row to be sorted first (2.5 s for a word on 1M of
    /// 10M lines, Benchmarks/logq_bench.py). But the words may all sit late in the range, so
    /// the walk stops after `walkRows` rows and the index answers for the rest (27 s before
    /// this bound, for a word whose 23,536 lines all came in the last 5 hours of 24).
    static func walkThenIndex(
        _ filter: LogFilter, wanted: Int, match: TextMatch, grep: Bool, coverage: SearchIndex.Coverage, db: Database
    ) throws -> [LogLine] {
        let newestFirst = filter.limit == nil
        var range = SQLConditions()
        range.timeRange("t", since: filter.since, until: filter.until)
        if let afterID = filter.afterID { range.add("id > ?", [afterID]) }
        if let throughID = filter.throughID { range.add("id <= ?", [throughID]) }
        let order = newestFirst ? "t DESC, id DESC" : "t, id"
        let boundary = try Row.fetchOne(
            db, sql: "SELECT t, id FROM logs \(range.whereClause) ORDER BY \(order) LIMIT 1 OFFSET ?",
            arguments: range.arguments + [walkRows - 1]
        ).map { (t: $0[0] as Int64, id: $0[1] as Int64) }
        func fetch(_ filter: LogFilter, _ plan: MatchPlan) throws -> [LogLine] {
            let (sql, arguments) = Self.sql(for: filter, match: match, grep: grep, coverage: coverage, plan: plan)
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(line)
        }
        let walked = try fetch(filter, .walk(through: boundary))
        guard walked.count < wanted, let boundary else { return walked }
        var rest = filter
        if newestFirst { rest.tail = wanted - walked.count } else { rest.limit = wanted - walked.count }
        let more = try fetch(rest, .indexBeyond(row: boundary))
        return newestFirst ? more + walked : walked + more
    }

    static func sql(for filter: LogFilter, match: TextMatch?, grep: Bool, coverage: SearchIndex.Coverage, plan: MatchPlan = .index)
        -> (String, StatementArguments)
    {
        var conditions = SQLConditions()
        conditions.isIn("s.node", filter.nodes)
        conditions.isIn("s.source", filter.sources)
        conditions.timeRange("l.t", since: filter.since, until: filter.until)
        if let afterID = filter.afterID { conditions.add("l.id > ?", [afterID]) }
        if let throughID = filter.throughID { conditions.add("l.id <= ?", [throughID]) }
        let newestFirst = filter.tail != nil
        if match != nil, case .walk(let through) = plan {
            conditions.add("muster_match(l.msg)")
            if let through { conditions.add(newestFirst ? "(l.t, l.id) >= (?, ?)" : "(l.t, l.id) <= (?, ?)", [through.t, through.id]) }
        } else if let match {
            // Indexed rows: the index narrows to rows holding every word, muster_match checks
            // their order. Rows past the index's high-water mark (the last few seconds of
            // ingest) are checked directly, so a search never misses a stored line.
            let indexedThrough = coverage.indexedThrough
            let indexed = coverage.rowIDs(matching: match.ftsQuery)
            conditions.add(
                "l.id IN (\(indexed.sql) UNION ALL SELECT id FROM logs WHERE id > ?)", indexed.arguments + [indexedThrough])
            // One word: for an indexed row the index's answer is the rule itself (the same
            // unicode61 words), so only newer rows are checked; this check is most of a
            // search's time when the word is on tens of thousands of lines.
            if match.words.count == 1 {
                conditions.add("(l.id <= ? OR muster_match(l.msg))", [indexedThrough])
            } else {
                conditions.add("muster_match(l.msg)")
            }
            if case .indexBeyond(let row) = plan {
                conditions.add(newestFirst ? "(l.t, l.id) < (?, ?)" : "(l.t, l.id) > (?, ?)", [row.t, row.id])
            }
        }
        if grep { conditions.add("muster_grep(l.msg)") }
        let whereClause = conditions.whereClause
        let arguments = conditions.arguments
        let select = "SELECT l.id, l.t, s.node, s.source, l.msg, l.fields, l.stream, l.off FROM logs l JOIN streams s ON s.id = l.stream"
        let order = filter.afterID != nil ? "l.id" : "l.t, l.id"
        if let tail = filter.tail {
            return (
                "SELECT * FROM (\(select) \(whereClause) ORDER BY l.t DESC, l.id DESC LIMIT \(max(0, tail))) ORDER BY 2, 1",
                arguments
            )
        }
        let limit = filter.limit.map { " LIMIT \(max(0, $0))" } ?? ""
        return ("\(select) \(whereClause) ORDER BY \(order)\(limit)", arguments)
    }

    /// Index candidates past which a limited search walks the lines instead.
    static let commonCandidates = 20_000

    /// True when the index holds at least `commonCandidates` rows with every word.
    static func isCommon(_ match: TextMatch, _ coverage: SearchIndex.Coverage, _ db: Database) throws -> Bool {
        let indexed = coverage.rowIDs(matching: match.ftsQuery)
        let candidates = try Int.fetchOne(
            db, sql: "SELECT count(*) FROM (\(indexed.sql) LIMIT ?)", arguments: StatementArguments(indexed.arguments + [commonCandidates])) ?? 0
        return candidates >= commonCandidates
    }
}

extension TextMatch {
    /// The FTS5 query: every word must be present (`detail=none` indexes cannot answer
    /// phrases; `matches` checks the order). FTS5 folds the words itself.
    var ftsQuery: String {
        words.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: " AND ")
    }
}

import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire

/// One stored line as logq shows it.
public struct LogLine: Sendable, Equatable {
    public var id: Int64
    public var time: Int64
    public var node: String
    public var source: String
    public var message: String
    /// Structured fields as stored (a JSON object), when the record had any.
    public var fields: String?
    /// Where the line stands in its file: `logs.stream` and `logs.off` (for context lines).
    public var stream: Int64 = 0
    public var offset: Int64 = 0
}

/// What `logq logs` asks for.
public struct LogFilter: Sendable {
    public var nodes: [String] = []
    public var sources: [String] = []
    public var since: Int64?
    public var until: Int64?
    /// A regular expression (ICU syntax) the message must contain a match of.
    public var grep: String?
    /// Words the message must contain, in order (see `TextMatch`), answered from the
    /// full-text index.
    public var match: String?
    /// At most this many lines, oldest first.
    public var limit: Int?
    /// Only the newest this many lines (still printed oldest first).
    public var tail: Int?
    /// Only rows stored after this id (follow mode).
    public var afterID: Int64?

    public init() {}
}

/// Runs `LogFilter`s against the store.
public struct LogSearch {
    public let database: LogDatabase
    public init(database: LogDatabase) {
        self.database = database
    }

    public func lines(_ filter: LogFilter) throws(QueryError) -> [LogLine] {
        var lines: [LogLine] = []
        try scan(filter) { lines.append($0) }
        return lines
    }

    /// Hands each matching line to `body` as it is read, so an export of millions of lines
    /// holds one line at a time, not all of them.
    public func scan(_ filter: LogFilter, _ body: (LogLine) throws -> Void) throws(QueryError) {
        let regex: NSRegularExpression?
        if let pattern = filter.grep {
            do {
                regex = try NSRegularExpression(pattern: pattern)
            } catch {
                throw .badRegex(pattern, (error as NSError).localizedDescription)
            }
        } else {
            regex = nil
        }
        let match = try filter.match.map { text throws(QueryError) in try TextMatch(text) }
        try validate(filter)
        try database.read { db in
            if let regex {
                db.add(
                    function: DatabaseFunction("muster_grep", argumentCount: 1, pure: true) { values in
                        guard let text = String.fromDatabaseValue(values[0]) else { return false }
                        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                    })
            }
            if let match {
                db.add(
                    function: DatabaseFunction("muster_match", argumentCount: 1, pure: true) { values in
                        String.fromDatabaseValue(values[0]).map(match.matches) ?? false
                    })
            }
            if let match, let wanted = filter.limit ?? filter.tail, try Self.isCommon(match, db) {
                for line in try Self.walkThenIndex(filter, wanted: wanted, match: match, grep: regex != nil, db: db) { try body(line) }
                return
            }
            let (sql, arguments) = try Self.sql(for: filter, match: match, grep: regex != nil, db: db)
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() { try body(Self.line(row)) }
        }
    }

    private static func line(_ row: Row) -> LogLine {
        LogLine(
            id: row[0], time: row[1], node: row[2], source: row[3], message: row[4], fields: row[5], stream: row[6],
            offset: row[7])
    }

    /// How `--match` finds its rows.
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

    /// A word on many lines, and only the first (`--limit`) or last (`--tail`) few wanted:
    /// checking the lines in order usually finds them within a few hundred rows, where the
    /// index would hand over every matching row to be sorted first (2.5 s for a word on 1M of
    /// 10M lines, Benchmarks/logq_bench.py). But the words may all sit late in the range, so
    /// the walk stops after `walkRows` rows and the index answers for the rest (27 s before
    /// this bound, for a word whose 23,536 lines all came in the last 5 hours of 24).
    static func walkThenIndex(_ filter: LogFilter, wanted: Int, match: TextMatch, grep: Bool, db: Database) throws -> [LogLine] {
        let newestFirst = filter.limit == nil
        var range = SQLConditions()
        range.timeRange("t", since: filter.since, until: filter.until)
        if let afterID = filter.afterID { range.add("id > ?", [afterID]) }
        let order = newestFirst ? "t DESC, id DESC" : "t, id"
        let boundary = try Row.fetchOne(
            db, sql: "SELECT t, id FROM logs \(range.whereClause) ORDER BY \(order) LIMIT 1 OFFSET ?",
            arguments: range.arguments + [walkRows - 1]
        ).map { (t: $0[0] as Int64, id: $0[1] as Int64) }
        func fetch(_ filter: LogFilter, _ plan: MatchPlan) throws -> [LogLine] {
            let (sql, arguments) = try Self.sql(for: filter, match: match, grep: grep, db: db, plan: plan)
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(line)
        }
        let walked = try fetch(filter, .walk(through: boundary))
        guard walked.count < wanted, let boundary else { return walked }
        var rest = filter
        if newestFirst { rest.tail = wanted - walked.count } else { rest.limit = wanted - walked.count }
        let more = try fetch(rest, .indexBeyond(row: boundary))
        return newestFirst ? more + walked : walked + more
    }

    /// Checks names against what the store has, so a typo is an error and not an empty answer.
    func validate(_ filter: LogFilter) throws(QueryError) {
        guard !filter.nodes.isEmpty || !filter.sources.isEmpty else { return }
        let (nodes, sources) = try database.read { db in
            (
                try String.fetchAll(db, sql: "SELECT DISTINCT node FROM streams ORDER BY node"),
                try String.fetchAll(db, sql: "SELECT DISTINCT source FROM streams ORDER BY source")
            )
        }
        for node in filter.nodes where !nodes.contains(node) { throw .unknownNode(node, known: nodes) }
        for source in filter.sources where !sources.contains(source) { throw .unknownSource(source, known: sources) }
    }

    static func sql(for filter: LogFilter, match: TextMatch?, grep: Bool, db: Database, plan: MatchPlan = .index) throws
        -> (String, StatementArguments)
    {
        var conditions = SQLConditions()
        conditions.isIn("s.node", filter.nodes)
        conditions.isIn("s.source", filter.sources)
        conditions.timeRange("l.t", since: filter.since, until: filter.until)
        if let afterID = filter.afterID { conditions.add("l.id > ?", [afterID]) }
        let newestFirst = filter.tail != nil
        if match != nil, case .walk(let through) = plan {
            conditions.add("muster_match(l.msg)")
            if let through { conditions.add(newestFirst ? "(l.t, l.id) >= (?, ?)" : "(l.t, l.id) <= (?, ?)", [through.t, through.id]) }
        } else if let match {
            // Indexed rows: the index narrows to rows holding every word, muster_match checks
            // their order. Rows past the index's high-water mark (the last few seconds of
            // ingest) are checked directly, so a search never misses a stored line.
            let indexedThrough = try SearchIndexer.indexedThrough(db)
            conditions.add(
                "l.id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? UNION ALL SELECT id FROM logs WHERE id > ?)",
                [match.ftsQuery, indexedThrough])
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
    static func isCommon(_ match: TextMatch, _ db: Database) throws -> Bool {
        let candidates = try Int.fetchOne(
            db, sql: "SELECT count(*) FROM (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? LIMIT ?)",
            arguments: [match.ftsQuery, commonCandidates]) ?? 0
        return candidates >= commonCandidates
    }

    /// The id of the newest stored row (where follow mode starts).
    public func newestID() throws(QueryError) -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0 }
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
        // Ids are dense, so the difference is the count without counting (a store whose index
        // is millions of rows behind is where counting would take longest).
        let behind = try database.read { db in
            (try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0) - max(try SearchIndexer.indexedThrough(db), 0)
        }
        guard behind >= lagWorthSaying else { return [] }
        return ["the search index is about \(behind) rows behind ingest: --match reads those rows one by one"]
    }
}

// MARK: Context

/// What `logq logs --context N` prints: matching lines with the lines around them, in groups.
public enum ContextItem: Sendable, Equatable {
    /// A line, and whether it matched the search (or is context around a match).
    case line(LogLine, match: Bool)
    /// `--` between groups that are not next to each other.
    case separator
}

extension LogSearch {
    /// Each matching line with up to `context` lines before and after it from the same file
    /// (same node and source, same stream, by offset), like `grep -C`: groups that overlap or
    /// touch are printed as one, other groups are separated by `.separator`, and no line is
    /// printed twice. Matches come in the order of `lines(filter)` (time), each group in the
    /// order of its file.
    public func linesWithContext(_ filter: LogFilter, context: Int) throws(QueryError) -> [ContextItem] {
        let hits = try lines(filter)
        guard context > 0 else { return hits.map { .line($0, match: true) } }
        let hitIDs = Set(hits.map(\.id))
        return try database.read { db in
            var items: [ContextItem] = []
            var printedThrough: [Int64: Int64] = [:]  // stream -> offset of its last line printed
            var last: LogLine?
            for hit in hits {
                let before = try Self.neighbours(of: hit, before: true, count: context, in: db)
                let after = try Self.neighbours(of: hit, before: false, count: context, in: db)
                let window = (before.reversed() + [hit] + after).filter { $0.offset > printedThrough[hit.stream, default: Int64.min] }
                guard let first = window.first else { continue }
                if let last, !(try Self.follows(first, last, in: db)) { items.append(.separator) }
                items += window.map { .line($0, match: hitIDs.contains($0.id)) }
                printedThrough[hit.stream] = window.last!.offset
                last = window.last
            }
            return items
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

    /// Whether `line` comes right after `previous` in the same stream (no line between them).
    private static func follows(_ line: LogLine, _ previous: LogLine, in db: Database) throws -> Bool {
        guard line.stream == previous.stream, line.offset > previous.offset else { return false }
        return try !Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM logs WHERE stream = ? AND off > ? AND off < ?)",
            arguments: [line.stream, previous.offset, line.offset])!
    }
}

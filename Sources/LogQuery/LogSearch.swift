import Foundation
import GRDB
import MusterStore
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
            let (sql, arguments) = try Self.sql(for: filter, match: match, grep: regex != nil, db: db)
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() {
                try body(LogLine(id: row[0], time: row[1], node: row[2], source: row[3], message: row[4], fields: row[5]))
            }
        }
    }

    /// Checks names against what the store has, so a typo is an error and not an empty answer.
    private func validate(_ filter: LogFilter) throws(QueryError) {
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

    static func sql(for filter: LogFilter, match: TextMatch?, grep: Bool, db: Database) throws
        -> (String, StatementArguments)
    {
        var conditions = SQLConditions()
        conditions.isIn("s.node", filter.nodes)
        conditions.isIn("s.source", filter.sources)
        conditions.timeRange("l.t", since: filter.since, until: filter.until)
        if let afterID = filter.afterID { conditions.add("l.id > ?", [afterID]) }
        if let match {
            // Indexed rows: the index narrows to rows holding every word, muster_match checks
            // their order. Rows past the index's high-water mark (the last few seconds of
            // ingest) are checked directly, so a search never misses a stored line.
            let indexedThrough = try SearchIndexer.indexedThrough(db)
            conditions.add(
                """
                l.id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? UNION ALL SELECT id FROM logs WHERE id > ?) \
                AND muster_match(l.msg)
                """, [match.ftsQuery, indexedThrough])
        }
        if grep { conditions.add("muster_grep(l.msg)") }
        let whereClause = conditions.whereClause
        let arguments = conditions.arguments
        let select = "SELECT l.id, l.t, s.node, s.source, l.msg, l.fields FROM logs l JOIN streams s ON s.id = l.stream"
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

    /// The id of the newest stored row (where follow mode starts).
    public func newestID() throws(QueryError) -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0 }
    }
}

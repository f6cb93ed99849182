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
    /// Text the message must contain, case-insensitively, answered from the full-text index.
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
    /// Said once to the user when a search cannot use the index, and why.
    public private(set) var notes: [String] = []

    public init(database: LogDatabase) {
        self.database = database
    }

    /// The shortest `--match` text the trigram index can answer.
    public static let minimumIndexedMatch = 3

    public mutating func lines(_ filter: LogFilter) throws(QueryError) -> [LogLine] {
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
        if let match = filter.match, match.count < Self.minimumIndexedMatch {
            let note = "note: --match text shorter than \(Self.minimumIndexedMatch) characters cannot use the index; scanning every line"
            if !notes.contains(note) { notes.append(note) }
        }
        try validate(filter)
        return try database.read { db in
            if let regex {
                db.add(
                    function: DatabaseFunction("muster_grep", argumentCount: 1, pure: true) { values in
                        guard let text = String.fromDatabaseValue(values[0]) else { return false }
                        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                    })
            }
            let (sql, arguments) = try Self.sql(for: filter, grep: regex != nil, db: db)
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                LogLine(id: row[0], time: row[1], node: row[2], source: row[3], message: row[4], fields: row[5])
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

    static func sql(for filter: LogFilter, grep: Bool, db: Database) throws -> (String, StatementArguments) {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if !filter.nodes.isEmpty {
            conditions.append("s.node IN (\(placeholders(filter.nodes.count)))")
            arguments += StatementArguments(filter.nodes)
        }
        if !filter.sources.isEmpty {
            conditions.append("s.source IN (\(placeholders(filter.sources.count)))")
            arguments += StatementArguments(filter.sources)
        }
        if let since = filter.since {
            conditions.append("l.t >= ?")
            arguments += [since]
        }
        if let until = filter.until {
            conditions.append("l.t < ?")
            arguments += [until]
        }
        if let afterID = filter.afterID {
            conditions.append("l.id > ?")
            arguments += [afterID]
        }
        if let match = filter.match {
            let like = "%" + match.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
            if match.count >= minimumIndexedMatch {
                // Indexed rows come from FTS; the few not indexed yet are scanned, so a search
                // never misses a line that is already stored.
                let indexedThrough = try SearchIndexer.indexedThrough(db)
                conditions.append(
                    "(l.id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?) OR (l.id > ? AND l.msg LIKE ? ESCAPE '\\'))")
                arguments += ["\"" + match.replacingOccurrences(of: "\"", with: "\"\"") + "\"", indexedThrough, like]
            } else {
                conditions.append("l.msg LIKE ? ESCAPE '\\'")
                arguments += [like]
            }
        }
        if grep { conditions.append("muster_grep(l.msg)") }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
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

    private static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    /// The id of the newest stored row (where follow mode starts).
    public func newestID() throws(QueryError) -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0 }
    }
}

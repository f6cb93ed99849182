import Foundation
import GRDB
import MusterStore
import MusterWire

/// Histograms, statistics and report figures, each computed in SQL over indexed columns.
extension SQLiteHistoryReader: AggregateReader {
    public func lineCounts(_ request: LineCountRequest) throws(StoreError) -> [LineCount] {
        var conditions = SQLConditions()
        conditions.isIn("s.node", request.nodes)
        conditions.timeRange("l.t", since: request.since, until: request.until)
        if request.errorsOnly { conditions.add(ErrorRule.sqlCall) }
        // Stored times are clamped into the supported range in the query, so every bucket lies
        // in it and the caller's arithmetic on buckets cannot overflow.
        let (lowest, highest) = (Timestamp.supportedRange.lowerBound, Timestamp.supportedRange.upperBound)
        let interval = request.interval
        let sql = """
            SELECT (min(max(l.t, \(lowest)), \(highest)) / \(interval)) * \(interval) AS bucket, s.node, count(*)
            FROM logs l JOIN streams s ON s.id = l.stream
            \(conditions.whereClause) GROUP BY bucket, s.node ORDER BY bucket, s.node
            """
        let arguments = conditions.arguments
        return try read { db in
            try Self.validate(nodes: request.nodes, sources: [], in: db)
            if request.errorsOnly { db.add(function: ErrorRule.function) }
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map {
                LineCount(bucket: $0[0], node: $0[1], count: $0[2])
            }
        }
    }

    public func stats(now: Int64) throws(StoreError) -> StoreStats {
        // A clock far off (or a caller's `now`) must not overflow "the last minute".
        let now = Timestamp.clamped(now)
        let walBytes = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int64) ?? 0
        return try read { db in
            let sources = try Row.fetchAll(
                db,
                sql: """
                    SELECT s.node, s.source, count(*), sum(length(CAST(l.msg AS BLOB))), min(l.t), max(l.t)
                    FROM logs l JOIN streams s ON s.id = l.stream GROUP BY s.node, s.source ORDER BY s.node, s.source
                    """
            ).map { StoreStats.Source(node: $0[0], source: $0[1], lines: $0[2], bytes: $0[3] ?? 0, first: $0[4], last: $0[5]) }
            func count(since: Int64) throws -> Int64 {
                try Int64.fetchOne(db, sql: "SELECT count(*) FROM logs WHERE t >= ? AND t <= ?", arguments: [since, now]) ?? 0
            }
            let indexedThrough = SearchIndex.coverage(db).indexedThrough
            let pages = try Int64.fetchOne(db, sql: "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size") ?? 0
            return StoreStats(
                sources: sources, linesLastMinute: try count(since: now - 60 * Timestamp.nanosPerSecond),
                linesLastHour: try count(since: now - 3_600 * Timestamp.nanosPerSecond),
                notIndexed: try Int64.fetchOne(db, sql: "SELECT count(*) FROM logs WHERE id > ?", arguments: [indexedThrough]) ?? 0,
                indexedThrough: indexedThrough, databaseBytes: pages, walBytes: walBytes,
                prunedLogRows: try db.meta(MetaKey.prunedLogRows) ?? 0, prunedHistoryRows: try db.meta(MetaKey.prunedHistoryRows) ?? 0,
                prunedLogsBefore: try db.meta(MetaKey.prunedLogsBefore), lastPruneAt: try db.meta(MetaKey.lastPruneAt))
        }
    }

    public func firstInstant() throws(StoreError) -> Int64? {
        try read { db in try Self.extreme("min", in: db) }
    }

    public func lastInstant() throws(StoreError) -> Int64? {
        try read { db in try Self.extreme("max", in: db) }
    }

    /// The min or max of `t` over the tables that have one: each over an indexed column, so no scan.
    private static func extreme(_ function: String, in db: Database) throws -> Int64? {
        var values: [Int64] = []
        for table in ["logs", "membership", "configs", "marks"] where try db.tableExists(table) {
            if let value = try Int64.fetchOne(db, sql: "SELECT \(function)(t) FROM \(table)") {
                values.append(Timestamp.clamped(value))
            }
        }
        return function == "min" ? values.min() : values.max()
    }

    /// The query reaches the samples through `UNIQUE(stream, off)` for the few journal streams
    /// and keeps those in the time range, so its cost is the journal's size, never the millions
    /// of ordinary log lines around them (walking `logs_t` over the range would visit every one).
    public func haproxySamples(since: Int64, until: Int64) throws(StoreError) -> [JournalEntry] {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT l.t, l.msg FROM logs AS l
                    WHERE l.stream IN (SELECT id FROM streams WHERE source = ?)
                      AND l.t >= ? AND l.t < ? AND l.msg LIKE '%"haproxy-stats"%'
                    ORDER BY l.t, l.id
                    """,
                arguments: [JournalEntry.sourceID, since, until])
        }
        var samples: [JournalEntry] = []
        for row in rows {
            let message: String = row["msg"]
            // A sample with no rows is an observation too (no server listed), so it stays.
            guard let entry = try? JournalEntry.decode(line: message), entry.event == .haproxyStats, entry.stats != nil else { continue }
            samples.append(entry)
        }
        return samples
    }
}

extension ErrorRule {
    /// `is_error(source, message, status)` for a GRDB connection.
    static let function = DatabaseFunction("is_error", argumentCount: 3, pure: true) { values in
        let status = Int64.fromDatabaseValue(values[2]) ?? String.fromDatabaseValue(values[2]).flatMap { Int64($0) }
        return matches(source: String.fromDatabaseValue(values[0]), message: String.fromDatabaseValue(values[1]) ?? "", status: status)
    }

    /// The SQL that calls it on `logs l JOIN streams s`.
    static let sqlCall = "is_error(s.source, l.msg, json_extract(l.fields, '$.status'))"
}

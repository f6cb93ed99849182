import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire

/// `logq stats`: what the store holds and how it is doing.
public struct StoreStats: Sendable, Equatable {
    public struct Source: Sendable, Equatable {
        public var node: String
        public var source: String
        public var lines: Int64
        /// Bytes of the stored messages (UTF-8).
        public var bytes: Int64
        public var first: Int64
        public var last: Int64
    }

    public var sources: [Source]
    /// Lines with a time in the last minute and in the last hour before `now`.
    public var linesLastMinute: Int64
    public var linesLastHour: Int64
    /// Rows stored and not yet in the search index (`meta.search_indexed_through`).
    public var notIndexed: Int64
    public var indexedThrough: Int64
    /// `page_count * page_size`, and the WAL file beside it (0 when there is none).
    public var databaseBytes: Int64
    public var walBytes: Int64
    /// What retention pruned (0 and nil until it first runs).
    public var prunedLogRows: Int64
    public var prunedHistoryRows: Int64
    public var prunedLogsBefore: Int64?
    public var lastPruneAt: Int64?

    public var lines: Int64 { sources.reduce(0) { $0 + $1.lines } }
    public var bytes: Int64 { sources.reduce(0) { $0 + $1.bytes } }
    public var ratePerSecondLastMinute: Double { Double(linesLastMinute) / 60 }
    public var ratePerSecondLastHour: Double { Double(linesLastHour) / 3_600 }

    public static func read(_ database: LogDatabase, now: Int64 = Timestamp.now()) throws(QueryError) -> StoreStats {
        // A clock far off (or a caller's `now`) must not overflow "the last minute".
        let now = Timestamp.clamped(now)
        let walBytes = (try? FileManager.default.attributesOfItem(atPath: database.path + "-wal")[.size] as? Int64) ?? 0
        return try database.read { db in
            let sources = try Row.fetchAll(
                db,
                sql: """
                    SELECT s.node, s.source, count(*), sum(length(CAST(l.msg AS BLOB))), min(l.t), max(l.t)
                    FROM logs l JOIN streams s ON s.id = l.stream GROUP BY s.node, s.source ORDER BY s.node, s.source
                    """
            ).map { Source(node: $0[0], source: $0[1], lines: $0[2], bytes: $0[3] ?? 0, first: $0[4], last: $0[5]) }
            func count(since: Int64) throws -> Int64 {
                try Int64.fetchOne(db, sql: "SELECT count(*) FROM logs WHERE t >= ? AND t <= ?", arguments: [since, now]) ?? 0
            }
            let indexedThrough = try SearchIndexer.indexedThrough(db)
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

    /// Lines and bytes per node and source.
    public func sourceTable() -> Table {
        var table = Table(columns: ["node", "source", "lines", "bytes", "first", "last"])
        table.rows = sources.map {
            [.text($0.node), .text($0.source), .integer($0.lines), .integer($0.bytes), .text(Timestamp.format($0.first)),
             .text(Timestamp.format($0.last))]
        }
        return table
    }

    /// Every number as one metric a row, for JSON and CSV: the per-source ones (`lines`,
    /// `bytes`, `first`, `last`) with their node and source, then the store's (null node and source).
    public func table() -> Table {
        var table = Table(columns: ["metric", "node", "source", "value"])
        for source in sources {
            let values: [(String, Table.Value)] = [
                ("lines", .integer(source.lines)), ("bytes", .integer(source.bytes)), ("first", .text(Timestamp.format(source.first))),
                ("last", .text(Timestamp.format(source.last))),
            ]
            table.rows += values.map { [.text($0.0), .text(source.node), .text(source.source), $0.1] }
        }
        table.rows += summaryTable(readable: false).rows.map { [$0[0], .null, .null, $0[1]] }
        return table
    }

    /// The store's metrics, one a row; `readable` writes sizes, rates and times for people.
    public func summaryTable(readable: Bool) -> Table {
        func size(_ bytes: Int64) -> Table.Value { readable ? .text(Self.describe(bytes: bytes)) : .integer(bytes) }
        func rate(_ value: Double) -> Table.Value { readable ? .text(String(format: "%.2f lines/s", value)) : .real(value) }
        func time(_ nanos: Int64?) -> Table.Value { nanos.map { .text(Timestamp.format($0)) } ?? (readable ? .text("never") : .null) }
        var table = Table(columns: ["metric", "value"])
        table.rows = [
            ("lines", .integer(lines)), ("bytes", size(bytes)),
            ("ingest_rate_last_minute", rate(ratePerSecondLastMinute)), ("ingest_rate_last_hour", rate(ratePerSecondLastHour)),
            ("lines_last_minute", .integer(linesLastMinute)), ("lines_last_hour", .integer(linesLastHour)),
            ("search_index_lag_rows", .integer(notIndexed)), ("search_indexed_through_id", .integer(indexedThrough)),
            ("database_bytes", size(databaseBytes)), ("wal_bytes", size(walBytes)), ("total_bytes", size(databaseBytes + walBytes)),
            ("pruned_log_rows", .integer(prunedLogRows)), ("pruned_history_rows", .integer(prunedHistoryRows)),
            ("pruned_logs_before", time(prunedLogsBefore)), ("last_prune_at", time(lastPruneAt)),
        ].map { [.text($0.0), $0.1] }
        return table
    }

    static func describe(bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f ", value) + "\(units[unit]) (\(bytes) bytes)"
    }
}

import Foundation
import MusterStore
import MusterWire

/// `logq stats`: the store's numbers (`StoreStats`, from `AggregateReader.stats`) as tables.
extension StoreStats {
    public static func read(_ store: any AggregateReader, now: Int64 = Timestamp.now()) throws(QueryError) -> StoreStats {
        try QueryError.asking { () throws(StoreError) in try store.stats(now: now) }
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

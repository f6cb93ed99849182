import GRDB
import MusterStore
import MusterWire

/// Prunes in chunks, each its own short transaction, so ingest waits at most one chunk.
public enum Retention {
    /// Bytes of the database's pages in use (not the file's length: deleted rows leave free
    /// pages that SQLite reuses).
    public static func usedBytes(_ db: Database) throws -> Int64 {
        let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        return (pages - free) * pageSize
    }

    /// Prunes at most `maxRows` log rows and `maxRows` history rows as of `now`.
    ///
    /// A size prune starts when the store uses more than `maxDatabaseBytes` and, once started
    /// (`trimming`: the previous chunk of this run asked for more), goes on down to
    /// `sizeTarget` of it, so it does not run again at every batch that crosses the limit.
    public static func pruneChunk(
        _ policy: RetentionPolicy, now: Int64, maxRows: Int, trimming: Bool = false, in db: Database
    ) throws -> PruneProgress {
        var progress = PruneProgress()
        var logCutoff: Int64? = policy.logsMaxAge.map { now - $0 }
        let sizeThreshold = policy.maxDatabaseBytes.map { trimming ? Int64(Double($0) * policy.sizeTarget) : $0 }
        if let threshold = sizeThreshold, try usedBytes(db) > threshold,
            let oldest = try Int64.fetchOne(db, sql: "SELECT t FROM logs ORDER BY t LIMIT 1 OFFSET ?", arguments: [maxRows - 1])
                ?? Int64.fetchOne(db, sql: "SELECT max(t) FROM logs")
        {
            // Over the size limit: the oldest chunk goes, whatever its age.
            logCutoff = max(logCutoff ?? Int64.min, oldest + 1)
        }
        if let cutoff = logCutoff {
            progress.logRows = try pruneLogs(before: cutoff, maxRows: maxRows, in: db)
            progress.more = progress.logRows == maxRows
        }
        if let age = policy.historyMaxAge {
            progress.historyRows = try pruneHistory(before: now - age, maxRows: maxRows, in: db)
            progress.more = progress.more || progress.historyRows == maxRows
        }
        if !progress.more, let limit = policy.maxDatabaseBytes, progress.logRows > 0,
            try usedBytes(db) > Int64(Double(limit) * policy.sizeTarget)
        {
            progress.more = true
        }
        try record(progress, logCutoff: logCutoff, now: now, in: db)
        return progress
    }

    /// Deletes the oldest log rows before `cutoff`. (The search index drops its entries for them
    /// a partition at a time, once a partition's rows are all gone: `SearchIndex`.)
    static func pruneLogs(before cutoff: Int64, maxRows: Int, in db: Database) throws -> Int {
        // The row with the highest id always stays: `logs.id` is not AUTOINCREMENT, so with it
        // gone SQLite would hand its id (and lower ones) out again, at or below the search
        // index's high-water mark, and those new rows would never be indexed.
        try db.execute(
            sql: "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE t < ? AND id < (SELECT max(id) FROM logs) ORDER BY t LIMIT ?)",
            arguments: [cutoff, maxRows])
        return db.changesCount
    }

    /// Deletes history rows before `cutoff` except each subject's latest one.
    static func pruneHistory(before cutoff: Int64, maxRows: Int, in db: Database) throws -> Int {
        var deleted = 0
        // Each table keeps its subject's latest row before the cutoff: the state at every kept
        // instant is that row or a later one.
        let latestKept = [("membership", "member"), ("inventory", "node"), ("configs", "node")].map { table, subject in
            """
            DELETE FROM \(table) WHERE id IN (
                SELECT id FROM \(table) x WHERE t < ?1
                AND id != (SELECT id FROM \(table) WHERE \(subject) = x.\(subject) AND t < ?1 ORDER BY t DESC, id DESC LIMIT 1)
                LIMIT ?2)
            """
        }
        let statements = latestKept + [
            // Events still pointed at by a kept row stay, so every kept row has its event (the
            // set of those is built once, not looked up per event).
            """
            DELETE FROM events WHERE id IN (
                SELECT id FROM events WHERE t < ?1 AND id NOT IN (
                    SELECT event FROM membership UNION SELECT event FROM inventory
                    UNION SELECT event FROM configs UNION SELECT event FROM marks)
                LIMIT ?2)
            """,
        ]
        for sql in statements {
            try db.execute(sql: sql, arguments: [cutoff, maxRows - deleted])
            deleted += db.changesCount
            if deleted >= maxRows { break }
        }
        return deleted
    }

    private static func record(_ progress: PruneProgress, logCutoff: Int64?, now: Int64, in db: Database) throws {
        try db.setMeta(MetaKey.lastPruneAt, now)
        if progress.logRows > 0 {
            try db.setMeta(MetaKey.prunedLogRows, (try db.meta(MetaKey.prunedLogRows) ?? 0) + Int64(progress.logRows))
            // Everything before the oldest row left is gone (the cutoff itself if none is left).
            let oldestLeft = try Int64.fetchOne(db, sql: "SELECT min(t) FROM logs") ?? logCutoff ?? now
            try db.setMeta(MetaKey.prunedLogsBefore, oldestLeft)
        }
        if progress.historyRows > 0 {
            try db.setMeta(MetaKey.prunedHistoryRows, (try db.meta(MetaKey.prunedHistoryRows) ?? 0) + Int64(progress.historyRows))
        }
    }
}

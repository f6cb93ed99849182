import Foundation
import GRDB
import GRDBSQLite
import MusterStore
import MusterWire

/// Writes decoded batches into `logs`. Call it from the store's single writer only.
public enum LogWriter {
    /// Stores several batches in the caller's transaction (group commit) and reports per batch.
    /// `storedJournalLine` is called with (batch, record) indices for each line of the event
    /// journal source that was new (not a resend), so the caller can interpret it once.
    public static func insert(
        _ batches: [[LogRecord]], into db: Database, storedJournalLine: (Int, Int) -> Void = { _, _ in }
    ) throws -> [IngestCounts] {
        let insert = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO logs(stream, off, t, msg, fields) VALUES (?, ?, ?, ?, ?)")
        var streams = StreamIDs()
        let fieldEncoder = StoredFieldsEncoder()
        var results: [IngestCounts] = []
        results.reserveCapacity(batches.count)
        for (batchIndex, batch) in batches.enumerated() {
            var accepted = 0
            for (recordIndex, record) in batch.enumerated() {
                let stream = try streams.id(for: record, in: db)
                let fields = try fieldEncoder.encode(record)
                let stored = try RowInsert.run(
                    insert, in: db, stream: stream, offset: record.origin.offset, time: record.time,
                    message: record.message, fields: fields)
                accepted += stored
                if stored == 1, record.origin.source == JournalEntry.sourceID { storedJournalLine(batchIndex, recordIndex) }
            }
            results.append(IngestCounts(accepted: accepted, duplicates: batch.count - accepted))
        }
        return results
    }

    /// One row through SQLite's C API (`RowBinding`), the strings bound while borrowed.
    private enum RowInsert {
        static func run(
            _ statement: Statement, in db: Database, stream: Int64, offset: Int64, time: Int64,
            message: String, fields: String?
        ) throws -> Int {
            let handle = statement.sqliteStatement
            sqlite3_bind_int64(handle, 1, stream)
            sqlite3_bind_int64(handle, 2, offset)
            sqlite3_bind_int64(handle, 3, time)
            var message = message
            return try message.withUTF8 { text in
                RowBinding.bindText(handle, 4, text)
                guard var json = fields else {
                    sqlite3_bind_null(handle, 5)
                    return try RowBinding.step(handle, in: db)
                }
                return try json.withUTF8 { fieldText in
                    RowBinding.bindText(handle, 5, fieldText)
                    return try RowBinding.step(handle, in: db)
                }
            }
        }
    }

    /// Resolves (agent, source, generation) to a `streams.id`, creating the row on first sight.
    private struct StreamIDs {
        private struct Key: Hashable {
            var agent: String
            var source: String
            var generation: String
        }
        private var known: [Key: Int64] = [:]

        mutating func id(for record: LogRecord, in db: Database) throws -> Int64 {
            let key = Key(agent: record.origin.agent, source: record.origin.source, generation: record.origin.generation)
            if let id = known[key] { return id }
            let arguments: StatementArguments = [key.agent, key.source, key.generation]
            if let id = try Int64.fetchOne(
                db, sql: "SELECT id FROM streams WHERE agent = ? AND source = ? AND generation = ?",
                arguments: arguments)
            {
                known[key] = id
                return id
            }
            try db.execute(
                sql: "INSERT INTO streams(agent, node, source, generation, first_seen) VALUES (?, ?, ?, ?, ?)",
                arguments: [key.agent, record.node, key.source, key.generation, record.time])
            let id = db.lastInsertedRowID
            known[key] = id
            return id
        }
    }
}

import Foundation
import GRDB
import MusterWire

/// What happened to one batch: records newly stored, and records the store already had.
public struct IngestCounts: Sendable, Equatable, Codable {
    public var accepted: Int
    public var duplicates: Int

    public init(accepted: Int, duplicates: Int) {
        self.accepted = accepted
        self.duplicates = duplicates
    }
}

/// Writes decoded batches into `logs`. Call it from the store's single writer only.
public enum LogWriter {
    /// Stores several batches in the caller's transaction (group commit) and reports per batch.
    public static func insert(_ batches: [[LogRecord]], into db: Database) throws -> [IngestCounts] {
        let insert = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO logs(stream, off, t, msg, fields) VALUES (?, ?, ?, ?, ?)")
        var streams = StreamIDs()
        let fieldEncoder = JSONEncoder()
        fieldEncoder.outputFormatting = .sortedKeys
        var results: [IngestCounts] = []
        results.reserveCapacity(batches.count)
        for batch in batches {
            var accepted = 0
            for record in batch {
                let stream = try streams.id(for: record, in: db)
                var fields: String?
                if !record.fields.isEmpty {
                    fields = String(decoding: try fieldEncoder.encode(record.fields), as: UTF8.self)
                }
                insert.setUncheckedArguments([stream, record.origin.offset, record.time, record.message, fields])
                try insert.execute()
                accepted += db.changesCount
            }
            results.append(IngestCounts(accepted: accepted, duplicates: batch.count - accepted))
        }
        return results
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

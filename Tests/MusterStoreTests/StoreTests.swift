import Foundation
import GRDB
import MusterWire
import Testing

@testable import MusterStore
@testable import MusterStoreSQLite

@Suite struct StoreTests {
    let path: String
    let pool: DatabasePool

    init() throws {
        (path, pool) = try temporaryStore("store")
    }

    func records(_ range: Range<Int64>, generation: String = "g1") -> [LogRecord] {
        range.map {
            LogRecord(
                time: 1000 + $0, node: "s1", origin: Origin(agent: "a", source: "webapp", generation: generation, offset: $0),
                message: "line \($0)", fields: $0 == 0 ? ["status": .int(200)] : [:])
        }
    }

    @Test func theStoreIsInWALMode() throws {
        #expect(try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test func originCoordinatesMakeResendsHarmless() throws {
        let first = try pool.write { db in try LogWriter.insert([records(0..<10)], into: db) }
        #expect(first == [IngestCounts(accepted: 10, duplicates: 0)])
        // Same coordinates again, overlapping, and a new generation of the same source.
        let again = try pool.write { db in
            try LogWriter.insert([records(5..<15), records(0..<3, generation: "g2")], into: db)
        }
        #expect(again == [IngestCounts(accepted: 5, duplicates: 5), IngestCounts(accepted: 3, duplicates: 0)])
        #expect(try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM logs") } == 18)
        #expect(try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM streams") } == 2)
        #expect(
            try pool.read { db in try String.fetchOne(db, sql: "SELECT fields FROM logs WHERE off = 0 LIMIT 1") }
                == #"{"status":200}"#)
    }

    @Test func theSearchIndexCatchesUpInChunks() throws {
        _ = try pool.write { db in try LogWriter.insert([records(0..<250)], into: db) }
        let index = try SearchIndex(storePath: path)
        let first = try index.indexNextChunk(maxRows: 100)
        #expect(first.indexed == 100 && first.pending == 150)
        _ = try index.indexNextChunk(maxRows: 100)
        let last = try index.indexNextChunk(maxRows: 100)
        #expect(last.indexed == 50 && last.pending == 0)
        let none = try index.indexNextChunk(maxRows: 100)
        #expect(none.indexed == 0)
        #expect(try index.count(matching: "line AND 24") == 1)  // words, not substrings: "line 24" only
    }
}

extension StoreTests {
    @Test func emptyMessagesAndUnicodeAreStoredAsText() throws {
        let records = ["", "é🎉", "line with\nnewline"].enumerated().map { index, message in
            LogRecord(time: 1, node: "s1", origin: Origin(agent: "a", source: "x", generation: "g", offset: Int64(index)),
                      message: message, fields: index == 1 ? ["k": .string("")] : [:])
        }
        _ = try pool.write { db in try LogWriter.insert([records], into: db) }
        let stored = try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT msg, typeof(msg), fields FROM logs ORDER BY off").map { row -> [String?] in
                [row[0], row[1], row[2]]
            }
        }
        #expect(stored == [["", "text", nil], ["é🎉", "text", #"{"k":""}"#], ["line with\nnewline", "text", nil]])
    }
}

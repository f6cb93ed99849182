import Foundation
import GRDB
import MusterWire
import Testing

@testable import MusterStore
@testable import MusterStoreSQLite

/// The word index in its own file: its own writer, partitions that retention drops whole,
/// and never answering for another store's rows.
@Suite struct SearchIndexTests {
    let path: String
    let pool: DatabasePool

    init() throws {
        (path, pool) = try temporaryStore("index")
    }

    func insert(_ offsets: Range<Int64>, word: String, into pool: DatabasePool, from time: Int64 = 1_000) throws {
        let records = offsets.map {
            LogRecord(
                time: time + $0, node: "s1", origin: Origin(agent: "a", source: "webapp", generation: "g", offset: $0),
                message: "request \($0) \(word)")
        }
        _ = try pool.write { db in try LogWriter.insert([records], into: db) }
    }

    func offsets(matching word: String, in path: String) throws -> [Int64] {
        var filter = LogFilter()
        filter.match = word
        return try SQLiteHistoryReader(path: path).lines(filter).map(\.offset)
    }

    func partitions() throws -> [Int64] {
        let queue = try DatabaseQueue(path: SearchIndex.path(forStore: path))
        return try queue.read { db in try Int64.fetchAll(db, sql: "SELECT n FROM partitions ORDER BY n") }
    }

    @Test func indexingGoesOnWhileTheStoresWriterIsInATransaction() throws {
        try insert(0..<100, word: "alpha", into: pool)
        let index = try SearchIndex(storePath: path)
        // The store's writer holds its write lock; the indexer reads the last commit and writes
        // only its own file, so it neither waits for the lock nor sees the uncommitted rows.
        let progress = try pool.write { db in
            try LogWriter.insert([[LogRecord(
                time: 5_000, node: "s1", origin: Origin(agent: "a", source: "webapp", generation: "g", offset: 100),
                message: "request 100 alpha")]], into: db)
            return try index.indexNextChunk(maxRows: 1_000)
        }
        #expect(progress.indexed == 100 && progress.indexedThrough == 100 && progress.pending == 0)
        #expect(try offsets(matching: "alpha", in: path).count == 101, "the row past the index is read directly")
        #expect(try index.indexNextChunk(maxRows: 1_000).indexed == 1)
    }

    @Test func aPartitionIsDroppedOnceRetentionHasPrunedAllItsRows() throws {
        try insert(0..<10, word: "old", into: pool)
        // The next rows start the second partition (ids from 2^20).
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO logs(id, stream, off, t, msg) VALUES (?, 1, 10, 2000, 'request 10 new')",
                arguments: [Int64(1) << SearchIndex.partitionBits])
        }
        try insert(11..<20, word: "new", into: pool, from: 2_000)
        let index = try SearchIndex(storePath: path)
        #expect(try index.indexNextChunk(maxRows: 100).indexed == 20)
        #expect(try partitions() == [0, 1])
        let pruned = try pool.write { db in try Retention.pruneLogs(before: 1_500, maxRows: 100, in: db) }
        #expect(pruned == 10)
        #expect(try offsets(matching: "old", in: path).isEmpty)
        _ = try index.indexNextChunk(maxRows: 100)
        #expect(try partitions() == [1])
        #expect(try offsets(matching: "new", in: path) == Array(10..<20))
        #expect(try index.count(matching: "old") == 0)
    }

    @Test func anIndexAheadOfItsStoreIsRebuilt() throws {
        try insert(0..<50, word: "lost", into: pool)
        _ = try SearchIndex(storePath: path).indexNextChunk(maxRows: 1_000)
        // The store as a backup from before its last 20 rows (or after losing them with the
        // machine): the ids 31...50 will be handed out again, to other lines.
        try pool.write { db in try db.execute(sql: "DELETE FROM logs WHERE id > 30") }
        // The collector opens the index before it takes any batch.
        let reopened = try SearchIndex(storePath: path)
        #expect(try reopened.progress().indexedThrough == 0)
        try insert(30..<50, word: "again", into: pool, from: 5_000)
        while try reopened.indexNextChunk(maxRows: 1_000).pending > 0 {}
        #expect(try offsets(matching: "lost", in: path) == Array(0..<30))
        #expect(try offsets(matching: "again", in: path) == Array(30..<50))
    }

    @Test func aDamagedIndexFileIsReadAroundAndMadeAnew() throws {
        try insert(0..<40, word: "kept", into: pool)
        let indexFile = SearchIndex.path(forStore: path)
        try Data(repeating: 0x5A, count: 8_192).write(to: URL(fileURLWithPath: indexFile))
        // logq reads the lines while the file is garbage...
        #expect(try offsets(matching: "kept", in: path).count == 40)
        // ...and the collector, opening it, starts a new one instead of refusing to start.
        let index = try SearchIndex(storePath: path)
        #expect(try index.indexNextChunk(maxRows: 1_000).indexed == 40)
        #expect(try index.count(matching: "kept") == 40)
    }

    @Test func anIndexMadeForAnotherStoreIsIgnoredAndRebuilt() throws {
        try insert(0..<50, word: "first", into: pool)
        _ = try SearchIndex(storePath: path).indexNextChunk(maxRows: 1_000)
        // Another store at the same path (the old one deleted, its index left behind).
        let indexFile = SearchIndex.path(forStore: path)
        let otherDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-index-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: otherDirectory, withIntermediateDirectories: true)
        let otherPath = otherDirectory + "/store.sqlite"
        let other = try Schema.openForWriting(path: otherPath, synchronous: .normal)
        try insert(0..<50, word: "second", into: other)
        try other.close()
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: indexFile + suffix) {
            try FileManager.default.copyItem(atPath: indexFile + suffix, toPath: SearchIndex.path(forStore: otherPath) + suffix)
        }
        // Readers ignore it: the old index says "first" is on rows 1...50, which hold "second".
        #expect(try offsets(matching: "first", in: otherPath).isEmpty)
        #expect(try offsets(matching: "second", in: otherPath).count == 50)
        let rebuilt = try SearchIndex(storePath: otherPath)
        #expect(try rebuilt.progress().indexedThrough == 0)
        #expect(try rebuilt.indexNextChunk(maxRows: 1_000).indexed == 50)
        #expect(try rebuilt.count(matching: "first") == 0 && rebuilt.count(matching: "second") == 50)
        try FileManager.default.removeItem(atPath: otherDirectory)
    }
}

import Foundation
import GRDB
import MusterStore

/// The word index of `logs.msg`, in a SQLite file of its own beside the store
/// (`muster.sqlite-search` for `muster.sqlite`), filled behind ingest on a connection of its own.
///
/// Why a file of its own: indexing costs more CPU per line than storing it (FTS5 tokenizes
/// every line), and SQLite has one writer per file. Inside the store's file the indexer could
/// only run between ingest's transactions, on the same core, and fell 1.7M rows behind a
/// 2M-line burst (Benchmarks/results). In its own file it has its own writer: it reads `logs`
/// at a WAL snapshot (which never blocks the store's writer), writes only its own file, and runs
/// on the other core while ingest goes on. Ingest never waits for it.
///
/// What the index is, and why:
/// - **Partitions** by row id: `logs_fts_N` holds the rows whose `id >> 20` is N (about a million
///   rows each), listed in `partitions`. Retention deletes the oldest lines; a partition goes
///   (`DROP TABLE`) once every row it covers is gone, instead of each pruned line being
///   tokenized again to be taken out. Entries of pruned rows in a partly pruned partition stay
///   until then; readers never see them, since every search joins its candidates to `logs`.
/// - **FTS5, contentless, `detail=none`, `columnsize=0`**: which words a row has, not where, and
///   no per-row sizes (no ranking is done). Phrases are checked on the candidate rows by
///   `LineSearch`. The `unicode61` tokenizer (the one `TextMatch` folds words like).
/// - **Large chunks** (the collector's `search_index.chunk_rows`, 100,000 by default) with a
///   64 MiB in-memory term buffer: FTS5 writes one segment per transaction and merges segments
///   as they pile up, so fewer, larger segments mean less merging (Benchmarks/results).
/// - **`synchronous=NORMAL`**: the index is derived data. What a crash of the machine loses is
///   indexed again; the high-water mark is committed with the entries it covers.
/// - **Tied to its store**: the store has a random `store_id` (`meta`), copied into the index.
///   An index whose id differs (the store was replaced) is ignored by readers and rebuilt by the
///   indexer, so it can never answer for rows it did not see.
///
/// Readers stay complete whatever the index's progress: `Coverage` says what it covers, and a
/// search checks the rows past `indexedThrough` directly. A store without the file (copied
/// without it, or an index being rebuilt) is searched by reading the lines.
public final class SearchIndex: Sendable {
    /// The index file beside the store at `storePath`.
    public static func path(forStore storePath: String) -> String { storePath + "-search" }

    /// Name the index file is attached under on a reader's connection.
    public static let schemaName = "search"

    /// Ids per partition: 2^20.
    static let partitionBits: Int64 = 20

    /// FTS5's in-memory term buffer per partition, in bytes: a chunk's terms are written as
    /// one segment when it commits instead of several.
    static let termBufferBytes = 64 << 20

    public let storePath: String
    private let queue: DatabaseQueue

    /// Opens (creating when needed) the index of the store at `storePath`, which must exist and
    /// be migrated (`Schema`). An index made for another store is emptied; a file that is not a
    /// readable database (damaged, half-copied) is removed and made anew: it is derived data,
    /// and the store must not stay down for it.
    public init(storePath: String) throws {
        self.storePath = storePath
        do {
            queue = try Self.open(storePath: storePath)
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            let path = Self.path(forStore: storePath)
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try FileManager.default.removeItem(atPath: path + suffix)
            }
            queue = try Self.open(storePath: storePath)
        }
    }

    private static func open(storePath: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.label = "muster-search-index"
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA main.synchronous = NORMAL")
            try db.execute(sql: "ATTACH DATABASE ? AS store", arguments: [storePath])
        }
        let queue = try DatabaseQueue(path: Self.path(forStore: storePath), configuration: configuration)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA main.journal_mode = WAL")
            try Self.deferred(db) { try Self.adopt(store: storePath, db) }
        }
        return queue
    }

    /// Creates the index's tables, and empties an index that cannot answer for this store.
    private static func adopt(store storePath: String, _ db: Database) throws {
        try db.execute(sql: Self.tables)
        let store = try Int64.fetchOne(db, sql: "SELECT value FROM store.meta WHERE key = ?", arguments: [MetaKey.storeID])
        guard let store else { throw StoreError.unreadable(location: storePath, detail: "the store has no store_id: not migrated") }
        // Another store's index, or one ahead of this store (the store restored from a
        // backup, or its last commits lost with the machine while the index kept them): ids
        // at and below its mark would be handed out again and never indexed.
        let newest = try Int64.fetchOne(db, sql: "SELECT max(id) FROM store.logs") ?? 0
        if try Self.state(StateKey.storeID, db) != store || (Self.state(StateKey.indexedThrough, db) ?? 0) > newest {
            for n in try Int64.fetchAll(db, sql: "SELECT n FROM partitions") { try Self.drop(partition: n, db) }
            try db.execute(sql: "DELETE FROM search_state")
            try Self.setState(StateKey.storeID, store, db)
            try Self.setState(StateKey.indexedThrough, 0, db)
        }
    }

    /// Indexes up to `maxRows` rows past the high-water mark in one transaction of the index
    /// file, and drops the partitions whose rows retention has all pruned.
    public func indexNextChunk(maxRows: Int) throws -> SearchIndexProgress {
        try queue.writeWithoutTransaction { db in try Self.deferred(db) { try Self.indexNextChunk(maxRows: maxRows, db) } }
    }

    public func indexNextChunk(maxRows: Int) async throws -> SearchIndexProgress {
        try await queue.writeWithoutTransaction { db in try Self.deferred(db) { try Self.indexNextChunk(maxRows: maxRows, db) } }
    }

    /// A deferred transaction locks only the files it writes: this one's. (`BEGIN IMMEDIATE`,
    /// GRDB's default for writes, takes the write lock of every attached file, the store's too,
    /// and would wait for ingest and make ingest wait.)
    private static func deferred<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.deferred) {
            result = try body()
            return .commit
        }
        return result!
    }

    /// How far the index has got (`indexed` is 0).
    public func progress() throws -> SearchIndexProgress {
        try queue.read { db in
            let through = try Self.state(StateKey.indexedThrough, db) ?? 0
            let maxID = try Int64.fetchOne(db, sql: "SELECT max(id) FROM store.logs") ?? 0
            return SearchIndexProgress(indexed: 0, indexedThrough: through, pending: max(0, maxID - through))
        }
    }

    /// Indexed rows holding every word of `ftsQuery` (an FTS5 query), counted in the index
    /// alone: rows pruned from a partition not yet dropped count too.
    public func count(matching ftsQuery: String) throws -> Int {
        try queue.read { db in
            let coverage = Coverage(
                indexedThrough: try Self.state(StateKey.indexedThrough, db) ?? 0,
                partitions: try Int64.fetchAll(db, sql: "SELECT n FROM partitions ORDER BY n"), schema: "main")
            let indexed = coverage.rowIDs(matching: ftsQuery)
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(indexed.sql))", arguments: StatementArguments(indexed.arguments)) ?? 0
        }
    }

    private static func indexNextChunk(maxRows: Int, _ db: Database) throws -> SearchIndexProgress {
        let maxID = try Int64.fetchOne(db, sql: "SELECT max(id) FROM store.logs") ?? 0
        try dropPrunedPartitions(below: maxID, db)
        let from = try state(StateKey.indexedThrough, db) ?? 0
        // The chunk's first and last rows. Partitions start at the first: after a rebuild of a
        // long-lived store, the ids below its oldest row are no partition's business.
        guard maxID > from,
            let chunk = try Row.fetchOne(
                db, sql: "SELECT min(id), max(id) FROM (SELECT id FROM store.logs WHERE id > ? ORDER BY id LIMIT ?)",
                arguments: [from, max(1, maxRows)]),
            let firstNew = chunk[0] as Int64?, let through = chunk[1] as Int64?
        else { return SearchIndexProgress(indexed: 0, indexedThrough: from, pending: 0) }
        var indexed = 0
        var partition = firstNew >> partitionBits
        while partition <= through >> partitionBits {
            try create(partition: partition, db)
            let first = max(from + 1, partition << partitionBits)
            let last = min(through, ((partition + 1) << partitionBits) - 1)
            try db.execute(
                sql: "INSERT INTO \(table(partition))(rowid, msg) SELECT id, msg FROM store.logs WHERE id >= ? AND id <= ? ORDER BY id",
                arguments: [first, last])
            indexed += db.changesCount
            partition += 1
        }
        try setState(StateKey.indexedThrough, through, db)
        return SearchIndexProgress(indexed: indexed, indexedThrough: through, pending: maxID - through)
    }

    /// A partition below the store's newest row (no new row can land in it) without a row left
    /// in its id range holds only pruned rows. Checked per partition, not against the oldest
    /// row: retention prunes by time, and one old id with a late timestamp must not keep every
    /// partition after it. (The store always keeps its newest row.)
    private static func dropPrunedPartitions(below newest: Int64, _ db: Database) throws {
        for n in try Int64.fetchAll(db, sql: "SELECT n FROM partitions WHERE n < ?", arguments: [newest >> partitionBits]) {
            let empty = try !Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM store.logs WHERE id >= ? AND id < ?)",
                arguments: [n << partitionBits, (n + 1) << partitionBits])!
            if empty { try drop(partition: n, db) }
        }
    }

    private static func create(partition n: Int64, _ db: Database) throws {
        guard try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM partitions WHERE n = ?)", arguments: [n])! else { return }
        let name = table(n)
        try db.execute(
            sql: """
                CREATE VIRTUAL TABLE \(name) USING fts5(msg, content = '', tokenize = 'unicode61', detail = none, columnsize = 0);
                INSERT INTO \(name)(\(name), rank) VALUES ('hashsize', \(termBufferBytes));
                INSERT INTO partitions(n) VALUES (\(n));
                """)
    }

    private static func drop(partition n: Int64, _ db: Database) throws {
        try db.execute(sql: "DROP TABLE IF EXISTS \(table(n)); DELETE FROM partitions WHERE n = \(n)")
    }

    static func table(_ partition: Int64) -> String { "logs_fts_\(partition)" }

    // MARK: Reading

    /// What the index covers, as of a reader's snapshot.
    public struct Coverage: Sendable {
        /// Rows with ids up to this one are indexed (0: none).
        public var indexedThrough: Int64
        /// The partitions holding them.
        var partitions: [Int64]
        /// The name of the index's database on the connection.
        var schema = SearchIndex.schemaName

        static let none = Coverage(indexedThrough: 0, partitions: [])

        /// A query of the indexed rows' ids that hold every word of `ftsQuery` (an FTS5 query).
        func rowIDs(matching ftsQuery: String) -> (sql: String, arguments: [any DatabaseValueConvertible]) {
            guard !partitions.isEmpty else { return ("SELECT NULL WHERE 0", []) }
            let sql = partitions.map { n in
                "SELECT rowid FROM \(schema).\(SearchIndex.table(n)) WHERE \(SearchIndex.table(n)) MATCH ?"
            }.joined(separator: " UNION ALL ")
            return (sql, Array(repeating: ftsQuery, count: partitions.count))
        }
    }

    /// The coverage of the index attached to a reader's connection (`attachIfPresent`): none
    /// when no index is attached, it was made for another store, or it cannot be read (a
    /// damaged or half-copied file): the index is derived data, and searches then read the lines.
    static func coverage(_ db: Database) -> Coverage {
        do {
            // sqlite_schema itself, not GRDB's schema cache: the collector may have created the
            // tables after this reader attached the file.
            guard try isAttached(db),
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(schemaName).sqlite_schema WHERE name = 'search_state')")!,
                let through = try Int64.fetchOne(db, sql: coveredThroughQuery), through > 0
            else { return .none }
            return Coverage(
                indexedThrough: through, partitions: try Int64.fetchAll(db, sql: "SELECT n FROM \(schemaName).partitions ORDER BY n"))
        } catch {
            return .none
        }
    }

    /// Attaches the index of the store at `storePath` to a reader's connection as `search`
    /// (read-only when the connection is), once the file exists: a reader opened before the
    /// collector made it (`logq logs -f` on a new store) uses it from its next read on.
    /// Call it outside a transaction.
    static func attachIfPresent(to db: Database, storePath: String) throws {
        let path = path(forStore: storePath)
        guard FileManager.default.fileExists(atPath: path), try !isAttached(db) else { return }
        try db.execute(sql: "ATTACH DATABASE ? AS \(schemaName)", arguments: [path])
    }

    /// The index file's own tables: its state (`store_id`, `indexed_through`) and its partitions.
    private static let tables = """
        CREATE TABLE IF NOT EXISTS main.search_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS main.partitions (n INTEGER PRIMARY KEY);
        """

    /// One row, one column: the highest id the attached index covers, or 0 when it was made for
    /// another store (run on a reader's connection with the index attached).
    static let coveredThroughQuery = """
        SELECT coalesce((SELECT value FROM \(schemaName).search_state WHERE key = '\(StateKey.indexedThrough)'
            AND (SELECT value FROM \(schemaName).search_state WHERE key = '\(StateKey.storeID)')
                = (SELECT value FROM main.meta WHERE key = '\(MetaKey.storeID)')), 0)
        """

    private static func isAttached(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pragma_database_list WHERE name = ?)", arguments: [schemaName])!
    }

    // MARK: State

    private enum StateKey {
        static let storeID = "store_id"
        static let indexedThrough = "indexed_through"
    }

    private static func state(_ key: String, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT value FROM main.search_state WHERE key = ?", arguments: [key])
    }

    private static func setState(_ key: String, _ value: Int64, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO main.search_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            arguments: [key, value])
    }
}

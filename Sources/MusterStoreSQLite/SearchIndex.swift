import Foundation
import GRDB
import GRDBSQLite
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
///   64 MiB in-memory term buffer: FTS5 writes one segment per transaction, so fewer, larger
///   segments mean less merging (Benchmarks/results).
/// - **No automatic merging** (`automerge=0`): FTS5 merges a level's segments only once 16 pile
///   up there (its `crisismerge`), instead of every 4. A search then looks through more
///   segments (on 10M lines, ~2 ms more per `--match`), and the collector spends ~10% less CPU
///   per line (docs/benchmarks.md, "Fewer merges in the search index").
/// - **Short reads of the store**: the rows to index are read in slices of `readSliceRows`, each
///   in a read transaction of its own on a read-only connection to the store, never inside the
///   index's write transaction. A store snapshot held for a whole chunk (tokenizing, FTS5's
///   flush and merges: a second or more) keeps the store's checkpoints from reaching the end of
///   its WAL, which then grows without bound under steady ingest (354 MB in a 2M-line burst),
///   and every page the writer reads is looked up in it (Benchmarks/results).
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

    /// Rows read from the store per read transaction: a few MiB of messages, read in tens of ms.
    static let readSliceRows = 10_000

    public let storePath: String
    private let queue: DatabaseQueue
    /// Read-only, for the rows to index: its transactions are short and never nest in `queue`'s.
    private let storeReader: DatabaseQueue

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
        var configuration = Configuration()
        configuration.label = "muster-search-index-store-reader"
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        storeReader = try DatabaseQueue(path: storePath, configuration: configuration)
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
        try queue.writeWithoutTransaction { db in try self.indexNextChunk(maxRows: maxRows, db) }
    }

    public func indexNextChunk(maxRows: Int) async throws -> SearchIndexProgress {
        try await queue.writeWithoutTransaction { db in try self.indexNextChunk(maxRows: maxRows, db) }
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

    /// One chunk: what to do is read from the store first (its newest id, the partitions with no
    /// row left), then the index's transaction takes the rows a slice at a time, each slice
    /// read in a transaction of its own on `storeReader`. The index has one writer (this
    /// connection), so its high-water mark cannot move between the reads and the transaction.
    private func indexNextChunk(maxRows: Int, _ db: Database) throws -> SearchIndexProgress {
        let from = try Self.state(StateKey.indexedThrough, db) ?? 0
        let partitions = try Int64.fetchAll(db, sql: "SELECT n FROM main.partitions ORDER BY n")
        let (maxID, pruned) = try storeReader.read { store in
            let maxID = try Int64.fetchOne(store, sql: "SELECT max(id) FROM logs") ?? 0
            return (maxID, try Self.prunedPartitions(of: partitions, below: maxID, store))
        }
        return try Self.deferred(db) {
            for n in pruned { try Self.drop(partition: n, db) }
            var through = from
            var indexed = 0
            let wanted = max(1, maxRows)
            while indexed < wanted {
                let asked = min(Self.readSliceRows, wanted - indexed)
                let slice = try storeReader.read { store in try MessageSlice(after: through, rows: asked, store) }
                guard let last = slice.lastID else { break }
                try Self.insert(slice, db)
                indexed += slice.count
                through = last
                if slice.count < asked { break }
            }
            try Self.setState(StateKey.indexedThrough, through, db)
            return SearchIndexProgress(indexed: indexed, indexedThrough: through, pending: max(0, maxID - through))
        }
    }

    /// Adds a slice's rows to their partitions (creating those as needed).
    private static func insert(_ slice: MessageSlice, _ db: Database) throws {
        var current: (partition: Int64, statement: Statement)?
        for row in 0..<slice.count {
            let id = slice.ids[row]
            let partition = id >> partitionBits
            let statement: Statement
            if let current, current.partition == partition {
                statement = current.statement
            } else {
                try create(partition: partition, db)
                statement = try db.cachedStatement(sql: "INSERT INTO \(table(partition))(rowid, msg) VALUES (?, ?)")
                current = (partition, statement)
            }
            let handle = statement.sqliteStatement
            sqlite3_bind_int64(handle, 1, id)
            _ = try slice.withMessage(row) { text in
                RowBinding.bindText(handle, 2, text)
                return try RowBinding.step(handle, in: db)
            }
        }
    }

    /// The partitions among `partitions` below the store's newest row (no new row can land in
    /// them) without a row left in their id range: they hold only pruned rows. Checked per
    /// partition, not against the oldest row: retention prunes by time, and one old id with a
    /// late timestamp must not keep every partition after it. (The store always keeps its
    /// newest row.)
    private static func prunedPartitions(of partitions: [Int64], below newest: Int64, _ store: Database) throws -> [Int64] {
        try partitions.filter { n in
            guard n < newest >> partitionBits else { return false }
            return try !Bool.fetchOne(
                store, sql: "SELECT EXISTS (SELECT 1 FROM logs WHERE id >= ? AND id < ?)",
                arguments: [n << partitionBits, (n + 1) << partitionBits])!
        }
    }

    private static func create(partition n: Int64, _ db: Database) throws {
        guard try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM partitions WHERE n = ?)", arguments: [n])! else { return }
        let name = table(n)
        try db.execute(
            sql: """
                CREATE VIRTUAL TABLE \(name) USING fts5(msg, content = '', tokenize = 'unicode61', detail = none, columnsize = 0);
                INSERT INTO \(name)(\(name), rank) VALUES ('hashsize', \(termBufferBytes));
                INSERT INTO \(name)(\(name), rank) VALUES ('automerge', 0);
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

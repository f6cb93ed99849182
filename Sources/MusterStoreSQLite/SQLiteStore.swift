import GRDB
import MusterStore
import MusterWire

/// The embedded store: one SQLite file in WAL mode, written by one collector.
///
/// GRDB's `DatabasePool` gives the protocols' guarantees: writes are serialised on one writer
/// connection, each `commit` is one transaction (so lines, ledger changes and stream events are
/// durable together), and reads run on their own connections against the last committed state
/// without blocking the writer. The word index is a file of its own with its own writer
/// (`SearchIndex`), so indexing runs beside ingest instead of between its transactions.
public final class SQLiteStore: CollectorStore {
    public let path: String
    let pool: DatabasePool
    let searchIndex: SearchIndex
    private let ledger: ClusterLedger

    /// Opens (creating and migrating when needed) the store at `path`. `synchronous` is
    /// SQLite's durability setting: `.full` makes a commit survive a power loss, `.normal` an
    /// application crash only.
    public init(path: String, synchronous: Schema.Synchronous = .full, ledger: ClusterLedger = ClusterLedger()) throws {
        self.path = path
        self.ledger = ledger
        pool = try Schema.openForWriting(path: path, synchronous: synchronous)
        searchIndex = try SearchIndex(storePath: path)
    }

    // MARK: IngestStore

    public func commit(_ batches: [IngestBatch]) async throws -> IngestCommit {
        let ledger = self.ledger
        return try await pool.write { db in
            var entries: [JournalEntry] = []
            let counts = try LogWriter.insert(batches.map(\.records), into: db) { batch, record in
                if let entry = batches[batch].journal[record] { entries.append(entry) }
            }
            guard try ledger.apply(entries, in: db) > 0 else { return IngestCommit(counts: counts, newestEvent: nil) }
            return IngestCommit(counts: counts, newestEvent: try Self.latestEventID(in: db))
        }
    }

    public func recordMark(name: String, note: String, at t: Int64) async throws -> Mark {
        try await pool.write { db in try Mark.record(name: name, note: note, at: t, in: db) }
    }

    // MARK: EventLog

    public func latestEventID() async throws -> Int64 {
        try await pool.read { db in try Self.latestEventID(in: db) }
    }

    public func events(after cursor: Int64, through horizon: Int64, kinds: [EventKind], limit: Int) async throws -> EventPage {
        try await pool.read { db in try Self.events(after: cursor, through: horizon, kinds: kinds, limit: limit, in: db) }
    }

    static func latestEventID(in db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM events") ?? 0
    }

    static func events(after cursor: Int64, through horizon: Int64, kinds: [EventKind], limit: Int, in db: Database) throws -> EventPage {
        var conditions = SQLConditions()
        conditions.add("id > ? AND id <= ?", [cursor, horizon])
        conditions.isIn("kind", kinds.map(\.rawValue))
        let sql = "SELECT id, t, kind, body FROM events \(conditions.whereClause) ORDER BY id LIMIT ?"
        let events = try Row.fetchAll(db, sql: sql, arguments: conditions.arguments + [limit]).map(StoredEvent.init(row:))
        return EventPage(events: events, after: cursor, through: horizon, limit: limit)
    }

    // MARK: StoreMaintenance

    public func indexNextChunk(maxRows: Int) async throws -> SearchIndexProgress {
        try await searchIndex.indexNextChunk(maxRows: maxRows)
    }

    public func pruneChunk(_ policy: RetentionPolicy, now: Int64, maxRows: Int, trimming: Bool) async throws -> PruneProgress {
        try await pool.write { db in
            try Retention.pruneChunk(policy, now: now, maxRows: maxRows, trimming: trimming, in: db)
        }
    }
}

extension StoredEvent {
    /// An `events` row.
    init(row: Row) {
        self.init(id: row["id"], t: row["t"], kind: row["kind"], body: row["body"])
    }
}

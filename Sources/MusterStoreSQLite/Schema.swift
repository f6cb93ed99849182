import GRDB

/// The SQLite file's layout, defined once for the collector that writes it and the tools
/// that read it.
///
/// - `streams`: one row per (agent, source, generation); `logs` rows point at it, so the
///   per-line deduplication key is two integers, not three strings.
/// - `logs`: one row per record; `UNIQUE(stream, off)` makes a resent record a no-op.
/// - `meta`: small key/value state, such as retention's progress and the store's random id.
///   The word index of `logs.msg` is a file of its own beside this one (`SearchIndex`).
/// - `events`: the collector's event stream (`GET /v1/events`); `id` is the stream cursor,
///   AUTOINCREMENT so an id is never reused even after the newest row is deleted.
/// - `membership`: the canonical membership, one row per change of a member (see
///   `ClusterLedger`); who was in the cluster at T is the latest row per member at or before T.
/// - `inventory`: what each node reported itself to be, one row per change.
/// - `configs`: every render and apply of a load balancer's configuration (`logq configs`).
/// - `marks`: named instants (`logq mark task-2`) that divide the history into tasks.
public enum Schema {
    public static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE streams (
                        id INTEGER PRIMARY KEY,
                        agent TEXT NOT NULL,
                        node TEXT NOT NULL,
                        source TEXT NOT NULL,
                        generation TEXT NOT NULL,
                        first_seen INTEGER NOT NULL,
                        UNIQUE (agent, source, generation)
                    );
                    CREATE INDEX streams_node ON streams(node);
                    CREATE TABLE logs (
                        id INTEGER PRIMARY KEY,
                        stream INTEGER NOT NULL REFERENCES streams(id),
                        off INTEGER NOT NULL,
                        t INTEGER NOT NULL,
                        msg TEXT NOT NULL,
                        fields TEXT,
                        UNIQUE (stream, off)
                    );
                    CREATE INDEX logs_t ON logs(t);
                    CREATE VIRTUAL TABLE logs_fts USING fts5(
                        msg, content = 'logs', content_rowid = 'id', tokenize = 'unicode61', detail = none
                    );
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2-cluster") { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        t INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        body TEXT NOT NULL
                    );
                    CREATE INDEX events_kind ON events(kind, id);
                    CREATE TABLE membership (
                        id INTEGER PRIMARY KEY,
                        t INTEGER NOT NULL,
                        member TEXT NOT NULL,
                        change TEXT NOT NULL,
                        status TEXT NOT NULL,
                        address TEXT NOT NULL,
                        role TEXT NOT NULL,
                        tags TEXT NOT NULL,
                        observer TEXT NOT NULL,
                        cause TEXT NOT NULL,
                        event INTEGER NOT NULL REFERENCES events(id)
                    );
                    CREATE INDEX membership_member_t ON membership(member, t);
                    CREATE INDEX membership_t ON membership(t);
                    CREATE INDEX membership_address ON membership(address);
                    CREATE TABLE inventory (
                        id INTEGER PRIMARY KEY,
                        node TEXT NOT NULL,
                        t INTEGER NOT NULL,
                        body TEXT NOT NULL,
                        event INTEGER NOT NULL REFERENCES events(id)
                    );
                    CREATE INDEX inventory_node_t ON inventory(node, t);
                    """)
        }
        migrator.registerMigration("v3-configs") { db in
            try db.execute(
                sql: """
                    CREATE TABLE configs (
                        id INTEGER PRIMARY KEY,
                        node TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        t INTEGER NOT NULL,
                        sha256 TEXT NOT NULL,
                        method TEXT NOT NULL,
                        outcome TEXT NOT NULL,
                        trigger TEXT NOT NULL,
                        duration_ms INTEGER NOT NULL,
                        message TEXT,
                        servers TEXT NOT NULL,
                        diff TEXT NOT NULL,
                        text TEXT NOT NULL,
                        event INTEGER NOT NULL REFERENCES events(id),
                        UNIQUE (node, version)
                    );
                    CREATE INDEX configs_t ON configs(t);
                    """)
        }
        migrator.registerMigration("v4-marks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE marks (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        t INTEGER NOT NULL,
                        note TEXT NOT NULL,
                        event INTEGER NOT NULL REFERENCES events(id)
                    );
                    CREATE INDEX marks_t ON marks(t);
                    """)
        }
        migrator.registerMigration("v5-search-index-file") { db in
            // The word index moved to a file of its own (`SearchIndex`), tied to this store by
            // `store_id`; the collector indexes the rows already stored again there.
            try db.execute(
                sql: """
                    DROP TABLE IF EXISTS logs_fts;
                    DELETE FROM meta WHERE key = 'search_indexed_through';
                    INSERT INTO meta(key, value) VALUES ('\(MetaKey.storeID)', random());
                    """)
        }
        return migrator
    }

    /// Opens (creating if needed) the store for writing: WAL, so readers never block the writer.
    public static func openForWriting(path: String, synchronous: Synchronous = .full) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
        }
        configuration.label = "muster-store"
        let pool = try DatabasePool(path: path, configuration: configuration)
        try migrator().migrate(pool)
        return pool
    }

    /// How hard a commit waits for the disk. `full`: an acknowledged batch survives power loss;
    /// `normal`: it survives a crash of the process (kill -9) but not of the machine.
    public enum Synchronous: String, Sendable, CaseIterable {
        case full = "FULL"
        case normal = "NORMAL"
    }
}

/// Keys of the `meta` table.
public enum MetaKey {
    /// A random id given to the store when it is created; its search index carries it too.
    public static let storeID = "store_id"
    /// Retention (`RetentionPolicy`): log rows pruned so far, in total.
    public static let prunedLogRows = "pruned_log_rows"
    /// Retention: history rows (membership, inventory, configs, events) pruned so far.
    public static let prunedHistoryRows = "pruned_history_rows"
    /// Retention: log rows older than this time (ns) have been pruned.
    public static let prunedLogsBefore = "pruned_logs_before"
    /// Retention: when the last prune ran (ns since the epoch).
    public static let lastPruneAt = "last_prune_at"
}

extension Database {
    public func meta(_ key: String) throws -> Int64? {
        try Int64.fetchOne(self, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    public func setMeta(_ key: String, _ value: Int64) throws {
        try execute(
            sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            arguments: [key, value])
    }
}

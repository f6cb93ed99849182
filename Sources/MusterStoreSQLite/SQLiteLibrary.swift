import CSQLiteSettings

/// Settings of the SQLite library for the whole process, made before its first connection.
public enum SQLiteLibrary {
    /// Turns off SQLite's memory statistics (`SQLITE_CONFIG_MEMSTATUS`), as SQLite's own list of
    /// recommended options does. Call it at the start of the program, before any connection is
    /// opened and before any other thread may use SQLite: `sqlite3_config` is not thread-safe.
    ///
    /// Why: while they are on, every `sqlite3_malloc` and `sqlite3_free` takes one mutex shared
    /// by every connection of the process, to keep the counts. The collector's two writers, the
    /// store's (a row per line) and the search index's (FTS5's term buffer), allocate per line on
    /// two threads at once, and wait for each other there (`futex` calls under `sqlite3Malloc`
    /// in a profile of the collector). Nothing in Muster reads those counts (`sqlite3_status`,
    /// a soft heap limit).
    ///
    /// Returns false when it came too late (SQLite was already initialized in this process, by
    /// a connection opened first): the statistics then stay on, and SQLite works as before.
    @discardableResult
    public static func disableMemoryStatistics() -> Bool {
        csqlite_config_memstatus(0) == SQLITE_OK
    }
}

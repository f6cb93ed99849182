import MusterStore
import MusterStoreSQLite

/// Where logq reads, and the one place it chooses its backend: today the path of the
/// collector's SQLite file (`--db`, `MUSTER_DB`), read by `SQLiteHistoryReader`, with
/// `SQLiteConsole` for `logq sql` and `logq run`. Everything else in logq sees only the
/// protocols of `MusterStore`.
public struct StoreLocation: Sendable, Equatable {
    public var path: String

    public init(path: String) {
        self.path = path
    }

    /// The history, read-only: `.databaseMissing` when nothing is there, `.databaseUnreadable`
    /// when it is not a store that can be read.
    public func openHistory() throws(QueryError) -> any HistoryStore {
        try QueryError.asking { () throws(StoreError) in try SQLiteHistoryReader(path: path) }
    }

    /// The store's SQL console, whose statements stop after `timeout` seconds of work (0: no
    /// limit). A backend without one answers `.unsupported`.
    public func openSQLConsole(timeout: Double = 0) throws(QueryError) -> SQLSession {
        SQLSession(console: try QueryError.asking { () throws(StoreError) in try SQLiteConsole(path: path, timeout: timeout) })
    }

    /// `logq sql`'s help: the statements the console runs, and its tables and functions.
    public static let sqlSummary = SQLiteConsole.summary
    public static let sqlReference = SQLiteConsole.reference
}

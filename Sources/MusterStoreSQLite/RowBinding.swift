import GRDB
import GRDBSQLite

/// Rows bound and stepped through SQLite's C API, for the statements run once per line: a line
/// stored (`LogWriter`), read to be indexed and indexed (`SearchIndex`). GRDB's `setUncheckedArguments`
/// boxes every value into an existential array per row; binding directly is the difference on
/// those paths. Text is bound without copying (SQLITE_STATIC), so it must stay alive until the
/// statement has been stepped: callers bind and step inside the closure that lends the bytes.
enum RowBinding {
    private static let empty: StaticString = ""

    /// Binds UTF-8 text without copying; an empty string stays text, not NULL.
    static func bindText(_ handle: OpaquePointer, _ index: Int32, _ text: UnsafeBufferPointer<UInt8>) {
        let base = text.baseAddress ?? empty.utf8Start
        base.withMemoryRebound(to: CChar.self, capacity: max(text.count, 1)) { pointer in
            _ = sqlite3_bind_text(handle, index, pointer, Int32(text.count), nil)
        }
    }

    /// Steps a bound statement that returns no rows, resets it and clears its bindings (the
    /// statement is cached: no later use may see text that is gone); throws SQLite's error.
    /// Returns the rows it changed.
    static func step(_ handle: OpaquePointer, in db: Database) throws -> Int {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw error(code, db) }
        return Int(sqlite3_changes(db.sqliteConnection))
    }

    /// SQLite's error for a step that returned `code`, with the connection's message.
    static func error(_ code: Int32, _ db: Database, row: String? = nil) -> DatabaseError {
        let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: row.map { "\($0): \(message)" } ?? message)
    }
}

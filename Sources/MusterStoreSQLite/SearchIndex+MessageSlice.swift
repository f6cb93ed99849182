import GRDB
import GRDBSQLite

extension SearchIndex {
    /// Consecutive rows of `logs` (id and message) copied out of a short read transaction, so
    /// the store's snapshot is released before the rows are tokenized. The messages sit in one
    /// buffer, one copy per row and no allocation per row.
    struct MessageSlice {
        private(set) var ids: [Int64] = []
        private var bytes: [UInt8] = []
        /// Where each message ends in `bytes` (it starts where the one before ends).
        private var ends: [Int] = []

        var count: Int { ids.count }
        var lastID: Int64? { ids.last }

        /// Up to `rows` rows with ids above `id`, in id order.
        init(after id: Int64, rows: Int, _ store: Database) throws {
            let statement = try store.cachedStatement(sql: "SELECT id, msg FROM logs WHERE id > ? ORDER BY id LIMIT ?")
            let handle = statement.sqliteStatement
            defer { sqlite3_reset(handle) }
            sqlite3_bind_int64(handle, 1, id)
            sqlite3_bind_int64(handle, 2, Int64(rows))
            ids.reserveCapacity(rows)
            ends.reserveCapacity(rows)
            bytes.reserveCapacity(rows * 256)
            while true {
                let code = sqlite3_step(handle)
                guard code == SQLITE_ROW else {
                    guard code == SQLITE_DONE else { throw RowBinding.error(code, store) }
                    return
                }
                ids.append(sqlite3_column_int64(handle, 0))
                // Text first, then its length (SQLite's order for a value that is not text yet).
                // `msg` is NOT NULL: no text is SQLite out of memory, and a row skipped here would
                // be behind the high-water mark, never indexed.
                guard let text = sqlite3_column_text(handle, 1) else {
                    throw RowBinding.error(sqlite3_errcode(store.sqliteConnection), store, row: "no text for row \(ids[ids.count - 1])")
                }
                bytes.append(contentsOf: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, 1))))
                ends.append(bytes.count)
            }
        }

        /// Lends the message of row `row` (0 ..< count) to `body`.
        func withMessage<T>(_ row: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
            let start = row == 0 ? 0 : ends[row - 1]
            return try bytes.withUnsafeBufferPointer { all in try body(UnsafeBufferPointer(rebasing: all[start..<ends[row]])) }
        }
    }
}

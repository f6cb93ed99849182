import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite

/// A read-only connection to the collector's SQLite file.
///
/// Opened read-only and with `PRAGMA query_only`, so nothing logq does can change the store,
/// and reading never blocks the collector (WAL readers don't).
public struct LogDatabase: Sendable {
    public let path: String
    let queue: DatabaseQueue

    public init(path: String) throws(QueryError) {
        guard FileManager.default.fileExists(atPath: path) else { throw .databaseMissing(path) }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA query_only = ON")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw .databaseUnreadable(path: path, detail: "\(error)")
        }
        // Fail now, with a clear message, if the file is not a Muster store.
        let isStore: Bool
        do {
            isStore = try queue.read { db in try db.tableExists("logs") && db.tableExists("streams") }
        } catch {
            throw .databaseUnreadable(path: path, detail: "\(error)")
        }
        guard isStore else { throw .databaseUnreadable(path: path, detail: "not a muster database (no logs table)") }
        self.path = path
    }

    public func read<T>(_ body: (Database) throws -> T) throws(QueryError) -> T {
        do {
            return try queue.read(body)
        } catch let error as QueryError {
            throw error
        } catch {
            throw .databaseUnreadable(path: path, detail: "\(error)")
        }
    }
}

import Foundation
import GRDB
import MusterStore

/// The history in the collector's SQLite file, read-only: the embedded backend's `LogReader`,
/// `ClusterHistoryReader` and `AggregateReader` (one concern an extension each).
///
/// The file is opened read-only and with `PRAGMA query_only` (its search index, when it has
/// one, attached the same way as `search`), so nothing a reader does can
/// change the store. Each call is one read transaction on a WAL file: it sees the commits
/// that had returned when it began and none made while it runs, and never blocks the
/// collector (WAL readers don't).
public struct SQLiteHistoryReader: Sendable {
    public let path: String
    let queue: DatabaseQueue

    /// Fails now, with a clear message, when `path` is missing or not a Muster store.
    public init(path: String) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: path) else { throw .missing(location: path) }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA query_only = ON")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw .unreadable(location: path, detail: "\(error)")
        }
        let isStore: Bool
        do {
            isStore = try queue.read { db in try db.tableExists("logs") && db.tableExists("streams") }
        } catch {
            throw .unreadable(location: path, detail: "\(error)")
        }
        guard isStore else { throw .unreadable(location: path, detail: "not a muster database (no logs table)") }
        self.path = path
    }

    /// One read transaction: one snapshot of the store. A `StoreError` thrown inside passes
    /// through; any other failure is the store being unreadable.
    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            // Best effort: a store is read without its index when that cannot be attached.
            try? queue.inDatabase { db in try SearchIndex.attachIfPresent(to: db, storePath: path) }
            return try queue.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .unreadable(location: path, detail: "\(error)")
        }
    }

    /// Checks names against what the store has, so a typo is an error and not an empty answer.
    static func validate(nodes wanted: [String], sources wantedSources: [String], in db: Database) throws {
        guard !wanted.isEmpty || !wantedSources.isEmpty else { return }
        let nodes = try String.fetchAll(db, sql: "SELECT DISTINCT node FROM streams ORDER BY node")
        let sources = try String.fetchAll(db, sql: "SELECT DISTINCT source FROM streams ORDER BY source")
        for node in wanted where !nodes.contains(node) { throw StoreError.unknownNode(node, known: nodes) }
        for source in wantedSources where !sources.contains(source) { throw StoreError.unknownSource(source, known: sources) }
    }
}

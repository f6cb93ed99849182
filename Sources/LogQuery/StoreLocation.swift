import Foundation
import MusterConfigFile
import MusterStore
import MusterStoreSQLite
import MusterStoreScaleOut
import Yams

/// Where logq reads, and the one place it chooses its backend: the collector's SQLite file
/// (`--db`, `MUSTER_DB`), read by `SQLiteHistoryReader` with `SQLiteConsole` for `logq sql`
/// and `logq run`; or the scale-out store that a collector's config file names in its
/// `store:` section (`--store`, `MUSTER_STORE`), lines from ClickHouse and history from etcd.
/// Everything else in logq sees only the protocols of `MusterStore`.
public struct StoreLocation: Sendable, Equatable {
    public enum Backend: Sendable, Equatable {
        case sqlite(path: String)
        /// The settings, and the config file they came from (for messages).
        case scaleOut(ScaleOutSettings, configFile: String)
    }

    public var backend: Backend

    public init(path: String) {
        backend = .sqlite(path: path)
    }

    /// The `store:` section of the collector's config file at `configFile`. Other sections are
    /// the collector's to check; a relative `password_file` is relative to the file.
    public init(configFile: String) throws(QueryError) {
        let text: String
        do {
            text = try String(contentsOfFile: configFile, encoding: .utf8)
        } catch {
            throw .databaseMissing("\(configFile) (\(error.localizedDescription))")
        }
        struct StoreSection: Decodable { var store: ScaleOutSettings? }
        let section: StoreSection
        do {
            section = try YAMLDecoder().decode(StoreSection.self, from: text)
        } catch {
            throw .badArgument("--store \(configFile): \(YAMLConfigFile.describe(error))")
        }
        guard let settings = section.store else {
            throw .badArgument("--store \(configFile): the file has no store: section (a collector on SQLite is read with --db)")
        }
        backend = .scaleOut(settings.resolvingPaths(relativeTo: (configFile as NSString).deletingLastPathComponent), configFile: configFile)
    }

    /// The history, read-only: `.databaseMissing` when nothing is there, `.databaseUnreadable`
    /// when it is not a store that can be read.
    public func openHistory() throws(QueryError) -> any HistoryStore {
        switch backend {
        case .sqlite(let path):
            return try QueryError.asking { () throws(StoreError) in try SQLiteHistoryReader(path: path) }
        case .scaleOut(let settings, let configFile):
            do {
                return try settings.openHistory()
            } catch {
                throw .badArgument("--store \(configFile): \(error)")
            }
        }
    }

    /// The store's SQL console, whose statements stop after `timeout` seconds of work (0: no
    /// limit). A backend without one answers `.unsupported`.
    public func openSQLConsole(timeout: Double = 0) throws(QueryError) -> SQLSession {
        switch backend {
        case .sqlite(let path):
            return SQLSession(console: try QueryError.asking { () throws(StoreError) in try SQLiteConsole(path: path, timeout: timeout) })
        case .scaleOut:
            throw .unsupported("logq sql and logq run, which speak SQLite's SQL (read a SQLite file with --db)")
        }
    }

    /// `logq sql`'s help: the statements the console runs, and its tables and functions.
    public static let sqlSummary = SQLiteConsole.summary
    public static let sqlReference = SQLiteConsole.reference
}

import Foundation
import MusterStore
import MusterStoreSQLite
import Testing

/// The backends the conformance suite runs against. A new backend conforms by adding one
/// line here; every test in this target then runs on it too.
enum StoreBackends {
    static let all: [StoreBackend] = [
        StoreBackend(
            name: "sqlite",
            open: { directory in try SQLiteStore(path: directory + "/store.sqlite", synchronous: .normal) },
            openReader: { directory in try SQLiteHistoryReader(path: directory + "/store.sqlite") }),
        StoreBackend(
            name: "clickhouse+etcd", open: ScaleOutBackend.open, openReader: ScaleOutBackend.reader, remove: ScaleOutBackend.remove,
            searchIndex: false, prunesWholeDays: true),
    ]
}

/// How the suite gets a fresh, empty store of one backend.
struct StoreBackend: Sendable, CustomTestStringConvertible {
    let name: String
    /// Opens an empty store whose files (if any) live in `directory`.
    let open: @Sendable (_ directory: String) async throws -> any CollectorStore
    /// Opens a reader of the store in `directory` (as `logq` does: another process's view).
    let openReader: @Sendable (_ directory: String) throws -> any HistoryStore
    /// Removes what the store keeps outside `directory` (a server's database), if anything.
    var remove: @Sendable (_ directory: String) async -> Void = { _ in }
    /// Whether `--match` has an index that `indexNextChunk` fills (else search needs none).
    var searchIndex = true
    /// Whether lines are pruned a whole day at a time, once the day is past the age (else
    /// line by line, in chunks of `maxRows`).
    var prunesWholeDays = false

    var testDescription: String { name }

    /// Runs `body` with a fresh store and removes its files afterwards.
    func withStore<T>(_ body: (any CollectorStore) async throws -> T) async throws -> T {
        try await withStoreAndReader { store, _ in try await body(store) }
    }

    /// Runs `body` with a fresh store and a way to open readers of it (each a fresh view, as a
    /// new `logq` process gets), and removes its files afterwards.
    func withStoreAndReader<T>(
        _ body: (any CollectorStore, _ reader: () throws -> any HistoryStore) async throws -> T
    ) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-conformance-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try await open(directory)
            let result = try await body(store) { try openReader(directory) }
            await remove(directory)
            return result
        } catch {
            await remove(directory)
            throw error
        }
    }
}

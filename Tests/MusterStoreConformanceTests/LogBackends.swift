import Foundation
import MusterStore
import MusterStoreClickHouse
import MusterStoreSQLite
import Testing

/// The backends that store lines, for the guarantees about lines alone (`LogConformanceTests`):
/// every full store, and ClickHouse, whose lines are written by `ClickHouseLogWriter`.
enum LogBackends {
    static let all: [LogBackend] =
        StoreBackends.all.map { backend in
            LogBackend(name: backend.name) { body in
                try await backend.withStoreAndReader { store, reader in
                    try await withoutActuallyEscaping(reader) { reader in
                        try await body({ try await store.commit($0).counts }, { try reader() })
                    }
                }
            }
        } + [
            LogBackend(name: "clickhouse") { body in
                let servers = try await ScaleOutServers.shared.database()
                let http = ClickHouseHTTP(servers: servers)
                let writer = ClickHouseLogWriter(http: http)
                try await writer.createTables()
                do {
                    try await body({ try await writer.store($0).counts }, { ClickHouseLogReader(http: http, followSettling: .zero) })
                } catch {
                    try? await writer.dropDatabase()
                    throw error
                }
                try await writer.dropDatabase()
            }
        ]
}

/// A fresh, empty backend for one test: how to store batches (as the collector does) and how
/// to open readers (as `logq` does).
struct LogBackend: Sendable, CustomTestStringConvertible {
    typealias Store = ([IngestBatch]) async throws -> [IngestCounts]
    typealias OpenReader = () throws -> any LogReader

    let name: String
    let run: @Sendable (_ body: (Store, OpenReader) async throws -> Void) async throws -> Void

    var testDescription: String { name }

    func withLines(_ body: (Store, OpenReader) async throws -> Void) async throws {
        try await run(body)
    }
}

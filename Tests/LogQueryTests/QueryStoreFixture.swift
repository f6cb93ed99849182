import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire

@testable import LogQuery

/// A small store written by the collector's own code, for `logq sql`, `run`, `hist`, `stats`
/// and context tests. Times are whole seconds from `QueryStoreFixture.base` (2026-11-22T10:00:00Z).
struct QueryStoreFixture {
    static let base: Int64 = 1_795_341_600 * Timestamp.nanosPerSecond
    static func at(_ seconds: Int64) -> Int64 { base + seconds * Timestamp.nanosPerSecond }

    let directory: String
    let path: String
    let pool: DatabasePool

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-query-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/store.sqlite"
        pool = try Schema.openForWriting(path: path, synchronous: .normal)
    }

    /// The queries shipped in the repository's `queries/` folder.
    static let shippedQueries = QueryLibrary(
        directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../queries").standardized.path)

    /// Lines of one file of `node`, at the given seconds, offsets 0, 10, 20 …
    func lines(
        _ node: String, source: String = "webapp", generation: String = "g", _ lines: [(seconds: Int64, message: String)],
        fields: [String: FieldValue] = [:]
    ) throws {
        let records = lines.enumerated().map { index, line in
            LogRecord(
                time: Self.at(line.seconds), node: node,
                origin: Origin(agent: node, source: source, generation: generation, offset: Int64(index) * 10), message: line.message,
                fields: fields)
        }
        _ = try pool.write { db in try LogWriter.insert([records], into: db) }
    }

    /// One HAProxy httplog request as the agent's parser stores it: message and `fields`.
    func request(
        _ seconds: Int64, offset: Int64, server: String, status: Int64, ta: Int64, path: String = "/", backend: String = "web"
    ) throws {
        let fields: [String: FieldValue] = [
            "client": .string("10.0.0.9:4000"), "frontend": .string("http-in"), "backend": .string(backend), "server": .string(server),
            "status": .int(status), "bytes": .int(512), "tq": .int(0), "tw": .int(0), "tc": .int(1), "tr": .int(ta - 1),
            "ta": .int(ta), "method": .string("GET"), "path": .string(path), "termination": .string("----"),
        ]
        let message = "10.0.0.9:4000 [22/Nov/2026:10:00:00.000] http-in \(backend)/\(server) 0/0/1/\(ta - 1)/\(ta) \(status) 512 - - ---- 1/1/0/0/0 0/0 \"GET \(path) HTTP/1.1\""
        let record = LogRecord(
            time: Self.at(seconds), node: "ha", origin: Origin(agent: "ha", source: "haproxy", generation: "g", offset: offset),
            message: message, fields: fields)
        _ = try pool.write { db in try LogWriter.insert([[record]], into: db) }
    }

    /// Membership changes observed by `ha`: (seconds, event, member).
    func membership(_ changes: [(seconds: Int64, event: JournalEvent, member: String)]) throws {
        let entries = changes.map { change in
            JournalEntry(
                t: Self.at(change.seconds), event: change.event, observer: "ha",
                member: Member(name: change.member, address: "10.0.0.\(change.member.dropFirst())", role: "web", tags: [:]))
        }
        _ = try pool.write { db in try ClusterLedger().apply(entries, in: db) }
    }

    /// A configuration apply of the load balancer `ha`.
    func config(_ seconds: Int64, version: Int, method: String, milliseconds: Int, servers: [String]) throws {
        let apply = ConfigApply(
            version: version, sha256: String(repeating: "\(version)", count: 64), text: "# version \(version)\n", diff: "",
            trigger: ["test"], method: method, durationMilliseconds: milliseconds, outcome: .applied, message: nil, servers: servers)
        _ = try pool.write { db in
            try ClusterLedger().apply([JournalEntry(t: Self.at(seconds), event: .config, observer: "ha", config: apply)], in: db)
        }
    }

    /// Rows as a store written before times were range-checked may hold them (any `t`,
    /// control characters in names), written straight into the tables.
    func storedAsIs(line t: Int64, node: String = "s1", source: String = "webapp", message: String = "stored as is") throws {
        try pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO streams (agent, node, source, generation, first_seen) VALUES (?, ?, ?, 'raw', 0)",
                arguments: [node, node, source])
            let stream = try Int64.fetchOne(db, sql: "SELECT id FROM streams WHERE agent = ? AND source = ? AND generation = 'raw'", arguments: [node, source])!
            let offset = try Int64.fetchOne(db, sql: "SELECT count(*) FROM logs WHERE stream = ?", arguments: [stream])!
            try db.execute(sql: "INSERT INTO logs (stream, off, t, msg) VALUES (?, ?, ?, ?)", arguments: [stream, offset, t, message])
        }
    }

    /// A membership change (with its event), a mark, or a config version at any `t`, as is.
    func storedAsIs(member: String, change: String = "joined", at t: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO events (t, kind, body) VALUES (?, 'member-join', '{}')", arguments: [t])
            try db.execute(
                sql: """
                    INSERT INTO membership (t, member, change, status, address, role, tags, observer, cause, event)
                    VALUES (?, ?, ?, 'alive', '10.0.0.1', 'web', '{}', 'ha', 'member-join', ?)
                    """,
                arguments: [t, member, change, db.lastInsertedRowID])
        }
    }

    func storedAsIs(mark name: String, at t: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO events (t, kind, body) VALUES (?, 'mark', '{}')", arguments: [t])
            try db.execute(sql: "INSERT INTO marks (name, t, note, event) VALUES (?, ?, '', ?)", arguments: [name, t, db.lastInsertedRowID])
        }
    }

    func storedAsIs(config version: Int, node: String, at t: Int64, text: String = "backend nodes\n") throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO events (t, kind, body) VALUES (?, 'config', '{}')", arguments: [t])
            try db.execute(
                sql: """
                    INSERT INTO configs (node, version, t, sha256, method, outcome, trigger, duration_ms, message, servers, diff, text, event)
                    VALUES (?, ?, ?, '', 'reload', 'applied', '[]', 1, NULL, '[]', '', ?, ?)
                    """,
                arguments: [node, version, t, text, db.lastInsertedRowID])
        }
    }

    func indexAll() throws {
        _ = try SearchIndex(storePath: path).indexNextChunk(maxRows: 1_000_000)
    }

    func sql() throws -> SQLSession { try StoreLocation(path: path).openSQLConsole() }
    func reader() throws -> SQLiteHistoryReader { try SQLiteHistoryReader(path: path) }
}

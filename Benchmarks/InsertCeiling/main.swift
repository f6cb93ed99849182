// muster-bench-insert: the committed-insert ceiling for the pipeline benchmark.
//
// Reads a log file and inserts every line into a fresh SQLite store with the store's own
// code (`Schema.openForWriting` + `LogWriter.insert`), one transaction per chunk of records,
// with no HTTP, no compression and no JSON in between. The records have the shape the agent
// produces for a file source: node = agent = --node, source = --source, generation =
// "<inode hex>-<fnv1a of first line hex>", offset = byte offset of the line, time = read time.
//
// With --plain, the same records go into a table with nothing but the identity constraint
// (`UNIQUE (stream, off)`, a stream per agent, source and generation, as the store keeps
// them), in WAL with the same synchronous mode, one transaction per chunk, one cached INSERT
// per row: what SQLite itself does on this machine, the ceiling the store's own insert path
// (without --plain) and the collector are read against.
//
// With --clickhouse (once per shard, its replicas' HTTP addresses separated by commas), the
// same records go through the scale-out backend's writer (`ClickHouseLogWriter.store`: the
// stored-identity lookup and the gzip JSONEachRow inserts into each shard) into a fresh
// database `--database` of the cluster `--cluster`, one `store` call per chunk, as a collector
// would send a group: what one collector costs when it writes to ClickHouse instead of SQLite
// (Benchmarks/clickhouse_bench.py runs both and adds the servers' CPU and disk).
//
// Usage: muster-bench-insert --file PATH --database PATH [--node N] [--source S]
//                            [--chunk 10000] [--synchronous full|normal] [--plain]
//        muster-bench-insert --file PATH --database NAME --clickhouse URL[,URL] [--clickhouse …]
//                            [--cluster muster] [--chunk 10000]
// Prints one line of JSON with the figures (see Benchmarks/README.md).

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import GRDBSQLite
import MusterStore
import MusterStoreClickHouse
import MusterStoreSQLite
import MusterWire

struct Options {
    var file = ""
    var database = ""
    var node = "bench-node"
    var source = "haproxy"
    var chunk = 10_000
    var synchronous = Schema.Synchronous.full
    var plain = false
    /// Per shard, its replicas: the ClickHouse mode when not empty.
    var clickhouseShards: [[String]] = []
    var cluster = "muster"
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("muster-bench-insert: \(message)\n".utf8))
    exit(2)
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let flag = arguments.popFirst() {
        if flag == "--plain" {
            options.plain = true
            continue
        }
        guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
        switch flag {
        case "--file": options.file = value
        case "--database": options.database = value
        case "--node": options.node = value
        case "--source": options.source = value
        case "--chunk": options.chunk = Int(value) ?? 0
        case "--clickhouse": options.clickhouseShards.append(value.split(separator: ",").map(String.init))
        case "--cluster": options.cluster = value
        case "--synchronous":
            guard let mode = Schema.Synchronous(rawValue: value.uppercased()) else { fail("bad --synchronous \(value)") }
            options.synchronous = mode
        default: fail("unknown flag \(flag)")
        }
    }
    guard !options.file.isEmpty, !options.database.isEmpty, options.chunk > 0 else {
        fail("usage: muster-bench-insert --file PATH --database PATH [--node N] [--source S] [--chunk N] [--plain]")
    }
    return options
}

func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Same generation string the agent's `FileIdentity` produces: inode and FNV-1a of the first line.
func generationName(descriptor: Int32) -> String {
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { fail("cannot stat the log file") }
    var prefix = [UInt8](repeating: 0, count: 256)
    let count = prefix.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 256, 0) }
    guard count > 0 else { fail("the log file is empty") }
    let end = prefix[0..<count].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? count
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in prefix[0..<end] {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return String(UInt64(info.st_ino), radix: 16) + "-" + String(hash, radix: 16)
}

struct StreamKey: Hashable {
    var agent: String
    var source: String
    var generation: String
}

/// The plain tables: a line's identity as the store keeps it (a stream per agent, source and
/// generation; the line's offset in it) and its time and text; the identity constraint and
/// nothing else: no time index, no fields, no search table.
func openPlain(path: String, synchronous: Schema.Synchronous) throws -> DatabasePool {
    var configuration = Configuration()
    configuration.prepareDatabase { db in
        try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
    }
    let pool = try DatabasePool(path: path, configuration: configuration)
    try pool.write { db in
        try db.execute(
            sql: """
                CREATE TABLE streams (
                  id INTEGER PRIMARY KEY, agent TEXT NOT NULL, source TEXT NOT NULL, generation TEXT NOT NULL,
                  UNIQUE (agent, source, generation));
                CREATE TABLE logs (
                  id INTEGER PRIMARY KEY, stream INTEGER NOT NULL, off INTEGER NOT NULL, t INTEGER NOT NULL,
                  msg TEXT NOT NULL, UNIQUE (stream, off));
                """)
    }
    return pool
}

/// Inserts with one cached statement per row; the count of rows the constraint let in.
/// `streams` caches the stream ids (one per file generation, so almost always a hit).
func insertPlain(_ records: [LogRecord], into db: Database, streams: inout [StreamKey: Int64]) throws -> Int {
    let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO logs (stream, off, t, msg) VALUES (?, ?, ?, ?)")
    var inserted = 0
    for record in records {
        let key = StreamKey(agent: record.origin.agent, source: record.origin.source, generation: record.origin.generation)
        let stream: Int64
        if let known = streams[key] {
            stream = known
        } else {
            try db.execute(
                sql: "INSERT OR IGNORE INTO streams (agent, source, generation) VALUES (?, ?, ?)",
                arguments: [key.agent, key.source, key.generation])
            stream = try Int64.fetchOne(
                db, sql: "SELECT id FROM streams WHERE agent = ? AND source = ? AND generation = ?",
                arguments: [key.agent, key.source, key.generation])!
            streams[key] = stream
        }
        // Bound through SQLite's C API without copying, as the store's writer does: the two
        // differ in schema and work, not in how a row reaches SQLite.
        let handle = statement.sqliteStatement
        sqlite3_bind_int64(handle, 1, stream)
        sqlite3_bind_int64(handle, 2, record.origin.offset)
        sqlite3_bind_int64(handle, 3, record.time)
        var message = record.message
        let code: Int32 = message.withUTF8 { text in
            // An empty message must stay text, not NULL: a non-null pointer for it.
            text.withMemoryRebound(to: CChar.self) { characters in
                withUnsafePointer(to: CChar(0)) { empty in
                    _ = sqlite3_bind_text(handle, 4, characters.baseAddress ?? empty, Int32(characters.count), nil)
                    return sqlite3_step(handle)
                }
            }
        }
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else { fail("insert failed: \(String(cString: sqlite3_errmsg(db.sqliteConnection)))") }
        inserted += Int(sqlite3_changes(db.sqliteConnection))
    }
    return inserted
}

/// Runs `body` to the end and waits for it: the benchmark's loop is synchronous, and its
/// thread is the main thread, not one of the tasks' threads.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, any Error>?
    Task {
        do { result = .success(try await body()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    do { return try result!.get() } catch { fail("\(error)") }
}

/// The scale-out backend's writer into a fresh database of the cluster.
func openClickHouse(_ options: Options) -> ClickHouseLogWriter {
    // The database is dropped first: never one that could be a real store.
    guard options.database.hasPrefix("bench") else { fail("--database for --clickhouse must start with 'bench' (it is dropped first)") }
    let writer: ClickHouseLogWriter
    do {
        let servers = try ClickHouseServers(shards: options.clickhouseShards, cluster: options.cluster, database: options.database)
        writer = ClickHouseLogWriter(http: ClickHouseHTTP(servers: servers))
    } catch {
        fail("\(error)")
    }
    waitFor {
        try await writer.dropDatabase()
        try await writer.createTables()
    }
    return writer
}

/// Everything lives in one function: top-level variables are main-actor state in Swift 6.
func run() {
    let options = parseOptions()
    let descriptor = open(options.file, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { fail("cannot open \(options.file)") }
    let generation = generationName(descriptor: descriptor)
    let clickhouse = options.clickhouseShards.isEmpty ? nil : openClickHouse(options)
    var database: DatabasePool?
    do {
        if clickhouse == nil {
            SQLiteLibrary.disableMemoryStatistics()  // as the collector runs SQLite
            database =
                options.plain
                ? try openPlain(path: options.database, synchronous: options.synchronous)
                : try Schema.openForWriting(path: options.database, synchronous: options.synchronous)
        }
    } catch {
        fail("cannot open database \(options.database): \(error)")
    }

    let started = monotonicSeconds()
    var insertSeconds = 0.0
    var lines = 0
    var transactions = 0
    var fileOffset: Int64 = 0
    var partial: [UInt8] = []
    var records: [LogRecord] = []
    records.reserveCapacity(options.chunk)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var streams: [StreamKey: Int64] = [:]

    /// One transaction per chunk, exactly as the collector's writer commits a group.
    func commit() {
        guard !records.isEmpty else { return }
        let before = monotonicSeconds()
        do {
            let batch = records
            if let clickhouse {
                let stored = waitFor { try await clickhouse.store([IngestBatch(records: batch)]) }
                if stored.counts.first?.accepted != batch.count { fail("expected \(batch.count) new rows, got \(stored.counts)") }
            } else if options.plain {
                let inserted = try database!.write { db in try insertPlain(batch, into: db, streams: &streams) }
                if inserted != batch.count { fail("expected \(batch.count) new rows, got \(inserted)") }
            } else {
                let counts = try database!.write { db in try LogWriter.insert([batch], into: db) }
                if counts.first?.accepted != batch.count { fail("expected \(batch.count) new rows, got \(counts)") }
            }
        } catch {
            fail("insert failed: \(error)")
        }
        insertSeconds += monotonicSeconds() - before
        lines += records.count
        transactions += 1
        records.removeAll(keepingCapacity: true)
    }

    while true {
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(fileOffset)) }
        guard count > 0 else { break }
        let now = Timestamp.now()
        let chunkBase = fileOffset
        fileOffset += Int64(count)
        buffer.withUnsafeBufferPointer { whole in
            let chunk = UnsafeBufferPointer(rebasing: whole[0..<count])
            var cursor = 0
            while cursor < count {
                guard let newline = chunk[cursor...].firstIndex(of: UInt8(ascii: "\n")) else {
                    partial.append(contentsOf: chunk[cursor...])
                    break
                }
                let message: String
                let lineOffset: Int64
                if partial.isEmpty {
                    var body = UnsafeBufferPointer(rebasing: chunk[cursor..<newline])
                    if body.last == UInt8(ascii: "\r") { body = UnsafeBufferPointer(rebasing: body.dropLast()) }
                    message = String(decoding: body, as: UTF8.self)
                    lineOffset = chunkBase + Int64(cursor)
                } else {
                    partial.append(contentsOf: chunk[cursor..<newline])
                    lineOffset = chunkBase + Int64(newline) - Int64(partial.count)
                    if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
                    message = String(decoding: partial, as: UTF8.self)
                    partial.removeAll(keepingCapacity: true)
                }
                records.append(
                    LogRecord(
                        time: now, node: options.node,
                        origin: Origin(
                            agent: options.node, source: options.source, generation: generation, offset: lineOffset),
                        message: message))
                if records.count >= options.chunk { commit() }
                cursor = newline + 1
            }
        }
    }
    commit()
    let elapsed = monotonicSeconds() - started
    close(descriptor)

    let stored: Int? =
        if let clickhouse {
            (try? ClickHouseLogReader(http: clickhouse.http).storedLineCount()).map(Int.init)
        } else {
            (try? database!.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM logs") }) ?? nil
        }
    print(
        "{\"lines\":\(lines),\"stored\":\(stored ?? -1),\"transactions\":\(transactions),"
            + "\"seconds\":\(elapsed),\"insert_seconds\":\(insertSeconds),"
            + "\"lines_per_second\":\(Double(lines) / elapsed),"
            + "\"insert_lines_per_second\":\(Double(lines) / insertSeconds),"
            + "\"synchronous\":\"\(options.synchronous.rawValue)\",\"chunk\":\(options.chunk),"
            + "\"plain\":\(options.plain),\"clickhouse\":\(clickhouse != nil)}")
}

run()

import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Logging
import MusterStore
import MusterStoreSQLite
import MusterWire
import NIOCore
import Testing

@testable import MusterCollector

/// Drives the collector's real router, writer and SQLite file in process.
@Suite struct IngestTests {
    let directory: String
    let config: CollectorConfig

    init() throws {
        var (config, directory) = try CollectorConfig.forTest("ingest")
        config.limits.maxBodyBytes = 64 << 10
        config.limits.maxDecompressedBytes = 256 << 10
        self.config = config
        self.directory = directory
    }

    func batch(_ count: Int, offset: Int64 = 0, message: String = "GET /index.html 200") -> [UInt8] {
        var encoder = BatchEncoder()
        for index in 0..<count {
            encoder.append(
                time: 1_700_000_000_000_000_000 + Int64(index), node: "s1",
                origin: Origin(agent: "agent-s1", source: "webapp", generation: "g", offset: offset + Int64(index)),
                message: "\(message) #\(index)")
        }
        return encoder.bytes
    }

    func zlib(_ bytes: [UInt8]) throws -> ByteBuffer { try BatchCompressor().compress(bytes) }

    func storedRows() throws -> Int {
        let queue = try DatabaseQueue(path: config.database)
        return try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM logs") ?? 0 }
    }

    func withCollector(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let collector = try await Collector(config: config, logger: Logger(label: "test"))
        try await collector.application().test(.router, body)
    }

    struct Counts: Decodable, Equatable { var accepted: Int; var duplicates: Int }
    struct ErrorBody: Decodable { struct Detail: Decodable { var code: String; var message: String }; var error: Detail }

    func post(
        _ client: any TestClientProtocol, _ body: ByteBuffer, encoding: String? = "deflate",
        token: String? = "s3cret"
    ) async throws -> (HTTPResponse.Status, ByteBuffer) {
        var headers: HTTPFields = [:]
        if let encoding { headers[.contentEncoding] = encoding }
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: "/v1/ingest", method: .post, headers: headers, body: body) { response in
            (response.status, response.body)
        }
    }

    @Test func acceptsABatchAndIgnoresItWhenResent() async throws {
        let body = try zlib(batch(500))
        try await withCollector { client in
            let (status, answer) = try await post(client, body)
            #expect(status == .ok)
            #expect(try JSONDecoder().decode(Counts.self, from: answer) == Counts(accepted: 500, duplicates: 0))
            let (again, second) = try await post(client, body)
            #expect(again == .ok)
            #expect(try JSONDecoder().decode(Counts.self, from: second) == Counts(accepted: 0, duplicates: 500))
            // Overlapping resend: half old, half new.
            let (_, third) = try await post(client, try zlib(batch(500, offset: 250)))
            #expect(try JSONDecoder().decode(Counts.self, from: third) == Counts(accepted: 250, duplicates: 250))
        }
        #expect(try storedRows() == 750)
    }

    @Test func gzipAndIdentityBodiesAreAccepted() async throws {
        try await withCollector { client in
            let gzip = try BatchCompressor(gzip: true).compress(batch(10))
            #expect(try await post(client, gzip, encoding: "gzip").0 == .ok)
            #expect(try await post(client, ByteBuffer(bytes: batch(20)), encoding: nil).0 == .ok)
        }
        #expect(try storedRows() == 20)
    }

    /// Each bad input: its status, its error code in a JSON body, and nothing stored.
    @Test func badInputIsRefusedAndStoresNothing() async throws {
        let good = try zlib(batch(10))
        let bomb = try BatchCompressor(level: 9).compress([UInt8](repeating: 32, count: 32 << 20))
        var tooManyBytes = [UInt8](repeating: 0, count: 70 << 10)
        for index in tooManyBytes.indices { tooManyBytes[index] = UInt8.random(in: 0...255) }
        var invalidUTF8 = batch(1)
        invalidUTF8.insert(contentsOf: [0xFF, 0xFE], at: invalidUTF8.count - 3)
        let missingMessage = Array(#"{"agent":"a","node":"n","src":"s","t":1,"off":0}"#.utf8)

        let cases: [(name: String, body: ByteBuffer, encoding: String?, token: String?, status: HTTPResponse.Status, code: String)] = [
            ("no token", good, "deflate", nil, .unauthorized, "unauthorized"),
            ("wrong token", good, "deflate", "guess", .unauthorized, "unauthorized"),
            ("unknown encoding", good, "br", "s3cret", .unsupportedMediaType, "unsupported_encoding"),
            ("corrupt zlib", ByteBuffer(bytes: [0x78, 0x9C] + Array(repeating: 0xAB, count: 100)), "deflate", "s3cret", .badRequest, "corrupt_compression"),
            ("body over limit", ByteBuffer(bytes: tooManyBytes), nil, "s3cret", .contentTooLarge, "body_too_large"),
            ("decompression bomb", bomb, "deflate", "s3cret", .contentTooLarge, "decompressed_too_large"),
            ("malformed JSON", try zlib(batch(3) + Array("{oops\n".utf8)), "deflate", "s3cret", .badRequest, "malformed_json"),
            ("invalid UTF-8", try zlib(invalidUTF8), "deflate", "s3cret", .badRequest, "invalid_utf8"),
            ("missing field", try zlib(batch(3) + missingMessage), "deflate", "s3cret", .badRequest, "missing_field"),
            ("empty body", ByteBuffer(), nil, "s3cret", .badRequest, "empty_batch"),
        ]
        try await withCollector { client in
            for testCase in cases {
                let (status, body) = try await post(client, testCase.body, encoding: testCase.encoding, token: testCase.token)
                #expect(status == testCase.status, "\(testCase.name)")
                let error = try? JSONDecoder().decode(ErrorBody.self, from: body)
                #expect(error?.error.code == testCase.code, "\(testCase.name): \(String(buffer: body))")
                #expect(error?.error.message.isEmpty == false, "\(testCase.name)")
            }
            // Still serving after all of that.
            #expect(try await post(client, good).0 == .ok)
        }
        #expect(try storedRows() == 10)
    }

    @Test func healthAndMetrics() async throws {
        try await withCollector { client in
            _ = try await post(client, try zlib(batch(7)))
            _ = try await post(client, try zlib(batch(7)), token: "bad")
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("muster_ingest_records_accepted_total 7"))
                #expect(text.contains("muster_ingest_rejected_batches_total 1"))
            }
        }
    }

    @Test func refusesToStartWithoutAToken() async {
        var open = config
        open.tokens = []
        await #expect(throws: CollectorError.self) { try await Collector(config: open, logger: Logger(label: "test")) }
    }
}

@Suite struct IngestWriterTests {
    func records(_ count: Int, from start: Int64) -> [LogRecord] {
        (0..<Int64(count)).map {
            LogRecord(time: 1, node: "n", origin: Origin(agent: "a", source: "s", generation: "g", offset: start + $0), message: "m")
        }
    }

    /// Past its limit of waiting records the writer refuses at once (the route answers 503
    /// and the agent retries) instead of holding every concurrent request in memory.
    @Test func refusesWhenTooMuchIsWaitingAndAfterStopping() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-writer-\(UUID().uuidString).sqlite").path
        let store = try SQLiteStore(path: path, synchronous: .normal)
        let writer = try await IngestWriter(store: store, metrics: CollectorMetrics(), logger: Logger(label: "test"), maxWaitingRecords: 100)
        let first = Task { try await writer.submit(records(80, from: 0)) }
        while !writer.isBusy { await Task.yield() }
        await #expect(throws: IngestWriterError.self) { try await writer.submit(records(80, from: 100)) }
        let running = Task { try await writer.run() }
        #expect(try await first.value == IngestCounts(accepted: 80, duplicates: 0))
        #expect(try await writer.submit(records(80, from: 100)) == IngestCounts(accepted: 80, duplicates: 0))
        running.cancel()
        try await running.value
        await #expect(throws: IngestWriterError.self) { try await writer.submit(records(1, from: 500)) }
    }

    /// With a commit interval, the batches that arrive within it of the last commit's start
    /// wait and share one commit (without one, the first of them is committed at once, and the
    /// rest share the next).
    @Test func batchesWithinTheIntervalShareOneCommit() async throws {
        let interval = Duration.seconds(1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-writer-\(UUID().uuidString).sqlite").path
        let store = CommitStarts(try SQLiteStore(path: path, synchronous: .normal))
        let writer = try await IngestWriter(
            store: store, metrics: CollectorMetrics(), logger: Logger(label: "test"), commitInterval: interval)
        let running = Task { try await writer.run() }
        #expect(try await writer.submit(records(10, from: 0)) == IngestCounts(accepted: 10, duplicates: 0))
        try await withThrowingTaskGroup(of: IngestCounts.self) { group in
            for n in 1...10 { group.addTask { try await writer.submit(self.records(10, from: Int64(n * 10))) } }
            for try await counts in group { #expect(counts == IngestCounts(accepted: 10, duplicates: 0)) }
        }
        running.cancel()
        try await running.value
        let starts = await store.starts
        #expect(starts.count == 2)
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1 - $0 >= interval })
    }
}

/// The SQLite store, noting when each commit starts.
actor CommitStarts: IngestStore, EventLog {
    let store: SQLiteStore
    private(set) var starts: [ContinuousClock.Instant] = []

    init(_ store: SQLiteStore) { self.store = store }

    func commit(_ batches: [IngestBatch]) async throws -> IngestCommit {
        starts.append(.now)
        return try await store.commit(batches)
    }

    nonisolated func recordMark(name: String, note: String, at t: Int64) async throws -> Mark {
        try await store.recordMark(name: name, note: note, at: t)
    }

    nonisolated func latestEventID() async throws -> Int64 { try await store.latestEventID() }

    nonisolated func events(after cursor: Int64, through horizon: Int64, kinds: [EventKind], limit: Int) async throws -> EventPage {
        try await store.events(after: cursor, through: horizon, kinds: kinds, limit: limit)
    }
}

@Suite struct CollectorConfigTests {
    /// The documented example must stay loadable and mean what it says.
    @Test func exampleConfigLoads() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("collector/collector.example.yaml").path
        let config = try CollectorConfig.load(path: example)
        #expect(config == CollectorConfig())
        #expect(config.retention.logsMaxAgeHours == 336 && config.retention.historyMaxAgeHours == 4320)
    }

    @Test func retentionSettingsAreCheckedAtStart() throws {
        var config = CollectorConfig()
        config.retention.logsMaxAgeHours = 24
        config.retention.maxDatabaseMegabytes = 0
        #expect(try config.retention.policy == RetentionPolicy(logsMaxAge: 86_400 * 1_000_000_000, historyMaxAge: 4_320 * 3_600 * 1_000_000_000))
        config.retention.historyMaxAgeHours = -1
        #expect(throws: ConfigError.invalid(path: "retention.history_max_age_hours", detail: "must be between 0 and 876000 (0: no limit), not -1")) {
            try config.retention.policy
        }
    }
}

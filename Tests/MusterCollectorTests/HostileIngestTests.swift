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

/// Batches a careless or hostile token holder could send, each of which once stopped the
/// collector (an overflow trap, repeated on every resend), and settings that once made it
/// spin instead of serve. Through the real router, writer and SQLite file.
@Suite struct HostileIngestTests {
    let directory: String
    var config: CollectorConfig

    init() throws {
        (config, directory) = try CollectorConfig.forTest("hostile")
    }

    struct ErrorBody: Decodable { struct Detail: Decodable { var code: String; var message: String }; var error: Detail }

    func post(_ client: any TestClientProtocol, _ text: String) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(
            uri: "/v1/ingest", method: .post, headers: [.authorization: "Bearer s3cret"], body: ByteBuffer(string: text)
        ) { ($0.status, String(buffer: $0.body)) }
    }

    func storedMessages() throws -> [String] {
        let queue = try DatabaseQueue(path: config.database)
        return try queue.read { db in try String.fetchAll(db, sql: "SELECT msg FROM logs ORDER BY id") }
    }

    func storedChanges() throws -> [String] {
        let queue = try DatabaseQueue(path: config.database)
        return try queue.read { db in try String.fetchAll(db, sql: "SELECT change FROM membership ORDER BY t") }
    }

    /// One NDJSON line with `key` replaced by `value` (raw JSON).
    static func line(_ overrides: [String: String], message: String = "poison") -> String {
        var fields: [(String, String)] = [
            ("agent", #""a1""#), ("node", #""s1""#), ("src", #""app""#), ("gen", #""g""#), ("off", "0"),
            ("t", "1700000000000000000"), ("msg", "\"\(message)\""),
        ]
        for (key, value) in overrides {
            if let index = fields.firstIndex(where: { $0.0 == key }) { fields[index].1 = value } else { fields.append((key, value)) }
        }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    static func journal(_ entry: String, offset: Int) -> String {
        let escaped = entry.replacingOccurrences(of: "\"", with: "\\\"")
        return line(["src": #""events""#, "off": "\(offset)", "msg": "\"\(escaped)\""])
    }

    @Test func poisonedBatchesAreRefusedAndEveryGoodOneIsStored() async throws {
        let member = #""member":{"name":"s9","address":"10.0.0.9","role":"web","tags":{}}"#
        let poisoned: [(name: String, body: String, code: String)] = [
            ("off at Int64.max", Self.line(["off": "9223372036854775807"]), "invalid_field"),
            ("off past 2^62", Self.line(["off": "4611686018427387905"]), "invalid_field"),
            ("year 9999", Self.line(["t": #""9999-12-31T23:59:59Z""#]), "invalid_field"),
            ("year 0000", Self.line(["t": #""0000-01-01T00:00:00Z""#]), "invalid_field"),
            ("year 2263", Self.line(["t": #""2263-01-01T00:00:00Z""#]), "invalid_field"),
            ("offset hour 99", Self.line(["t": #""2026-01-01T00:00:00+99:00""#]), "invalid_field"),
            ("t at Int64.max", Self.line(["t": "9223372036854775807"]), "invalid_field"),
            ("t negative", Self.line(["t": "-1"]), "invalid_field"),
            ("journal join at Int64.min",
             Self.journal(#"{"t":-9223372036854775808,"event":"member-join","observer":"ha",\#(member)}"#, offset: 0),
             "invalid_journal_entry"),
            ("journal snapshot at Int64.max",
             Self.journal(#"{"t":9223372036854775807,"event":"snapshot","observer":"ha","members":[]}"#, offset: 100),
             "invalid_journal_entry"),
            ("journal config with a negative version",
             Self.journal(
                #"{"t":1,"event":"config","observer":"ha","config":{"version":-1,"sha256":"x","text":"","diff":"","trigger":[],"method":"none","durationMilliseconds":0,"outcome":"applied","servers":[]}}"#,
                offset: 200),
             "invalid_journal_entry"),
        ]
        try await withCollector { client in
            for (index, testCase) in poisoned.enumerated() {
                let (status, body) = try await post(client, testCase.body)
                #expect(status == .badRequest, "\(testCase.name): \(body)")
                let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(body.utf8))
                #expect(error?.error.code == testCase.code, "\(testCase.name): \(body)")
                // The collector is still up and stores the good batch that follows each poisoned one.
                let good = Self.line(["off": "\(index * 100)", "src": #""good""#], message: "good \(index)")
                #expect(try await post(client, good).0 == .ok, "after \(testCase.name)")
            }
        }
        #expect(try storedMessages() == poisoned.indices.map { "good \($0)" })
    }

    /// The widest span the wire accepts: a join at the epoch and a contradicting snapshot at
    /// the last supported instant. Their difference is what the ledger computes; it must fit.
    @Test func membershipAtBothEndsOfTheSupportedRange() async throws {
        let member = #""member":{"name":"s9","address":"10.0.0.9","role":"web","tags":{}}"#
        let last = Timestamp.supportedRange.upperBound
        let join = Self.journal(#"{"t":0,"event":"member-join","observer":"ha",\#(member)}"#, offset: 0)
        let snapshot = Self.journal(
            #"{"t":\#(last),"event":"snapshot","observer":"ha","members":[{"name":"s9","address":"10.0.0.9","role":"web","tags":{},"status":"failed"}]}"#,
            offset: 100)
        let failed = Self.journal(#"{"t":\#(last),"event":"member-failed","observer":"ha",\#(member)}"#, offset: 200)
        try await withCollector { client in
            for body in [join, snapshot, failed] {
                let (status, answer) = try await post(client, body)
                #expect(status == .ok, "\(answer)")
            }
        }
        #expect(try storedChanges() == ["joined", "failed"])
    }

    /// With every retention limit off ("0 = no limit"), the retention service once returned at
    /// start, which ended the whole service group: the server never listened, and the indexer,
    /// cancelled, spun at full CPU. Run live, the app must serve and then stop when asked.
    @Test func retentionFullyOffStillServesAndStops() async throws {
        var config = self.config
        config.retention.logsMaxAgeHours = 0
        config.retention.historyMaxAgeHours = 0
        config.retention.maxDatabaseMegabytes = 0
        let collector = try await Collector(config: config, logger: Logger(label: "test"))
        #expect(!(try config.retention.policy).isEnabled)
        try await collector.application().test(.live) { client in
            let status = try await client.execute(
                uri: "/v1/ingest", method: .post, headers: [.authorization: "Bearer s3cret"],
                body: ByteBuffer(string: Self.line([:], message: "kept"))
            ) { $0.status }
            #expect(status == .ok)
            let health = try await client.execute(uri: "/healthz", method: .get) { $0.status }
            #expect(health == .ok)
        }
        #expect(try storedMessages() == ["kept"])
    }

    /// Inflated bytes are bounded across requests: while one request holds its reservation,
    /// another that does not fit waits, and goes on once the first is answered.
    @Test func inflatedBytesBudgetMakesLaterRequestsWait() async throws {
        let budget = InflatedBytesBudget(capacity: 100)
        #expect(await budget.reserve(70) == 70)
        let second = Task { await budget.reserve(60) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(await budget.heldBytes == 70, "the second reservation must wait")
        await budget.release(70)
        #expect(await second.value == 60)
        #expect(await budget.heldBytes == 60)
        // A reservation larger than the whole budget runs alone instead of never.
        await budget.release(60)
        #expect(await budget.reserve(500) == 100)
        await budget.release(100)
        #expect(await budget.heldBytes == 0)
    }

    func withCollector(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let collector = try await Collector(config: config, logger: Logger(label: "test"))
        try await collector.application().test(.router, body)
    }
}

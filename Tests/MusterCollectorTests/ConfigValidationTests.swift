import Foundation
import Testing

@testable import MusterCollector

/// The collector's settings: every numeric key has a range, tokens must be usable, and a
/// typo'd key is an error naming the nearest known one, so that a config that cannot work
/// stops the collector at start instead of refusing every batch later.
@Suite struct CollectorConfigValidationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Loads and validates `yaml`; the error's text, or nil.
    func problem(_ yaml: String) -> String? {
        let path = directory + "/collector-\(UUID().uuidString).yaml"
        do {
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            try CollectorConfig.load(path: path).validate()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func theExampleAndTheDefaultsAreValid() throws {
        let example = try CollectorConfig.load(path: Self.repository.appendingPathComponent("collector/collector.example.yaml").path)
        try example.validate()
        #expect(example.limits == CollectorConfig.Limits())
        try CollectorConfig().validate()
    }

    @Test(arguments: [
        ("limits: {max_body_bytes: -1}", "limits.max_body_bytes: must be between 1 and 1073741824, not -1"),
        ("limits: {max_body_bytes: 0}", "limits.max_body_bytes: must be between 1 and 1073741824, not 0"),
        ("limits: {max_decompressed_bytes: 0}", "limits.max_decompressed_bytes: must be between 1 and 4294967296, not 0"),
        ("limits: {max_records_per_batch: -5}", "limits.max_records_per_batch: must be between 1 and 10000000, not -5"),
        ("limits: {max_line_bytes: 0}", "limits.max_line_bytes: must be between 1 and 1073741824, not 0"),
        ("limits: {max_waiting_records: 0}", "limits.max_waiting_records: must be between 1 and 100000000, not 0"),
        ("limits: {max_inflated_bytes_in_flight: 0}", "limits.max_inflated_bytes_in_flight: must be between 1 and 1099511627776, not 0"),
        ("limits: {max_connections: 0}", "limits.max_connections: must be between 1 and 1000000, not 0"),
        ("limits: {max_connections: 1000001}", "limits.max_connections: must be between 1 and 1000000, not 1000001"),
        ("limits: {idle_timeout_ms: 99}", "limits.idle_timeout_ms: must be between 100 and 86400000, not 99"),
        ("limits: {idle_timeout_ms: 86400001}", "limits.idle_timeout_ms: must be between 100 and 86400000, not 86400001"),
        ("limits: {body_timeout_ms: -1}", "limits.body_timeout_ms: must be between 100 and 86400000, not -1"),
        ("listen: {port: 65536}", "listen.port: must be between 0 and 65535 (0 picks a free port), not 65536"),
        ("search_index: {interval_ms: 0}", "search_index.interval_ms: must be between 1 and 86400000, not 0"),
        ("search_index: {chunk_rows: 0}", "search_index.chunk_rows: must be between 1 and 10000000, not 0"),
        ("membership: {snapshot_settle_ms: -1}", "membership.snapshot_settle_ms: must be between 0 and 86400000, not -1"),
        ("retention: {logs_max_age_hours: -1}", "retention.logs_max_age_hours: must be between 0 and 876000 (0: no limit), not -1"),
        ("retention: {history_max_age_hours: 9223372036854775807}",
         "retention.history_max_age_hours: must be between 0 and 876000 (0: no limit), not 9223372036854775807"),
        ("retention: {max_database_mb: 9223372036854775807}",
         "retention.max_database_mb: must be between 0 and 1073741824 (0: no limit), not 9223372036854775807"),
        ("retention: {interval_ms: 0}", "retention.interval_ms: must be between 1 and 86400000, not 0"),
        ("retention: {chunk_rows: 0}", "retention.chunk_rows: must be between 1 and 10000000, not 0"),
    ])
    func outOfRangeValuesNameTheKeyAndTheRange(yaml: String, message: String) {
        #expect(problem(yaml + "\n") == "invalid config " + message)
    }

    /// The largest values of each range are accepted, and so are the Limits fields' defaults.
    @Test func theEndsOfEachRangeAreAccepted() {
        #expect(problem("limits: {max_body_bytes: 1073741824, max_connections: 1, idle_timeout_ms: 100, body_timeout_ms: 86400000}\n") == nil)
        #expect(problem("retention: {logs_max_age_hours: 0, history_max_age_hours: 876000, max_database_mb: 0}\n") == nil)
        #expect(problem("listen: {port: 0}\n") == nil)
    }

    /// The example's commented `store:` section, uncommented, is a valid config; each of its
    /// settings is checked at start, naming the key, without connecting to anything.
    @Test func theScaleOutStoreSectionIsCheckedAtStart() throws {
        let example = try String(contentsOfFile: Self.repository.appendingPathComponent("collector/collector.example.yaml").path, encoding: .utf8)
        let lines = example.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasPrefix("# store:") })
        let section = lines[start...].prefix { $0.hasPrefix("#") }.map { String($0.dropFirst(2)) }.joined(separator: "\n")
        try "secret\n".write(toFile: directory + "/clickhouse-password", atomically: true, encoding: .utf8)
        #expect(problem(section + "\n") == nil)
        let store = """
            store:
              clickhouse: {shards: [[http://127.0.0.1:8123]]}
              etcd: {endpoints: [http://127.0.0.1:2379]}

            """
        #expect(problem(store) == nil)
        #expect(problem(store + "retention: {max_database_mb: 100}\n")?.contains("retention.max_database_mb: the ClickHouse and etcd store prunes by age only") == true)
        for (yaml, message) in [
            ("store:\n  clickhouse: {shards: []}\n  etcd: {endpoints: [http://e:2379]}\n", "store.clickhouse: a ClickHouse store needs at least one shard"),
            ("store:\n  clickhouse: {shards: [[ch1:8123]]}\n  etcd: {endpoints: [http://e:2379]}\n", "store.clickhouse: 'ch1:8123' is not a ClickHouse HTTP address"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]], database: 'my-db'}\n  etcd: {endpoints: [http://e:2379]}\n", "store.clickhouse: 'my-db' is not a plain ClickHouse name"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]]}\n  etcd: {endpoints: []}\n", "store.etcd:"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]]}\n  etcd: {endpoints: [http://e:2379], max_txn_ops: 2}\n", "store.etcd.max_txn_ops: must be in 4...100000"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]], commit_timeout_ms: 50}\n  etcd: {endpoints: [http://e:2379]}\n",
             "store.clickhouse.commit_timeout_ms: must be in 100...60000 (at most timeout_ms), not 50"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]], timeout_ms: 2000, commit_timeout_ms: 3000}\n  etcd: {endpoints: [http://e:2379]}\n",
             "store.clickhouse.commit_timeout_ms: must be in 100...2000 (at most timeout_ms), not 3000"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]], insert_interval_ms: 6000}\n  etcd: {endpoints: [http://e:2379]}\n",
             "store.clickhouse.insert_interval_ms: must be in 0...5000, not 6000"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]], password_file: /nonexistent/pw}\n  etcd: {endpoints: [http://e:2379]}\n", "store.clickhouse.password_file: cannot read /nonexistent/pw"),
            ("store:\n  clickhouse: {shards: [[http://c:8123]], timout_ms: 5}\n  etcd: {endpoints: [http://e:2379]}\n", "unknown key 'timout_ms' in store.clickhouse (did you mean 'timeout_ms'?)"),
        ] {
            let text = problem(yaml)
            #expect(text?.contains(message) == true, "\(yaml): \(text ?? "accepted")")
        }
    }

    /// `tokens: [""]` started a collector that accepted nothing.
    @Test(arguments: [
        (#"tokens: [""]"#, "tokens[0]: is empty or only whitespace"),
        (#"tokens: [good, "   "]"#, "tokens[1]: is empty or only whitespace"),
        (#"tokens: ["a b"]"#, "tokens[0]: contains whitespace or a control character"),
        (#"tokens: ["abc\n"]"#, "tokens[0]: contains whitespace or a control character"),
        (#"tokens: ["abc\u0000"]"#, "tokens[0]: contains whitespace or a control character"),
    ])
    func unusableTokensAreRefused(yaml: String, message: String) throws {
        let text = try #require(problem(yaml + "\n"))
        #expect(text.hasPrefix("invalid config " + message), "\(text)")
        #expect(!text.contains("abc"), "a token is never quoted: \(text)")
    }

    @Test(arguments: [
        ("limts:\n  max_body_bytes: 5\n", "unknown key 'limts' (did you mean 'limits'?)"),
        ("limits:\n  max_body_byte: 5\n", "unknown key 'max_body_byte' in limits (did you mean 'max_body_bytes'?)"),
        ("retention: {logs_max_age_hour: 1}\n", "unknown key 'logs_max_age_hour' in retention (did you mean 'logs_max_age_hours'?)"),
        ("tls: {cert: x}\n", "unknown key 'cert' in tls (did you mean 'cert_file'?)"),
        ("tls: {pem: x}\n", "unknown key 'pem' in tls (known: cert_file, key_file)"),
        ("searchindex: {}\n", "unknown key 'searchindex' (did you mean 'search_index'?)"),
        ("listen: {host: h, prot: 1}\n", "unknown key 'prot' in listen (did you mean 'port'?)"),
    ])
    func anUnknownKeyIsAnErrorNamingTheNearestKnownOne(yaml: String, message: String) throws {
        let text = try #require(problem(yaml))
        #expect(text.hasSuffix(message), "\(text)")
    }

    /// What images/node-config writes for the collector node loads and passes.
    @Test func theConfigThatNodeConfigWritesLoads() throws {
        try "tok\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = Self.repository.appendingPathComponent("images/node-config")
        process.arguments = ["collector", "--token-file", directory + "/token", "--database", directory + "/db.sqlite"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let yaml = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        #expect(problem(yaml) == nil)
        #expect(yaml.contains("tokens: [\"tok\"]"))
    }
}

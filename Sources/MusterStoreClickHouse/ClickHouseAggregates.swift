import Foundation
import MusterStore
import MusterWire

/// The numbers over the stored lines (`AggregateReader`): histograms, the store's statistics,
/// the lines' extent and HAProxy's samples, computed in ClickHouse through the `Distributed`
/// table `logs`.
///
/// - **Each line once.** Every statement reads `logs FINAL`: each shard merges the copies of a
///   line (rows with the same sorting key, `node, t` and the identity) as a merge would, keeping
///   the first copy stored. Copies always sit on one shard, so no line is counted on two.
///   Measured on 18.16, 2 cores, 820,000 rows (20,000 of them copies) in 20 unmerged parts:
///   counts per minute took 261 ms with `FINAL`, 247 ms with `uniqExact(agent, src, gen, off, t)`
///   and 392 ms with a subquery grouping by the sorting key; merged, 169 ms against 198 ms.
///   `FINAL` is taken for every figure because it also makes a source's bytes, its first and
///   last time and the rows handed to Swift exact, with plain `count()` and `sum()`.
/// - **`PREWHERE`** holds the conditions the primary key cannot use (the journal's `src`, the
///   error rule's text): 18.16 moves nothing there by itself when reading `FINAL`. Measured as
///   above: the samples of a range of 1,170,000 rows read 19 MB instead of 197 MB (46 ms
///   instead of 291 ms), the error histogram of 2,100,000 rows took 582 ms instead of 873 ms.
///   Filtering before copies are merged is sound: copies are the same bytes in every column
///   but `id` and `rank`, which no condition reads.
/// - **Times** are clamped into `Timestamp.supportedRange` before any arithmetic, as SQLite
///   does; `stats`' first and last times are the stored ones, as there.
/// - **No snapshot across statements**: a call that needs several statements (`stats`, the
///   error histogram's lines ClickHouse cannot decide, samples read in parts) may see lines
///   stored between them in some and not in others.
/// - `firstInstant` and `lastInstant` cover the lines only; membership changes, configurations
///   and marks are elsewhere (etcd), and the caller takes the earlier and the later of both.
extension ClickHouseLogReader: AggregateReader {
    public func lineCounts(_ request: LineCountRequest) throws(StoreError) -> [LineCount] {
        try validate(nodes: request.nodes, sources: [])
        var conditions = [ClickHouseSQL.isIn("node", request.nodes)].compactMap { $0 }
        if let since = request.since { conditions.append("t >= \(since)") }
        if let until = request.until { conditions.append("t < \(until)") }
        let range = conditions.whereClause
        let bucket = Self.bucket(request.interval)
        guard request.errorsOnly else {
            struct Row: Decodable {
                var bucket: Int64
                var node: String
                var count: Int64
            }
            let rows = try read(
                Row.self, "SELECT \(bucket) AS bucket, node, count() AS count FROM logs FINAL \(range) GROUP BY bucket, node")
            return Self.ordered(rows.map { LineCount(bucket: $0.bucket, node: $0.node, count: $0.count) })
        }
        // ClickHouse counts the lines it can decide as `ErrorRule` does and says how much of
        // the rest there is; those are then read, grouped by text, and decided in Swift.
        struct Decided: Decodable {
            var bucket: Int64
            var node: String
            var errors: Int64
            var undecided: Int64
            var undecidedBytes: Int64
        }
        let decided = try read(
            Decided.self,
            """
            SELECT \(bucket) AS bucket, node, countIf(\(ErrorRuleSQL.decidedError)) AS errors, \
            countIf(\(ErrorRuleSQL.undecided)) AS undecided, \
            sumIf(length(src) + length(msg) + length(fields), \(ErrorRuleSQL.undecided)) AS undecidedBytes \
            FROM logs FINAL PREWHERE \(ErrorRuleSQL.candidate) \(range) GROUP BY bucket, node
            """)
        struct Key: Hashable {
            var bucket: Int64
            var node: String
        }
        var counts: [Key: Int64] = [:]
        // Numbers read back are outside input: sums saturate instead of trapping.
        for row in decided where row.errors > 0 { counts[Key(bucket: row.bucket, node: row.node), default: 0].saturatingAdd(row.errors) }
        let undecided = decided.reduce(into: (rows: Int64(0), bytes: Int64(0))) {
            $0.rows.saturatingAdd($1.undecided)
            $0.bytes.saturatingAdd($1.undecidedBytes)
        }
        if undecided.rows > 0 {
            struct Candidate: Decodable {
                var bucket: Int64
                var node: String
                var src: String
                var msg: String
                var fields: String
                var count: Int64
            }
            for part in partConditions(rows: undecided.rows, bytes: undecided.bytes) {
                let rows = try read(
                    Candidate.self,
                    """
                    SELECT \(bucket) AS bucket, node, src, msg, fields, count() AS count FROM logs FINAL \
                    PREWHERE \(ErrorRuleSQL.candidate) AND (\(ErrorRuleSQL.undecided)) \
                    \((conditions + [part].compactMap { $0 }).whereClause) \
                    GROUP BY bucket, node, src, msg, fields
                    """)
                for row in rows
                where ErrorRule.matches(source: row.src, message: row.msg, status: ErrorRuleSQL.status(fields: row.fields)) {
                    counts[Key(bucket: row.bucket, node: row.node), default: 0].saturatingAdd(row.count)
                }
            }
        }
        return Self.ordered(counts.map { LineCount(bucket: $0.key.bucket, node: $0.key.node, count: $0.value) })
    }

    public func stats(now: Int64) throws(StoreError) -> StoreStats {
        // A clock far off (or a caller's `now`) must not overflow "the last minute".
        let now = Timestamp.clamped(now)
        struct Source: Decodable {
            var node: String
            var src: String
            var lines: Int64
            var bytes: Int64
            var first: Int64
            var last: Int64
        }
        let sources = try read(
            Source.self,
            """
            SELECT node, src, count() AS lines, sum(length(msg)) AS bytes, min(t) AS first, max(t) AS last \
            FROM logs FINAL GROUP BY node, src ORDER BY node, src
            """)
        struct Recent: Decodable {
            var minute: Int64
            var hour: Int64
        }
        let recent = try read(
            Recent.self,
            """
            SELECT countIf(t >= \(now - 60 * Timestamp.nanosPerSecond)) AS minute, count() AS hour \
            FROM logs FINAL WHERE t >= \(now - 3_600 * Timestamp.nanosPerSecond) AND t <= \(now)
            """
        ).first
        return StoreStats(
            sources: sources.map {
                StoreStats.Source(node: $0.node, source: $0.src, lines: $0.lines, bytes: $0.bytes, first: $0.first, last: $0.last)
            },
            linesLastMinute: recent?.minute ?? 0, linesLastHour: recent?.hour ?? 0,
            // No word index on this path (`match` reads the lines): nothing waits for one.
            notIndexed: 0, indexedThrough: try largestID(),
            databaseBytes: try bytesOnDisk(), walBytes: 0,
            // What retention pruned is not recorded on this path (each collector prunes in turn).
            prunedLogRows: 0, prunedHistoryRows: 0, prunedLogsBefore: nil, lastPruneAt: nil)
    }

    /// The earliest time of a stored line, clamped into the supported range; nil when no line
    /// is stored. Lines only (see the type's comment).
    public func firstInstant() throws(StoreError) -> Int64? {
        try extent()?.first
    }

    /// The latest time of a stored line, clamped; nil when no line is stored. Lines only.
    public func lastInstant() throws(StoreError) -> Int64? {
        try extent()?.last
    }

    /// The journal's lines that mention `haproxy-stats` (any case, as SQLite's `LIKE`) in
    /// [since, until), decoded in Swift; a line that is not a readable sample is skipped. The
    /// log lines around them cost little more than their `src` column, read first (`PREWHERE`).
    /// Read in parts of at most about `pageRows` lines, then put in time order (then id: the
    /// first copy's).
    public func haproxySamples(since: Int64, until: Int64) throws(StoreError) -> [JournalEntry] {
        let journal = "src = \(ClickHouseSQL.literal(JournalEntry.sourceID))"
        let conditions = [
            "t >= \(since)", "t < \(until)", "positionCaseInsensitive(msg, \(ClickHouseSQL.literal("\"haproxy-stats\""))) > 0",
        ]
        struct Size: Decodable {
            var rows: Int64
            var bytes: Int64
        }
        let size = try read(
            Size.self,
            "SELECT count() AS rows, sum(length(msg)) AS bytes FROM logs FINAL PREWHERE \(journal) \(conditions.whereClause)"
        ).first
        guard let size, size.rows > 0 else { return [] }
        struct Row: Decodable {
            var t: Int64
            var id: Int64
            var msg: String
        }
        var rows: [Row] = []
        for part in partConditions(rows: size.rows, bytes: size.bytes) {
            rows += try read(
                Row.self, "SELECT t, id, msg FROM logs FINAL PREWHERE \(journal) \((conditions + [part].compactMap { $0 }).whereClause)")
        }
        rows.sort { ($0.t, $0.id) < ($1.t, $1.id) }
        return rows.compactMap { row in
            // A sample with no rows is an observation too (no server listed), so it stays.
            guard let entry = try? JournalEntry.decode(line: row.msg), entry.event == .haproxyStats, entry.stats != nil else { return nil }
            return entry
        }
    }

    // MARK: - Helpers

    /// `t` clamped into the supported range, down to a multiple of `interval` (which cannot
    /// overflow: the result lies between 0 and the clamped time). Every operand is `Int64`:
    /// 18.16 has no common type for `Int64` and a literal it reads as `UInt64`.
    static func bucket(_ interval: Int64) -> String {
        let (lowest, highest) = (Timestamp.supportedRange.lowerBound, Timestamp.supportedRange.upperBound)
        return "intDiv(least(greatest(t, toInt64(\(lowest))), toInt64(\(highest))), toInt64(\(interval))) * toInt64(\(interval))"
    }

    /// By interval, then node in byte order (as SQLite's and ClickHouse's `ORDER BY`).
    static func ordered(_ counts: [LineCount]) -> [LineCount] {
        counts.sorted { $0.bucket != $1.bucket ? $0.bucket < $1.bucket : $0.node.utf8.lexicographicallyPrecedes($1.node.utf8) }
    }

    /// The lines' earliest and latest time, clamped; nil when no line is stored (ClickHouse's
    /// `min` of no rows is 0, not NULL).
    private func extent() throws(StoreError) -> (first: Int64, last: Int64)? {
        struct Row: Decodable {
            var lines: Int64
            var first: Int64
            var last: Int64
        }
        guard let row = try read(Row.self, "SELECT count() AS lines, min(t) AS first, max(t) AS last FROM logs").first, row.lines > 0
        else { return nil }
        return (Timestamp.clamped(row.first), Timestamp.clamped(row.last))
    }

    /// The bytes on disk of both tables' active parts on every replica, each asked on its own:
    /// 18.16 has no `clusterAllReplicas`. (`bytes_on_disk`: 18.16 and current releases both
    /// have it; `bytes` is its alias in both.) A replica that does not answer is an error, not
    /// a smaller number.
    private func bytesOnDisk() throws(StoreError) -> Int64 {
        struct Row: Decodable { var bytes: Int64 }
        var total: Int64 = 0
        for replica in http.servers.replicas {
            let rows = try read(
                Row.self,
                """
                SELECT sum(bytes_on_disk) AS bytes FROM system.parts \
                WHERE database = \(ClickHouseSQL.literal(http.servers.database)) AND table IN ('logs_local', 'ids_local') AND active
                """, on: [replica])
            total.saturatingAdd(rows.first?.bytes ?? 0)
        }
        return total
    }

    static let maxParts: Int64 = 100_000

    /// The largest answer of a statement that reads rows out for Swift, before JSON escaping
    /// (which at most sextuples a byte, staying below `ClickHouseHTTP.answerLimit`).
    static let partBytes: Int64 = 16 << 20

    /// Conditions that split rows into parts of at most about `pageRows` rows and `partBytes`
    /// bytes (by the line's identity, so copies fall into one part and `FINAL` still merges
    /// them); `[nil]` when one part holds them.
    private func partConditions(rows: Int64, bytes: Int64) -> [String?] {
        // At most `maxParts`: a count read back that is absurd must not make a billion statements.
        let parts = min(Self.maxParts, max(1, rows / Int64(pageRows) + 1, bytes / Self.partBytes + 1))
        guard parts > 1 else { return [nil] }
        return (0..<parts).map { "cityHash64(agent, src, gen, off) % \(parts) = \($0)" }
    }
}

extension [String] {
    /// `WHERE a AND b`, or nothing for no conditions.
    fileprivate var whereClause: String { isEmpty ? "" : "WHERE " + joined(separator: " AND ") }
}

/// `ErrorRule` over the columns of `logs`, for the lines ClickHouse can decide exactly as Swift
/// does; the others (`undecided`) are decided by `ErrorRule.matches` itself.
///
/// - The status is what SQLite's `is_error` is given: `json_extract(fields, '$.status')` as an
///   integer (a JSON integer as it is, a real rounded toward zero when in range, a string when
///   it reads as one, a boolean as 1 or 0), else none. `fields` is `StoredFieldsEncoder`'s
///   JSON: no spaces, a `"` inside a string always escaped, so the object has the key `status`
///   exactly when the text holds `{"status":` or `,"status":`. A plain integer of up to 18
///   digits after it is decided here (5xx or not); any other value (a string, a real, a
///   boolean, a longer number) is left to Swift.
/// - Without a status, a message of ASCII text is decided here: `positionCaseInsensitive`
///   folds ASCII case as `lowercased()` does on ASCII, and ` 5dd d` is a byte pattern in both.
///   Non-ASCII text (where `lowercased()` and `contains` follow Unicode: a combining mark after
///   a word ends it elsewhere) goes to Swift when it holds a word in ASCII case or the pattern,
///   which every match in Swift needs: the only letters that lower to ASCII are ASCII, `K`
///   (KELVIN SIGN, to `k`, in no word) and `İ` (to `i` and a combining dot, which no word
///   matches).
/// - The journal (`events`) is never an error, as in `ErrorRule`.
enum ErrorRuleSQL {

    static let hasStatus = "(position(fields, '{\"status\":') > 0 OR position(fields, ',\"status\":') > 0)"
    static let plainStatus = "match(fields, '[{,]\"status\":-?(0|[1-9][0-9]{0,17})[,}]')"
    static let serverErrorStatus = "match(fields, '[{,]\"status\":5[0-9][0-9][,}]')"
    static let ascii = "length(msg) = lengthUTF8(msg)"
    static let saysError =
        "(" + (ErrorRule.words.map { "positionCaseInsensitive(msg, \(ClickHouseSQL.literal($0))) > 0" } + ["match(msg, ' 5[0-9][0-9] [0-9]')"])
        .joined(separator: " OR ") + ")"

    /// Lines that may be errors: no journal line, and a status, or the message's words.
    static let candidate = "src != \(ClickHouseSQL.literal(JournalEntry.sourceID)) AND (\(hasStatus) OR \(saysError))"
    /// Among the candidates, the lines that are errors by a plain 5xx status, or by their
    /// ASCII text without a status.
    static let decidedError = "\(serverErrorStatus) OR (NOT \(hasStatus) AND \(ascii) AND \(saysError))"
    /// Among the candidates, the lines only Swift can decide.
    static let undecided = "(\(hasStatus) AND NOT \(plainStatus)) OR (NOT \(hasStatus) AND NOT \(ascii))"

    /// The status `is_error` gets from stored fields (see above).
    static func status(fields: String) -> Int64? {
        guard !fields.isEmpty, let object = try? JSONDecoder().decode([String: FieldValue].self, from: Data(fields.utf8)),
            let value = object["status"]
        else { return nil }
        switch value {
        case .int(let value): return value
        case .double(let value):
            // GRDB's `Int64.fromDatabaseValue` of a REAL.
            guard value >= Double(Int64.min), value < Double(Int64.max) else { return nil }
            return Int64(value)
        case .string(let text): return Int64(text)
        case .bool(let value): return value ? 1 : 0
        }
    }
}

extension Int64 {
    /// Adds, staying at `Int64.max` (or `.min`) instead of trapping.
    mutating func saturatingAdd(_ other: Int64) {
        let (sum, overflow) = addingReportingOverflow(other)
        self = overflow ? (other > 0 ? .max : .min) : sum
    }
}

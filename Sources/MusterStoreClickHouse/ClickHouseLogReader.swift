import MusterStore
import MusterWire
import NIOCore

/// The stored lines, read from ClickHouse through the `Distributed` table (`LogTables`).
///
/// How it keeps `LogReader`'s promises where ClickHouse differs from SQLite:
///
/// - **Each line once.** Copies of a line (a resend two collectors stored at the same instant)
///   share their identity, so they share `node` and `t` and sit on one shard. A read in time
///   order gives the first copy met at each instant (the one ClickHouse keeps when it merges)
///   and leaves out the others, across page boundaries too; reads by id drop a line whose
///   identity has an older copy.
/// - **Search** has no word index here: `--match` is checked on each line of the range with
///   `TextMatch`, after ClickHouse has kept only lines that contain every word ignoring ASCII
///   case (or hold non-ASCII text, which `TextMatch` folds further than ClickHouse can).
///   `--grep` is checked with `LinePattern` (ICU), not ClickHouse's re2, so a pattern means
///   the same on every backend.
/// - **Snapshots.** A scan is read in pages of `pageRows`; ClickHouse has no snapshot across
///   statements, so lines stored while a long scan runs may or may not be in its answer. Each
///   page is consistent, and no line is given twice.
public final class ClickHouseLogReader: LogReader {
    let http: ClickHouseHTTP
    /// Lines per statement: an answer stays a few MiB whatever the scan.
    let pageRows: Int
    /// How far behind the collectors' clocks following stays. Ids are the storing collector's
    /// clock (`LineIDClock`), so a line can be stored after one with a larger id: by another
    /// collector whose clock is behind, or into the second shard of a group after the first.
    /// Following only lines at least this old, a follower is not moved past such a line
    /// before it is stored. "Now" is the ClickHouse server's clock, not the reader's; the
    /// collectors' clocks must agree with it within the settling time (NTP), and a store that
    /// takes longer than that to insert a line (a replica that hangs until the timeout) can
    /// still store one below where a follower has got to.
    let followSettling: Duration

    public static let defaultFollowSettling: Duration = .seconds(10)

    public init(http: ClickHouseHTTP, pageRows: Int = 10_000, followSettling: Duration = defaultFollowSettling) {
        self.http = http
        self.pageRows = max(pageRows, 1)
        self.followSettling = followSettling
    }

    /// The newest id a follower may be given now, as SQL evaluated by the server (its clock,
    /// whole seconds); nil with no settling time.
    private func followHorizon() -> String? {
        let margin = followSettling.saturatingNanoseconds
        guard margin > 0 else { return nil }
        return "(toInt64(now()) * \(Timestamp.nanosPerSecond) - \(margin))"
    }

    public func scan(_ filter: LogFilter, _ body: (LogLine) -> Void) throws(StoreError) {
        let check = try LineCheck(filter)
        try validate(nodes: filter.nodes, sources: filter.sources)
        try readPages(filter, check) { body($0.line) }
    }

    public func linesWithContext(_ filter: LogFilter, context: Int) throws(StoreError) -> [ContextItem] {
        let check = try LineCheck(filter)
        try validate(nodes: filter.nodes, sources: filter.sources)
        // Each hit's file, from the row that gave it: its neighbours are read by identity.
        var hits: [LogLine] = []
        var files: [Int64: StoredLine.File] = [:]
        try readPages(filter, check) { row in
            let line = row.line
            hits.append(line)
            files[line.stream] = row.file
        }
        return try ContextItem.grouping(
            hits, context: context,
            neighbours: { line, before, count throws(StoreError) in
                // Which offsets are next to the line in its file (`ids`, by identity), then those
                // lines (`logs`, by node and time).
                guard let file = files[line.stream] else { return [] }
                struct Place: Decodable {
                    var off: Int64
                    var t: Int64
                }
                // GROUP BY, not LIMIT 1 BY: on a Distributed table 18.16 applies the LIMIT on each
                // shard before LIMIT BY, so a shard whose first rows are copies of one line gave
                // too few neighbours (found by the differential test against SQLite).
                let places = try read(
                    Place.self,
                    """
                    SELECT off, min(t) AS t FROM ids WHERE \(file.condition) AND off \(before ? "<" : ">") \(line.offset) \
                    GROUP BY off ORDER BY off \(before ? "DESC" : "") LIMIT \(max(count, 0))
                    """)
                guard !places.isEmpty else { return [] }
                return try self.lines(
                    """
                    SELECT \(LogTables.lineColumns) FROM logs WHERE node = \(ClickHouseSQL.literal(file.node)) \
                    AND t IN (\(Set(places.map(\.t)).map(String.init).joined(separator: ","))) AND \(file.condition) \
                    AND off IN (\(places.map { String($0.off) }.joined(separator: ","))) \
                    ORDER BY off \(before ? "DESC" : ""), id LIMIT 1 BY agent, src, gen, off
                    """)
            },
            anyBetween: { stream, after, before throws(StoreError) in
                guard let file = files[stream] else { return false }
                return try self.number("SELECT count() FROM ids WHERE \(file.condition) AND off > \(after) AND off < \(before)") > 0
            })
    }

    /// Where following starts: the newest id, but no newer than the follow horizon (see
    /// `followSettling`), so that a line stored late below it is not passed.
    public func newestLineID() throws(StoreError) -> Int64 {
        guard let horizon = followHorizon() else { return try largestID() }
        return try number("SELECT least(max(id), \(horizon)) FROM logs")
    }

    /// The largest id stored.
    func largestID() throws(StoreError) -> Int64 {
        try number("SELECT max(id) FROM logs")
    }

    /// How many lines are stored, each counted once however many copies it has.
    public func storedLineCount() throws(StoreError) -> Int64 {
        try number("SELECT uniqExact(agent, src, gen, off) FROM ids")
    }

    /// Nothing waits to be indexed: there is no word index, `match` always reads the lines.
    public func searchIndexBacklog() throws(StoreError) -> Int64 { 0 }

    // MARK: - Reading in pages

    /// The order a scan reads in, and where each page starts.
    private enum Order {
        /// Oldest first by (t, id): plain scans and `limit`.
        case time
        /// Newest first by t, for `tail` (handed over oldest first once collected).
        case newestFirst
        /// By id, after `afterID`: following.
        case stored
    }

    /// Reads the filter's lines page after page, each page starting after the last row of the
    /// one before. Pages are plain `ORDER BY … LIMIT` reads (which ClickHouse answers with a
    /// bounded partial sort on each shard); copies of a line are dropped here: they share
    /// their instant, so in time order a copy is recognised among the lines of the current
    /// instant, and the copy with the smallest id is the one given.
    private func readPages(_ filter: LogFilter, _ check: LineCheck, _ body: (StoredLine) -> Void) throws(StoreError) {
        let order: Order = filter.tail != nil ? .newestFirst : (filter.afterID != nil ? .stored : .time)
        let wanted = filter.tail ?? filter.limit
        if let wanted, wanted <= 0 { return }
        var conditions = [ClickHouseSQL.isIn("node", filter.nodes), ClickHouseSQL.isIn("src", filter.sources)].compactMap { $0 }
        if let since = filter.since { conditions.append("t >= \(since)") }
        if let until = filter.until { conditions.append("t < \(until)") }
        if let afterID = filter.afterID { conditions.append("id > \(afterID)") }
        if let throughID = filter.throughID {
            conditions.append("id <= \(throughID)")
        } else if filter.afterID != nil, let horizon = followHorizon() {
            conditions.append("id <= \(horizon)")
        }
        conditions += check.prefilter
        let orderBy =
            switch order {
            case .time: "t, id"
            case .newestFirst: "t DESC, id DESC"
            case .stored: "id"
            }
        var given = 0
        var collected: [StoredLine] = []  // tail: newest first
        var last: LogLine?
        // The lines of the current instant: for a tail, where each was collected (a copy met
        // later has a smaller id and takes its place); nil for lines not collected.
        var atInstant: [LineIdentity: Int?] = [:]
        // A tail that has its lines reads on to the end of its oldest instant, for copies.
        var finishingInstant: Int64?
        reading: while true {
            var page = conditions
            if let last {
                switch order {
                case .time: page.append("(t > \(last.time) OR (t = \(last.time) AND id > \(last.id)))")
                case .newestFirst: page.append("(t < \(last.time) OR (t = \(last.time) AND id < \(last.id)))")
                case .stored: page.append("id > \(last.id)")
                }
            }
            if let finishingInstant { page.append("t = \(finishingInstant)") }
            let read = try storedLines(
                "SELECT \(LogTables.lineColumns) FROM logs\(page.isEmpty ? "" : " WHERE " + page.joined(separator: " AND ")) "
                    + "ORDER BY \(orderBy) LIMIT \(pageRows)")
            if order == .stored {
                for row in try withoutLaterCopies(read) where check.matches(row.msg) {
                    body(row)
                    given += 1
                    if let wanted, given >= wanted { break reading }
                }
                last = read.last?.line
                if read.count < pageRows { break }
                continue
            }
            for row in read {
                let line = row.line
                if line.time != last?.time { atInstant.removeAll() }
                last = line
                if let place = atInstant[row.identity] {
                    // A copy: in time order the one given came first; newest first, this one
                    // has the smaller id and replaces it.
                    if order == .newestFirst, let index = place { collected[index] = row }
                    continue
                }
                guard finishingInstant == nil, check.matches(line.message) else {
                    atInstant[row.identity] = .some(nil)
                    continue
                }
                if order == .newestFirst {
                    atInstant[row.identity] = collected.count
                    collected.append(row)
                } else {
                    atInstant[row.identity] = .some(nil)
                    body(row)
                }
                given += 1
                if let wanted, given >= wanted {
                    guard order == .newestFirst else { break reading }
                    finishingInstant = line.time
                }
            }
            if read.count < pageRows { break }
        }
        if order == .newestFirst {
            for row in collected.sorted(by: { ($0.t, $0.id) < ($1.t, $1.id) }) { body(row) }
        }
    }

    /// Rows read by id whose line has a copy with a smaller id (stored earlier) are that
    /// copy's, which a follower was given already or will not be given again: left out.
    private func withoutLaterCopies(_ rows: [StoredLine]) throws(StoreError) -> [StoredLine] {
        guard !rows.isEmpty else { return rows }
        // Every copy's id counts, whether or not a merge already removed the later copies
        // from either table: a row is given only when no older id of its line is known.
        var firstID: [LineIdentity: Int64] = [:]
        for condition in IdentityQuery.conditions(rows.map(\.identity)) {
            let sql = "SELECT agent, src, gen, off, min(id) AS id FROM ids WHERE \(condition) GROUP BY agent, src, gen, off"
            for first in try read(IdentityQuery.Row.self, sql) { firstID[first.identity] = first.id }
        }
        return rows.filter { row in firstID[row.identity].map { $0 >= row.id } ?? true }
    }

    // MARK: - Statements

    /// A typo in a node or source name is an error, not an empty answer. Asking for the
    /// wanted names first uses the primary key (node); the full lists are read only to say
    /// what is known.
    func validate(nodes: [String], sources: [String]) throws(StoreError) {
        struct Name: Decodable { var name: String }
        for (column, wanted, error) in [
            ("node", nodes, StoreError.unknownNode), ("src", sources, StoreError.unknownSource),
        ] as [(String, [String], (String, [String]) -> StoreError)] where !wanted.isEmpty {
            let present = Set(try read(Name.self, "SELECT DISTINCT \(column) AS name FROM logs WHERE \(ClickHouseSQL.isIn(column, wanted)!)").map(\.name))
            guard let missing = wanted.first(where: { !present.contains($0) }) else { continue }
            let known = try read(Name.self, "SELECT DISTINCT \(column) AS name FROM logs ORDER BY name").map(\.name)
            throw error(missing, known)
        }
    }

    private func lines(_ sql: String) throws(StoreError) -> [LogLine] {
        try storedLines(sql).map(\.line)
    }

    private func storedLines(_ sql: String) throws(StoreError) -> [StoredLine] {
        try answer(sql) { answer, replica throws(ClickHouseError) in try JSONAnswer.lines(answer, from: replica) }
    }

    private func number(_ sql: String) throws(StoreError) -> Int64 {
        struct Value: Decodable { var value: Int64 }
        return try read(Value.self, "SELECT (\(sql)) AS value").first?.value ?? 0
    }

    /// A statement's rows, with the readers' settings, from the first replica that answers
    /// (of `replicas`, every replica when nil).
    func read<Row: Decodable>(_ type: Row.Type, _ sql: String, on replicas: [String]? = nil) throws(StoreError) -> [Row] {
        try answer(sql, on: replicas) { answer, replica throws(ClickHouseError) in try JSONAnswer.rows(Row.self, answer, from: replica) }
    }

    private func answer<Row>(
        _ sql: String, on replicas: [String]? = nil, _ decode: (ByteBuffer, String) throws(ClickHouseError) -> [Row]
    ) throws(StoreError) -> [Row] {
        do {
            let (answer, replica) = try http.runWaiting(
                sql + " FORMAT JSONEachRow", on: replicas ?? http.servers.replicas, settings: LogTables.readSettings)
            return try decode(answer, replica)
        } catch .refused(_, let code?, _) where ClickHouseError.missingCodes.contains(code) {
            throw .missing(location: http.servers.location)
        } catch {
            throw .unreadable(location: http.servers.location, detail: error.description)
        }
    }
}

/// A row of `LogTables.lineColumns`.
struct StoredLine {
    var id: Int64
    var t: Int64
    var node: String
    var src: String
    var agent: String
    var gen: String
    var off: Int64
    var msg: String
    var fields: String

    var identity: LineIdentity { LineIdentity(agent: agent, source: src, generation: gen, offset: off) }

    var line: LogLine {
        LogLine(
            id: id, time: t, node: node, source: src, message: msg, fields: fields.isEmpty ? nil : fields, stream: identity.stream,
            offset: off)
    }

    var file: File { File(node: node, agent: agent, source: src, generation: gen) }

    /// One agent's file of one source and generation, and the node it is from.
    struct File {
        var node: String
        var agent: String
        var source: String
        var generation: String

        /// The file's lines, by identity (what `ids`' primary key starts with).
        var condition: String {
            "agent = \(ClickHouseSQL.literal(agent)) AND src = \(ClickHouseSQL.literal(source)) AND gen = \(ClickHouseSQL.literal(generation))"
        }
    }
}

/// A filter's `grep` and `match`, checked on each line in Swift, and what ClickHouse can rule
/// out before sending lines.
struct LineCheck {
    let pattern: LinePattern?
    let match: TextMatch?

    init(_ filter: LogFilter) throws(StoreError) {
        pattern = try filter.grep.map { text throws(StoreError) in try LinePattern(text) }
        match = try filter.match.map { text throws(StoreError) in try TextMatch(text) }
    }

    func matches(_ message: String) -> Bool {
        (match?.matches(message) ?? true) && (pattern?.matches(message) ?? true)
    }

    /// For each ASCII word: the message contains it ignoring ASCII case, or holds non-ASCII
    /// text (where `TextMatch` may fold a letter with a diacritic into the word). Necessary
    /// for a match, so leaving out the other lines changes no answer.
    var prefilter: [String] {
        guard let match else { return [] }
        return match.words.filter { $0.utf8.allSatisfy { $0 < 0x80 } }.map { word in
            "(positionCaseInsensitive(msg, \(ClickHouseSQL.literal(word))) > 0 OR lengthUTF8(msg) != length(msg))"
        }
    }
}

extension ClickHouseServers {
    /// How errors name the store: the first replica and the database.
    var location: String { "\(replicas[0]) (database \(database))" }
}

import Foundation
import GRDB
import MusterStore
@testable import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// Queries against a real store written by the collector's own writer.
@Suite struct LogSearchTests {
    let path: String
    let pool: DatabasePool

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-search-\(UUID().uuidString).sqlite").path
        pool = try Schema.openForWriting(path: path, synchronous: .normal)
    }

    func store(node: String, source: String = "webapp", _ lines: [(time: Int64, message: String)]) throws {
        let records = lines.enumerated().map { index, line in
            LogRecord(
                time: line.time, node: node,
                origin: Origin(agent: node, source: source, generation: "g", offset: Int64(index)),
                message: line.message)
        }
        _ = try pool.write { db in try LogWriter.insert([records], into: db) }
    }

    func indexAll() throws {
        _ = try SearchIndex(storePath: path).indexNextChunk(maxRows: 1_000_000)
    }

    func search(_ configure: (inout LogFilter) -> Void) throws -> [LogLine] {
        var filter = LogFilter()
        configure(&filter)
        let search = LogSearch(store: try SQLiteHistoryReader(path: path))
        return try search.lines(filter)
    }

    @Test func linesFromSeveralNodesInterleaveInTimeOrder() throws {
        try store(node: "s1", [(10, "a"), (30, "c"), (50, "e")])
        try store(node: "s2", [(20, "b"), (40, "d")])
        #expect(try search { _ in }.map(\.message) == ["a", "b", "c", "d", "e"])
        #expect(try search { $0.nodes = ["s2"] }.map(\.message) == ["b", "d"])
        #expect(try search { $0.since = 20; $0.until = 50 }.map(\.message) == ["b", "c", "d"])
        #expect(try search { $0.limit = 2 }.map(\.message) == ["a", "b"])
        #expect(try search { $0.tail = 2 }.map(\.message) == ["d", "e"])
    }

    /// A word on many lines with --limit/--tail walks the lines in time order instead of
    /// sorting every indexed candidate; both ways give the same lines.
    @Test func aCommonWordWithALimitGivesTheSameLinesAsTheIndex() throws {
        let count = LineSearch.commonCandidates + 5_000
        try store(node: "s1", (0..<count).map { i in (Int64(i), i % 7 == 0 ? "GET /healthz 200 \(i)" : "GET /healthz/x \(i) healthy") })
        try indexAll()
        let all = try search { $0.match = "get /healthz 200" }
        #expect(all.count == (count + 6) / 7)
        let database = try SQLiteHistoryReader(path: path)
        #expect(try database.read { db in try LineSearch.isCommon(try TextMatch("healthz"), SearchIndex.coverage(db), db) })
        #expect(try database.read { db in try !LineSearch.isCommon(try TextMatch("nothing-here"), SearchIndex.coverage(db), db) })
        #expect(try search { $0.match = "get /healthz 200"; $0.limit = 100 }.map(\.id) == all.prefix(100).map(\.id))
        #expect(try search { $0.match = "get /healthz 200"; $0.tail = 50 }.map(\.id) == all.suffix(50).map(\.id))
        #expect(try search { $0.match = "get /healthz 200"; $0.limit = 10; $0.since = 7_000 }.first?.time == 7_000)
    }

    /// A common word whose lines all come late (or, for --tail, early): the walk gives up after
    /// `walkRows` rows and the index answers the rest, with the same lines.
    @Test func aCommonWordFarFromWhereTheWalkStartsIsFoundThroughTheIndex() throws {
        let quiet = LineSearch.walkRows + 10_000, loud = LineSearch.commonCandidates + 1_000
        try store(node: "s1", (0..<(quiet + loud + quiet)).map { i in
            (Int64(i), i >= quiet && i < quiet + loud ? "late burst \(i)" : "nothing to see \(i)")
        })
        try indexAll()
        let all = try search { $0.match = "burst" }
        #expect(all.count == loud)
        #expect(try search { $0.match = "burst"; $0.limit = 100 }.map(\.id) == all.prefix(100).map(\.id))
        #expect(try search { $0.match = "burst"; $0.tail = 100 }.map(\.id) == all.suffix(100).map(\.id))
        // Some in the walk, the rest through the index.
        let straddling = try search { $0.match = "burst"; $0.since = Int64(quiet + loud - 50); $0.limit = 100 }
        #expect(straddling.count == 50)
    }

    @Test func matchSeesIndexedAndNotYetIndexedRowsAlike() throws {
        try store(node: "s1", [(1, "GET /checkout 500"), (2, "GET /home 200")])
        try indexAll()
        try store(node: "s2", source: "api", [(3, "POST /Checkout 201"), (4, "GET /cart 200")])
        let found = try search { $0.match = "checkout" }
        #expect(found.map(\.message) == ["GET /checkout 500", "POST /Checkout 201"])
        try indexAll()
        #expect(try search { $0.match = "checkout" }.map(\.message) == ["GET /checkout 500", "POST /Checkout 201"])
        #expect(try search { $0.match = "100%" }.isEmpty)
    }

    @Test func matchMeansTheseWordsInThisOrder() throws {
        try store(node: "s1", [(1, "GET /login HTTP/1.1"), (2, "login GET"), (3, "GET /loginpage"), (4, "Café crème OK")])
        try indexAll()
        try store(node: "s1", source: "api", [(5, "get /LOGIN again"), (6, "login, then get")])
        #expect(try search { $0.match = "GET /login" }.map(\.message) == ["GET /login HTTP/1.1", "get /LOGIN again"])
        #expect(try search { $0.match = "cafe CREME" }.map(\.message) == ["Café crème OK"])
        #expect(try search { $0.match = "ok" }.map(\.message) == ["Café crème OK"])
        #expect(throws: QueryError.self) { try search { $0.match = "/ -" } }
    }

    @Test func grepUsesRegularExpressions() throws {
        try store(node: "s1", [(1, "status=200"), (2, "status=503"), (3, "status=504")])
        #expect(try search { $0.grep = "status=50[34]" }.map(\.message) == ["status=503", "status=504"])
        #expect(throws: QueryError.self) { try search { $0.grep = "([" } }
    }

    @Test func unknownNamesAndMissingDatabaseAreErrors() throws {
        try store(node: "s1", [(1, "x")])
        #expect(throws: QueryError.unknownNode("s9", known: ["s1"])) { try search { $0.nodes = ["s9"] } }
        #expect(throws: QueryError.unknownSource("nope", known: ["webapp"])) { try search { $0.sources = ["nope"] } }
        #expect(throws: QueryError.databaseMissing("/nonexistent/muster.sqlite")) {
            try StoreLocation(path: "/nonexistent/muster.sqlite").openHistory()
        }
    }

    @Test func theConnectionCannotWrite() throws {
        try store(node: "s1", [(1, "x")])
        let database = try SQLiteHistoryReader(path: path)
        #expect(throws: QueryError.self) {
            try QueryError.asking { () throws(StoreError) in try database.read { db in try db.execute(sql: "DELETE FROM logs") } }
        }
    }

    @Test func outputFormats() {
        let line = LogLine(id: 1, time: 1_700_000_000_123_456_789, node: "s1", source: "webapp", message: "say \"hi\", ok", fields: nil)
        #expect(OutputFormat.text.render(line, nodeWidth: 3) == "2023-11-14T22:13:20.123456789Z s1  webapp: say \"hi\", ok")
        #expect(
            OutputFormat.json.render(line)
                == #"{"time":"2023-11-14T22:13:20.123456789Z","t":1700000000123456789,"node":"s1","source":"webapp","message":"say \"hi\", ok"}"#)
        #expect(OutputFormat.csv.render(line) == #"2023-11-14T22:13:20.123456789Z,s1,webapp,"say ""hi"", ok""#)
    }
}

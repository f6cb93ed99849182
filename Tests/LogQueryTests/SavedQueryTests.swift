import Foundation
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// `logq run NAME`: query files, their headers and parameters, where they are found.
@Suite struct SavedQueryTests {
    let store: QueryStoreFixture
    let library: QueryLibrary

    init() throws {
        store = try QueryStoreFixture()
        try store.lines("s1", [(0, "x")])
        let folder = store.directory + "/queries"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try """
        -- name: echo
        -- description: Gives back its parameters.
        -- param: at   time            An instant
        -- param: n    int             A number
        -- param: who  text            A name
        -- param: opt  text  optional  Left out, it is NULL
        -- Free text in the header is allowed.
        SELECT :at AS at, :n AS n, :who AS who, :opt AS opt;
        """.write(toFile: folder + "/echo.sql", atomically: true, encoding: .utf8)
        try "SELECT 1;\n".write(toFile: folder + "/headless.sql", atomically: true, encoding: .utf8)
        try "-- name: other\n-- description: Wrong name.\nSELECT 1;\n".write(toFile: folder + "/misnamed.sql", atomically: true, encoding: .utf8)
        library = QueryLibrary(directory: folder)
    }

    func run(_ name: String, _ parameters: [(String, String)] = [], in library: QueryLibrary? = nil) throws -> Table {
        let query = try (library ?? self.library).query(named: name)
        return try store.sql().table(query.statement, parameters: try query.bindings(parameters, now: QueryStoreFixture.at(100)))
    }

    /// The QueryError `body` throws, if it throws one.
    func caught(_ body: () throws -> Any) -> QueryError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? QueryError
        }
    }

    @Test func parametersAreBoundByType() throws {
        let table = try run("echo", [("at", "2026-11-22T10:00:05Z"), ("n", "42"), ("who", "s1")])
        #expect(table.rows == [[.integer(QueryStoreFixture.at(5)), .integer(42), .text("s1"), .null]])
        let relative = try run("echo", [("at", "10s"), ("n", "-1"), ("who", ""), ("opt", "given")])
        #expect(relative.rows == [[.integer(QueryStoreFixture.at(90)), .integer(-1), .text(""), .text("given")]])
    }

    @Test func parameterErrorsNameTheParameter() throws {
        #expect(throws: QueryError.missingParameter(query: "echo", name: "who", description: "A name")) {
            try run("echo", [("at", "10s"), ("n", "1")])
        }
        #expect(throws: QueryError.unknownParameter(query: "echo", name: "nodes", known: ["at", "n", "who", "opt"])) {
            try run("echo", [("at", "10s"), ("n", "1"), ("who", "x"), ("nodes", "s1")])
        }
        let badTime = caught { try run("echo", [("at", "last tuesday"), ("n", "1"), ("who", "x")]) }
        guard case .badTime("last tuesday", _) = badTime else { Issue.record("\(String(describing: badTime))"); return }
        #expect(throws: QueryError.badArgument("--param n wants a whole number, not 'many'")) {
            try run("echo", [("at", "10s"), ("n", "many"), ("who", "x")])
        }
        #expect(throws: QueryError.badArgument("--param n is given twice")) {
            try run("echo", [("at", "10s"), ("n", "1"), ("n", "2"), ("who", "x")])
        }
        #expect(QueryError.missingParameter(query: "members-at", name: "at", description: "The instant").description
            == "query members-at needs --param at=VALUE: The instant")
        #expect(try SavedQuery.parseParameter("at=a=b") == ("at", "a=b"))
        #expect(throws: QueryError.self) { try SavedQuery.parseParameter("at") }
    }

    @Test func unknownQueriesAndFilesWithoutAHeader() throws {
        #expect(throws: QueryError.unknownQuery("nope", known: ["echo", "headless", "misnamed"])) { try run("nope") }
        #expect(throws: QueryError.unknownQuery("../queries/echo", known: ["echo", "headless", "misnamed"])) {
            try run("../queries/echo")
        }
        let headless = caught { try run("headless") }
        guard case .badQueryFile(let path, let detail) = headless else { Issue.record("\(String(describing: headless))"); return }
        #expect(path.hasSuffix("/headless.sql"))
        #expect(detail.hasPrefix("no header"))
        #expect(headless?.exitCode == 65)
        #expect(throws: QueryError.badQueryFile(path: library.directory + "/misnamed.sql", detail: "its header says '-- name: other'; the file must be other.sql")) {
            try run("misnamed")
        }
        #expect(throws: QueryError.self) {
            try SavedQuery(text: "-- name: x\n-- description: d\n-- param: at date The instant\n", name: "x", path: "x.sql")
        }
    }

    @Test func listShowsEveryQueryWithItsParameters() throws {
        let table = library.list()
        #expect(table.columns == ["name", "description", "params"])
        #expect(table.rows[0] == [.text("echo"), .text("Gives back its parameters."), .text("at (time), n (int), who (text), opt (text, optional)")])
        #expect(table.rows.map { $0[0] } == [.text("echo"), .text("headless"), .text("misnamed")])
        guard case .text(let broken) = table.rows[1][1] else { Issue.record("no description"); return }
        #expect(broken.hasPrefix("(cannot be used: "))
    }

    @Test func theQueriesFolderIsFoundInOrder() throws {
        let root = store.directory + "/tree"
        let fileManager = FileManager.default
        for folder in ["explicit", "env", "cwd/queries", "install/bin", "install/share/muster/queries", "repo/.build/debug", "repo/queries"] {
            try fileManager.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        _ = fileManager.createFile(atPath: root + "/repo/Package.swift", contents: Data())
        func locate(_ explicit: String? = nil, env: String? = nil, cwd: String = "/", exe: String?) throws -> String {
            try QueryLibrary.locate(
                explicit: explicit, environment: env.map { ["MUSTER_QUERIES": $0] } ?? [:], currentDirectory: cwd, executable: exe
            ).directory
        }
        #expect(try locate(root + "/explicit", env: root + "/env", cwd: root + "/cwd", exe: nil) == root + "/explicit")
        #expect(try locate(env: root + "/env", cwd: root + "/cwd", exe: nil) == root + "/env")
        #expect(try locate(cwd: root + "/cwd", exe: root + "/install/bin/logq") == root + "/cwd/queries")
        #expect(try locate(exe: root + "/install/bin/logq") == root + "/install/share/muster/queries")
        #expect(try locate(exe: root + "/repo/.build/debug/logq") == root + "/repo/queries")
        #expect(throws: QueryError.self) { try locate(exe: root + "/explicit/logq") }
        #expect(throws: QueryError.self) { try locate(root + "/missing", exe: nil) }
    }
}

/// Every query shipped in `queries/` runs against a store built here, with the expected rows.
@Suite struct ShippedQueryTests {
    let store: QueryStoreFixture
    let library = QueryStoreFixture.shippedQueries

    init() throws {
        store = try QueryStoreFixture()
        try store.membership([
            (0, .memberJoin, "s1"), (1, .memberJoin, "s2"), (2, .memberJoin, "s3"), (3, .memberLeave, "s3"), (4, .memberJoin, "s3"),
            (5, .memberLeave, "s3"), (6, .memberFailed, "s2"),
        ])
        try store.config(0, version: 1, method: "file", milliseconds: 900, servers: [])
        try store.config(1, version: 2, method: "reload", milliseconds: 150, servers: ["s1", "s2"])
        try store.config(2, version: 3, method: "runtime", milliseconds: 80, servers: ["s1", "s2", "s3"])
        try store.request(10, offset: 0, server: "s1", status: 200, ta: 5)
        try store.request(11, offset: 1, server: "s1", status: 503, ta: 40)
        try store.request(12, offset: 2, server: "s2", status: 200, ta: 120, path: "/slow")
        try store.request(13, offset: 3, server: "s2", status: 404, ta: 7, path: "/error")
        try store.request(14, offset: 4, server: "s2", status: 302, ta: 3)
        try store.request(15, offset: 5, server: "a1", status: 500, ta: 9, backend: "api")
        try store.lines("s1", [(10, "boom: fatal error"), (20, "GET / 200 0.1ms"), (70, "GET /x 500 1.2ms")])
        try store.lines("ha", source: JournalEntry.sourceID, [(30, #"{"event":"member-failed","member":{"name":"s2"}}"#)])
    }

    func run(_ name: String, _ parameters: [(String, String)] = []) throws -> Table {
        let query = try library.query(named: name)
        return try store.sql().table(query.statement, parameters: try query.bindings(parameters, now: QueryStoreFixture.at(100)))
    }

    func time(_ seconds: Int64) -> Table.Value { .text(Timestamp.format(QueryStoreFixture.at(seconds))) }

    @Test func theExpectedQueriesAreShipped() {
        #expect(library.names() == [
            "errors-per-minute", "flapping", "http-status", "lines-per-node", "members-at", "membership-timeline", "reloads",
            "search-index-lag", "slowest-requests",
        ])
        for row in library.list().rows {
            guard case .text(let description) = row[1] else { continue }
            #expect(!description.hasPrefix("(cannot be used"), "\(row[0]): \(description)")
        }
    }

    @Test func membersAt() throws {
        let table = try run("members-at", [("at", Timestamp.format(QueryStoreFixture.at(3)))])
        #expect(table.columns == ["member", "status", "address", "role", "since", "last_change", "observer"])
        #expect(table.rows.map { [$0[0], $0[1], $0[4]] } == [
            [.text("s1"), .text("alive"), time(0)], [.text("s2"), .text("alive"), time(1)], [.text("s3"), .text("left"), time(3)],
        ])
        #expect(try run("members-at", [("at", Timestamp.format(QueryStoreFixture.at(6))), ("node", "s2")]).rows.map { $0[1] } == [.text("failed")])
        #expect(try run("members-at", [("at", "@1")]).rows.isEmpty, "nobody before the first join")
    }

    @Test func membershipTimeline() throws {
        let all = try run("membership-timeline")
        #expect(all.rows.map { [$0[1], $0[2]] } == [
            [.text("s1"), .text("joined")], [.text("s2"), .text("joined")], [.text("s3"), .text("joined")], [.text("s3"), .text("left")],
            [.text("s3"), .text("joined")], [.text("s3"), .text("left")], [.text("s2"), .text("failed")],
        ])
        #expect(all.rows[0][0] == time(0))
        let window = try run("membership-timeline", [("since", Timestamp.format(QueryStoreFixture.at(2))), ("until", Timestamp.format(QueryStoreFixture.at(4))), ("node", "s3")])
        #expect(window.rows.map { $0[2] } == [.text("joined"), .text("left")])
    }

    @Test func flapping() throws {
        #expect(try run("flapping").rows == [[.text("s3"), .integer(4), .integer(2), .integer(2), .integer(0), time(2), time(5)]])
        #expect(try run("flapping", [("more_than", "1")]).rows.map { $0[0] } == [.text("s3"), .text("s2")])
        #expect(try run("flapping", [("since", Timestamp.format(QueryStoreFixture.at(4)))]).rows.isEmpty)
    }

    @Test func reloads() throws {
        let table = try run("reloads")
        #expect(table.rows.map { [$0[2], $0[3], $0[5]] } == [
            [.integer(1), .text("file"), .integer(900)], [.integer(2), .text("reload"), .integer(150)], [.integer(3), .text("runtime"), .integer(80)],
        ])
        #expect(try run("reloads", [("method", "reload")]).rows.map { $0[0] } == [time(1)])
    }

    @Test func httpStatusMixPerBackendAndServer() throws {
        let table = try run("http-status")
        #expect(table.columns == ["backend", "server", "requests", "2xx", "3xx", "4xx", "5xx", "other", "pct_5xx"])
        #expect(table.rows == [
            [.text("api"), .text("a1"), .integer(1), .integer(0), .integer(0), .integer(0), .integer(1), .integer(0), .real(100)],
            [.text("web"), .text("s1"), .integer(2), .integer(1), .integer(0), .integer(0), .integer(1), .integer(0), .real(50)],
            [.text("web"), .text("s2"), .integer(3), .integer(1), .integer(1), .integer(1), .integer(0), .integer(0), .real(0)],
        ])
        #expect(try run("http-status", [("backend", "api")]).rows.count == 1)
        #expect(try run("http-status", [("until", Timestamp.format(QueryStoreFixture.at(12)))]).rows.map { $0[2] } == [.integer(2)])
    }

    @Test func slowestRequests() throws {
        let table = try run("slowest-requests", [("limit", "2")])
        #expect(table.rows.map { [$0[1], $0[3], $0[5], $0[6], $0[7]] } == [
            [.text("ha"), .text("s2"), .text("/slow"), .integer(200), .integer(120)],
            [.text("ha"), .text("s1"), .text("/"), .integer(503), .integer(40)],
        ])
        #expect(table.rows[0][0] == time(12))
        #expect(try run("slowest-requests").rows.count == 6)
    }

    @Test func errorsPerMinute() throws {
        let table = try run("errors-per-minute")
        #expect(table.rows == [
            [time(0), .text("ha"), .integer(2)], [time(0), .text("s1"), .integer(1)], [time(60), .text("s1"), .integer(1)],
        ])
        #expect(try run("errors-per-minute", [("node", "s1"), ("since", Timestamp.format(QueryStoreFixture.at(60)))]).rows.count == 1)
    }

    /// `logq hist --errors` and the saved query count the same lines.
    @Test func histogramOfErrorsAgreesWithTheQuery() throws {
        let histogram = try Histogram.build(store: try store.reader(), interval: 60 * Timestamp.nanosPerSecond, since: nil, until: nil, errorsOnly: true)
        let nonZero = histogram.table().rows.filter { $0[2] != .integer(0) }
        #expect(nonZero == (try run("errors-per-minute")).rows)
    }

    @Test func linesPerNodeAndIndexLag() throws {
        let lines = try run("lines-per-node")
        #expect(lines.rows.map { [$0[0], $0[1], $0[2]] } == [
            [.text("ha"), .text("events"), .integer(1)], [.text("ha"), .text("haproxy"), .integer(6)], [.text("s1"), .text("webapp"), .integer(3)],
        ])
        #expect(try run("search-index-lag").rows.first?.first == .integer(10))
        try store.indexAll()
        #expect(try run("search-index-lag").rows.first?.first == .integer(0))
    }
}

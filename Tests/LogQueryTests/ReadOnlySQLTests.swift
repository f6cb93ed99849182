import Foundation
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// `logq sql`: one statement, read-only, rendered in the three formats.
@Suite struct ReadOnlySQLTests {
    let store: QueryStoreFixture

    init() throws {
        store = try QueryStoreFixture()
        try store.lines("s1", [(0, "GET / 200"), (1, "GET /x 500 1.2ms")])
        try store.lines("s2", [(2, "hello, \"world\"")])
    }

    @Test func selectInEachFormat() throws {
        let table = try store.sql().table(
            "SELECT s.node, count(*) AS lines, rfc3339(min(l.t)) AS first FROM logs l JOIN streams s ON s.id = l.stream GROUP BY s.node ORDER BY s.node")
        #expect(table.render(.text) == [
            "NODE  LINES  FIRST",
            "s1    2      2026-11-22T10:00:00.000000000Z",
            "s2    1      2026-11-22T10:00:02.000000000Z",
        ])
        #expect(table.render(.json) == [
            #"{"node":"s1","lines":2,"first":"2026-11-22T10:00:00.000000000Z"}"#,
            #"{"node":"s2","lines":1,"first":"2026-11-22T10:00:02.000000000Z"}"#,
        ])
        #expect(table.render(.csv) == ["node,lines,first", "s1,2,2026-11-22T10:00:00.000000000Z", "s2,1,2026-11-22T10:00:02.000000000Z"])
        // rfc3339() prints times that parse back.
        #expect(try TimeExpression.parse("2026-11-22T10:00:02.000000000Z") == QueryStoreFixture.at(2))
    }

    @Test func valuesKeepTheirTypes() throws {
        let table = try store.sql().table("SELECT 7 AS i, 1.5 AS r, NULL AS n, 'a,\"b\"' AS t, x'00ff10' AS b")
        #expect(table.rows == [[.integer(7), .real(1.5), .null, .text("a,\"b\""), .text("00ff10")]])
        #expect(table.render(.json) == [#"{"i":7,"r":1.5,"n":null,"t":"a,\"b\"","b":"00ff10"}"#])
        #expect(table.render(.csv)[1] == #"7,1.5,,"a,""b""",00ff10"#)
        let message = try store.sql().table("SELECT msg FROM logs WHERE msg LIKE 'hello%'")
        #expect(message.render(.json) == [#"{"msg":"hello, \"world\""}"#])
    }

    @Test func everyKindOfWriteIsRefused() throws {
        let sql = try store.sql()
        let writes = [
            "INSERT INTO meta(key, value) VALUES ('x', 1)", "UPDATE logs SET msg = 'x'", "DELETE FROM logs", "DROP TABLE logs",
            "CREATE TABLE x(a)", "CREATE INDEX i ON logs(msg)", "ALTER TABLE logs ADD COLUMN z", "CREATE TEMP TABLE t(a)",
            "ATTACH '\(store.directory)/other.sqlite' AS other", "DETACH main", "BEGIN", "SAVEPOINT a", "PRAGMA query_only = OFF",
            "PRAGMA query_only(0)", "PRAGMA user_version = 3", "PRAGMA journal_mode = DELETE", "VACUUM",
            "VACUUM INTO '\(store.directory)/copy.sqlite'", "REINDEX", "ANALYZE",
        ]
        for statement in writes {
            do {
                _ = try sql.table(statement)
                Issue.record("accepted: \(statement)")
            } catch {
                guard case .readOnly = error else { Issue.record("\(statement): \(error)"); continue }
                #expect(error.description.hasPrefix("the database is opened read-only: "), "\(statement)")
                #expect(!error.description.contains("\n"))
                #expect(error.exitCode == 65)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: store.directory + "/copy.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: store.directory + "/other.sqlite"))
        #expect(try sql.table("SELECT count(*) FROM logs").rows == [[.integer(3)]], "nothing changed")
        #expect(throws: QueryError.readOnly("INSERT into meta is not allowed (logq sql runs one SELECT, WITH, VALUES, EXPLAIN or reading PRAGMA)")) {
            try sql.table("INSERT INTO meta(key, value) VALUES ('x', 1)")
        }
    }

    @Test func readingStatementsAreAllowed() throws {
        try store.indexAll()
        let sql = try store.sql()
        #expect(try sql.table("WITH x AS (SELECT 2 AS a) SELECT a FROM x").rows == [[.integer(2)]])
        #expect(try sql.table("VALUES (1, 'a')").rows == [[.integer(1), .text("a")]])
        #expect(try sql.table("SELECT count(*) FROM search.logs_fts_0 WHERE logs_fts_0 MATCH 'GET'").rows == [[.integer(2)]])
        #expect(try sql.table("PRAGMA table_info(logs)").rows.count == 6)
        #expect(try sql.table("SELECT name FROM pragma_table_info('streams') WHERE pk = 1").rows == [[.text("id")]])
        #expect(try sql.table("PRAGMA page_count").rows.count == 1)
        #expect(try sql.table("EXPLAIN QUERY PLAN SELECT * FROM logs WHERE t > 5").rows.count == 1)
        #expect(try sql.table("SELECT 1; -- a comment after the statement").rows == [[.integer(1)]])
        #expect(try sql.table("SELECT :a AS a", parameters: ["a": .text("x")]).rows == [[.text("x")]])
    }

    @Test func badSQLNamesSQLitesMessage() throws {
        let sql = try store.sql()
        #expect(throws: QueryError.badSQL("near \"SELEC\": syntax error")) { try sql.table("SELEC 1") }
        #expect(throws: QueryError.badSQL("no such table: nosuch")) { try sql.table("SELECT * FROM nosuch") }
        #expect(throws: QueryError.badSQL("no SQL statement given")) { try sql.table("  ") }
        #expect(throws: QueryError.badSQL("no value for parameter :at")) { try sql.table("SELECT :at") }
        #expect(QueryError.badSQL("a\nb").description == "SQL error: a b")
        #expect(QueryError.badSQL("x").exitCode == 65)
    }

    @Test func oneStatementOnly() throws {
        let sql = try store.sql()
        for statements in ["SELECT 1; SELECT 2", "SELECT 1; DROP TABLE logs", "SELECT 1; nonsense"] {
            #expect(throws: QueryError.badSQL("give one statement at a time (found more after the first ';')"), "\(statements)") {
                try sql.table(statements)
            }
        }
    }

    @Test func largeResultsComeInChunks() throws {
        var chunks: [Table] = []
        try store.sql().query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 25) SELECT x FROM c", chunkRows: 10) {
            chunks.append($0)
        }
        #expect(chunks.map(\.rows.count) == [10, 10, 5])
        var empty: [Table] = []
        try store.sql().query("SELECT id FROM logs WHERE 0", chunkRows: 10) { empty.append($0) }
        #expect(empty == [Table(columns: ["id"])], "an empty result still has its columns")
    }

    @Test func refusesWhatIsNotAStore() throws {
        #expect(throws: QueryError.databaseMissing("/nonexistent/x.sqlite")) { try StoreLocation(path: "/nonexistent/x.sqlite").openSQLConsole() }
        let other = store.directory + "/plain.sqlite"
        _ = FileManager.default.createFile(atPath: other, contents: Data())
        #expect(throws: QueryError.self) { try StoreLocation(path: other).openSQLConsole() }
    }
}

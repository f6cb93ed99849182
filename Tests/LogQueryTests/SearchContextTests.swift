import Foundation
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// `logq logs --context N` and the notes about searches the index cannot help with.
@Suite struct SearchContextTests {
    let store: QueryStoreFixture

    init() throws {
        store = try QueryStoreFixture()
        try store.lines("s1", (0..<10).map { (Int64($0), "a\($0)" + ([1, 6, 8].contains($0) ? " hit" : "")) })
        try store.lines("s2", [(5, "b0"), (6, "b1 hit"), (7, "b2")])
    }

    func context(_ lines: Int, nodes: [String] = []) throws -> [String] {
        var filter = LogFilter()
        filter.grep = "hit"
        filter.nodes = nodes
        return try LogSearch(store: try store.reader()).linesWithContext(filter, context: lines).map { item in
            switch item {
            case .separator: "--"
            case .line(let line, let match): String(line.message.prefix(2)) + (match ? "*" : "")
            }
        }
    }

    @Test func groupsLikeGrepC() throws {
        #expect(try context(1) == ["a0", "a1*", "a2", "--", "a5", "a6*", "a7", "--", "b0", "b1*", "b2", "--", "a8*", "a9"])
        #expect(try context(0) == ["a1*", "a6*", "b1*", "a8*"])
    }

    @Test func overlappingAndTouchingGroupsMergeAndNoLineRepeats() throws {
        #expect(try context(2, nodes: ["s1"]) == ["a0", "a1*", "a2", "a3", "a4", "a5", "a6*", "a7", "a8*", "a9"])
        #expect(try context(20, nodes: ["s2"]) == ["b0", "b1*", "b2"], "context stays in the hit's own file")
    }

    @Test func contextLinesAreMarked() throws {
        let line = LogLine(id: 1, time: QueryStoreFixture.at(0), node: "s1", source: "webapp", message: "a0", fields: nil)
        #expect(OutputFormat.text.render(line, context: true) == "2026-11-22T10:00:00.000000000Z s1 webapp- a0")
        #expect(OutputFormat.text.render(line) == "2026-11-22T10:00:00.000000000Z s1 webapp: a0")
        #expect(OutputFormat.json.render(line, context: true).hasSuffix(#""message":"a0","context":true}"#))
    }

    @Test func notesSayWhenEveryRowIsRead() throws {
        let search = LogSearch(store: try store.reader())
        var grep = LogFilter()
        grep.grep = "hit"
        #expect(try search.notes(grep).count == 1)
        #expect(try search.notes(grep)[0].hasPrefix("--grep cannot use the search index"))
        var match = LogFilter()
        match.match = "hit"
        #expect(try search.notes(match).isEmpty)
        #expect(try search.notes(match, lagWorthSaying: 5) == ["the search index is about 13 rows behind ingest: --match reads those rows one by one"])
        try store.indexAll()
        #expect(try search.notes(match, lagWorthSaying: 1).isEmpty)
        match.grep = "hit"
        #expect(try search.notes(match).isEmpty, "--match narrows --grep through the index")
        #expect(try search.notes(LogFilter()).isEmpty)
    }
}

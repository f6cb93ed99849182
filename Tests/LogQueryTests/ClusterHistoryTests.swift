import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

@Suite struct ClusterHistoryTests {
    let path: String
    let history: ClusterHistory

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-history-\(UUID().uuidString).sqlite").path
        let pool = try Schema.openForWriting(path: path, synchronous: .normal)
        func event(_ kind: JournalEvent, _ name: String, _ t: Int64) -> JournalEntry {
            JournalEntry(t: t, event: kind, observer: "ha", member: Member(name: name, address: "10.0.0.\(name.dropFirst())", role: "web", tags: ["role": "web"]))
        }
        _ = try pool.write { db in
            try ClusterLedger().apply(
                [event(.memberJoin, "s1", 1_000), event(.memberJoin, "s2", 2_000), event(.memberLeave, "s1", 3_000)], in: db)
        }
        history = ClusterHistory(store: try SQLiteHistoryReader(path: path))
    }

    @Test func membersAtAnInstantInEveryFormat() throws {
        let table = try history.members(at: 2_500)
        #expect(table.render(.text) == [
            "NAME  ADDRESS   ROLE  STATUS  SINCE                           TAGS",
            "s1    10.0.0.1  web   alive   1970-01-01T00:00:00.000001000Z  {\"role\":\"web\"}",
            "s2    10.0.0.2  web   alive   1970-01-01T00:00:00.000002000Z  {\"role\":\"web\"}",
        ])
        #expect(table.render(.json)[0]
            == #"{"name":"s1","address":"10.0.0.1","role":"web","status":"alive","since":"1970-01-01T00:00:00.000001000Z","tags":{"role":"web"}}"#)
        #expect(table.render(.csv)[1] == #"s1,10.0.0.1,web,alive,1970-01-01T00:00:00.000001000Z,"{""role"":""web""}""#)
        #expect(try history.members(at: 3_000).rows.map { $0[3] } == [.text("left"), .text("alive")])
    }

    @Test func printedTimesParseBackToTheSameInstant() throws {
        let since = try history.members(at: 2_500).rows[1][4]
        guard case .text(let printed) = since else { Issue.record("since is not text"); return }
        #expect(try TimeExpression.parse(printed) == 2_000)
        #expect(try history.members(at: try TimeExpression.parse(printed)).rows.count == 2)
    }

    @Test func timelineIsInOrderAndBounded() throws {
        #expect(try history.timeline(since: nil, until: nil).rows.map { [$0[1], $0[2]] } == [
            [.text("s1"), .text("joined")], [.text("s2"), .text("joined")], [.text("s1"), .text("left")],
        ])
        #expect(try history.timeline(since: 2_000, until: 3_000).rows.count == 1)
        #expect(try history.timeline(since: nil, until: nil, members: ["s1"]).rows.count == 2)
    }
}

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

/// `logq nodes` (and each `nodes.log` of an export): a node that left or failed after its last
/// inventory cannot report again, so its services read as down or unknown, not as they were.
@Suite struct NodeServicesTests {
    @Test func aNodeGoneSinceItsLastReportShowsItsServicesDownOrUnknown() throws {
        let store = try QueryStoreFixture()
        let at = QueryStoreFixture.at
        func inventory(_ node: String, at seconds: Int64, up: Bool = true) -> JournalEntry {
            JournalEntry(
                t: at(seconds), event: .inventory, observer: node,
                inventory: Inventory(
                    node: node, hostname: node, addresses: ["10.0.0.\(node.dropFirst())"], role: "web", tags: [:], image: "muster/webapp:1",
                    agentVersion: "test",
                    services: [ServiceState(name: "demo-webapp", up: up, pid: 7, since: nil, wantedUp: true),
                               ServiceState(name: "serf", up: true, pid: 8, since: nil, wantedUp: true)]))
        }
        try store.membership([(0, .memberJoin, "s1"), (0, .memberJoin, "s2"), (0, .memberJoin, "s3")])
        _ = try store.pool.write { db in
            try ClusterLedger().apply([inventory("s1", at: 5), inventory("s2", at: 5), inventory("s3", at: 5)], in: db)
        }
        try store.membership([(20, .memberLeave, "s1"), (30, .memberFailed, "s2"), (40, .memberLeave, "s3")])
        // s3 stops gracefully: it leaves Serf first and reports once more on its way down.
        _ = try store.pool.write { db in try ClusterLedger().apply([inventory("s3", at: 45, up: false)], in: db) }

        let history = ClusterHistory(store: try store.reader())
        let services = { (seconds: Int64) throws -> [String] in
            try history.nodes(at: at(seconds)).rows.map { row in
                if case .text(let text) = row[5] { return text }
                return "-"
            }
        }
        let live = "2/2 up (demo-webapp, serf)"
        #expect(try services(10) == [live, live, live])
        #expect(try services(50) == [
            "down (left at \(Timestamp.format(at(20))); last report \(live) at \(Timestamp.format(at(5))))",
            "unknown (failed at \(Timestamp.format(at(30))); last report \(live) at \(Timestamp.format(at(5))))",
            "down (left at \(Timestamp.format(at(40))); last report 1/2 up (demo-webapp down, serf) at \(Timestamp.format(at(45))))",
        ])
        // Back in the cluster, it is what it reports again.
        try store.membership([(60, .memberJoin, "s3")])
        #expect(try services(70)[2] == "1/2 up (demo-webapp down, serf)")
    }
}

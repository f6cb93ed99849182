import Foundation
import GRDB
import MusterWire
import Testing

@testable import MusterStore
@testable import MusterStoreSQLite

/// The canonical membership derived from several observers' journals, in a real SQLite file.
@Suite struct ClusterLedgerTests {
    let pool: DatabasePool
    let ledger = ClusterLedger(snapshotSettle: .seconds(10))
    static let second: Int64 = 1_000_000_000

    init() throws {
        pool = try temporaryStore("ledger").pool
    }

    func web(_ name: String, _ address: String, status: MemberStatus? = nil) -> Member {
        Member(name: name, address: address, role: "web", tags: ["role": "web"], status: status)
    }

    func event(_ kind: JournalEvent, _ member: Member, at seconds: Int64, by observer: String = "ha") -> JournalEntry {
        JournalEntry(t: seconds * Self.second, event: kind, observer: observer, member: member)
    }

    func snapshot(_ members: [Member], at seconds: Int64, by observer: String = "ha") -> JournalEntry {
        JournalEntry(t: seconds * Self.second, event: .snapshot, observer: observer, members: members)
    }

    @discardableResult
    func apply(_ entries: JournalEntry...) throws -> Int {
        try pool.write { db in try ledger.apply(entries, in: db) }
    }

    func statuses(at seconds: Int64) throws -> [String: MemberStatus] {
        let members = try pool.read { db in try ClusterLedger.members(at: seconds * Self.second, in: db) }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.member, $0.status) })
    }

    func changes() throws -> [String] {
        try pool.read { db in
            try MembershipChange.fetchAll(db, sql: "SELECT \(MembershipChange.columns) FROM membership ORDER BY t, id")
                .map { "\($0.member) \($0.change.rawValue)" }
        }
    }

    @Test func everyObserverReportingAJoinMakesOneChange() throws {
        #expect(try apply(
            event(.memberJoin, web("s1", "10.0.0.10"), at: 100, by: "ha"),
            event(.memberJoin, web("s1", "10.0.0.10"), at: 100, by: "s2"),
            event(.memberJoin, web("s1", "10.0.0.10"), at: 101, by: "s3")) == 1)
        #expect(try changes() == ["s1 joined"])
    }

    /// An observer that missed s1's graceful leave reports it failed, then left: still one leave.
    @Test func aMemberThatLeftDoesNotFailAfterwards() throws {
        _ = try apply(
            event(.memberJoin, web("s1", "10.0.0.10"), at: 100),
            event(.memberLeave, web("s1", "10.0.0.10"), at: 200, by: "ha"),
            event(.memberFailed, web("s1", "10.0.0.10"), at: 203, by: "s3"),
            event(.memberLeave, web("s1", "10.0.0.10"), at: 205, by: "s3"))
        #expect(try changes() == ["s1 joined", "s1 left"])
        // Only a join brings it back, and then it can fail.
        _ = try apply(event(.memberJoin, web("s1", "10.0.0.10"), at: 300), event(.memberFailed, web("s1", "10.0.0.10"), at: 400))
        #expect(try changes() == ["s1 joined", "s1 left", "s1 joined", "s1 failed"])
    }

    @Test func timeTravelAnswersForEveryInstant() throws {
        try apply(
            event(.memberJoin, web("s1", "10.0.0.10"), at: 100), event(.memberJoin, web("s2", "10.0.0.11"), at: 110),
            event(.memberLeave, web("s1", "10.0.0.10"), at: 120), event(.memberFailed, web("s2", "10.0.0.11"), at: 130),
            event(.memberJoin, web("s2", "10.0.0.11"), at: 140))
        #expect(try statuses(at: 99) == [:])
        #expect(try statuses(at: 105) == ["s1": .alive])
        #expect(try statuses(at: 115) == ["s1": .alive, "s2": .alive])
        #expect(try statuses(at: 125) == ["s1": .left, "s2": .alive])
        #expect(try statuses(at: 135) == ["s1": .left, "s2": .failed])
        #expect(try statuses(at: 145) == ["s1": .left, "s2": .alive])
        #expect(try changes() == ["s1 joined", "s2 joined", "s1 left", "s2 failed", "s2 joined"])
    }

    @Test func aLateReportLandsAtItsOwnInstantWithoutUndoingLaterChanges() throws {
        try apply(event(.memberJoin, web("s1", "10.0.0.10"), at: 100), event(.memberFailed, web("s1", "10.0.0.10"), at: 130))
        // s3 reports the join late (it joined the cluster later and heard of s1 then).
        try apply(event(.memberJoin, web("s1", "10.0.0.10"), at: 90, by: "s3"))
        #expect(try statuses(at: 95) == ["s1": .alive])
        #expect(try statuses(at: 135) == ["s1": .failed])
    }

    @Test func theSameChangeReportedEarlierByASlowerShipperIsOneChangeAtTheEarlierInstant() throws {
        try apply(event(.memberJoin, web("s2", "10.0.0.11"), at: 100))
        try apply(event(.memberFailed, web("s2", "10.0.0.11"), at: 130, by: "ha"))
        #expect(try apply(event(.memberFailed, web("s2", "10.0.0.11"), at: 128, by: "s3")) == 0)
        #expect(try changes() == ["s2 joined", "s2 failed"])
        let failed = try pool.read { db in try ClusterLedger.state(of: "s2", at: 129 * Self.second, in: db) }
        #expect(failed?.status == .failed)
        #expect(failed?.observer == "s3")
    }

    @Test func aSnapshotRepairsAMissedEventButNotAnObserverThatIsMerelySlow() throws {
        try apply(event(.memberJoin, web("s1", "10.0.0.10"), at: 100), event(.memberJoin, web("s2", "10.0.0.11"), at: 100))
        // ha saw s2 fail at 130; s3 still lists it alive at 132: failure detection lag, ignored.
        try apply(event(.memberFailed, web("s2", "10.0.0.11"), at: 130))
        #expect(try apply(snapshot([web("s2", "10.0.0.11", status: .alive)], at: 132, by: "s3")) == 0)
        #expect(try statuses(at: 133)["s2"] == .failed)
        // s1 left but every handler call was lost: the snapshot says so, and the view follows.
        #expect(try apply(snapshot([web("s1", "10.0.0.10", status: .left), web("s2", "10.0.0.11", status: .failed)], at: 150)) == 1)
        #expect(try statuses(at: 151) == ["s1": .left, "s2": .failed])
        let last = try pool.read { db in try ClusterLedger.state(of: "s1", at: 151 * Self.second, in: db) }
        #expect(last?.cause == "snapshot")
        // A member only snapshots know of is taken in.
        try apply(snapshot([web("s9", "10.0.0.19", status: .alive)], at: 160))
        #expect(try statuses(at: 161)["s9"] == .alive)
    }

    @Test func sameNameAtANewAddressAndANewNameAtAnOldAddressAreExplicit() throws {
        try apply(event(.memberJoin, web("s1", "10.0.0.10"), at: 100))
        try apply(event(.memberJoin, web("s1", "10.0.0.12"), at: 110))
        try apply(event(.memberJoin, web("s7", "10.0.0.12"), at: 120))
        #expect(try changes() == ["s1 joined", "s1 readdressed", "s1 replaced", "s7 joined"])
        let s1 = try pool.read { db in try ClusterLedger.state(of: "s1", at: 121 * Self.second, in: db) }
        #expect(s1?.status == .replaced)
        #expect(s1?.cause == "address taken by s7")
    }

    @Test func reapedMembersDisappearAndRepeatedReportsOfThemAreIgnored() throws {
        try apply(event(.memberJoin, web("s1", "10.0.0.10"), at: 100), event(.memberLeave, web("s1", "10.0.0.10"), at: 110))
        try apply(event(.memberReap, web("s1", "10.0.0.10"), at: 120), event(.memberReap, web("s1", "10.0.0.10"), at: 121, by: "s2"))
        #expect(try statuses(at: 125) == [:])
        #expect(try changes() == ["s1 joined", "s1 left", "s1 reaped"])
        // Never seen, then reaped: nothing to record.
        #expect(try apply(event(.memberReap, web("s5", "10.0.0.15"), at: 130)) == 0)
    }

    @Test func everyChangeIsOnTheStreamInOrderWithUserEventsAndInventory() throws {
        let inventory = Inventory(
            node: "s1", hostname: "h", addresses: ["10.0.0.10"], role: "web", tags: [:], image: nil, agentVersion: "t",
            services: [ServiceState(name: "serf", up: true, pid: 10, since: 5, wantedUp: true)])
        try apply(
            event(.memberJoin, web("s1", "10.0.0.10"), at: 100),
            JournalEntry(t: 101 * Self.second, event: .user, observer: "s1", user: UserEvent(name: "deploy", payload: "v2", ltime: 3)),
            JournalEntry(t: 102 * Self.second, event: .inventory, observer: "s1", inventory: inventory),
            JournalEntry(t: 103 * Self.second, event: .inventory, observer: "s1", inventory: inventory))
        let kinds = try pool.read { db in try String.fetchAll(db, sql: "SELECT kind FROM events ORDER BY id") }
        #expect(kinds == ["membership", "user", "inventory"])
        let user = try pool.read { db in try String.fetchOne(db, sql: "SELECT body FROM events WHERE kind = 'user'") }
        #expect(user?.contains(#""payload":"v2""#) == true)
    }
}

extension ClusterLedgerTests {
    /// Each event's body is its kind's typed content, stamped with the event's time: what a
    /// consumer decodes is what the ledger meant (the exact JSON is pinned in MusterWireTests).
    @Test func everyStreamBodyIsItsKindsTypedContent() throws {
        let tags = ["role": "web", "Zone": "b", "x10": "y", "x9": "z"]
        let s1 = Member(name: "s1", address: "10.0.0.10", role: "web", tags: tags)
        let inventory = Inventory(
            node: "s1", hostname: "h", addresses: ["10.0.0.10"], role: "web", tags: tags, image: nil, agentVersion: "t",
            services: [ServiceState(name: "serf", up: true, pid: 10, since: 5, wantedUp: true)])
        let config = ConfigApply(
            version: 3, sha256: "abc", text: "global\n", diff: "+x", trigger: ["s1 joined"], method: "runtime", durationMilliseconds: 12,
            outcome: .appliedWithRejections, message: "member x refused", servers: ["s1"])
        let user = UserEvent(name: "deploy", payload: "v2", ltime: 3)
        try apply(
            event(.memberJoin, s1, at: 100),
            event(.memberFailed, s1, at: 101, by: "s2"),
            JournalEntry(t: 102 * Self.second, event: .user, observer: "s1", user: user),
            JournalEntry(t: 103 * Self.second, event: .query, observer: "s1", user: UserEvent(name: "q", payload: "")),
            JournalEntry(t: 104 * Self.second, event: .inventory, observer: "s1", inventory: inventory),
            JournalEntry(t: 105 * Self.second, event: .config, observer: "ha", config: config))
        _ = try pool.write { db in try Mark.record(name: "task-2", note: "deploy", at: 106 * Self.second, in: db) }

        func stamped(_ seconds: Int64, _ content: some StreamEventContent) throws -> String {
            try StreamEventBody(t: seconds * Self.second, content: content).json()
        }
        let join = MembershipChangeEvent(
            member: "s1", change: .joined, status: .alive, address: "10.0.0.10", role: "web", tags: tags, observer: "ha",
            cause: "member-join")
        var failed = join
        (failed.change, failed.status, failed.observer, failed.cause) = (.failed, .failed, "s2", "member-failed")
        failed.previous = .init(status: .alive, address: "10.0.0.10")
        let expected: [(EventKind, String)] = [
            (.membership, try stamped(100, join)),
            (.membership, try stamped(101, failed)),
            (.user, try stamped(102, ObservedUserEvent(user, observer: "s1"))),
            (.query, try stamped(103, ObservedUserEvent(UserEvent(name: "q", payload: ""), observer: "s1"))),
            (.inventory, try stamped(104, inventory)),
            (.config, try stamped(105, ConfigApplyEvent(node: "ha", apply: config))),
            (.mark, try stamped(106, MarkEvent(name: "task-2", note: "deploy"))),
        ]
        let stored = try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT kind, body FROM events ORDER BY id").map { ($0["kind"] as String, $0["body"] as String) }
        }
        #expect(stored.map(\.0) == expected.map(\.0.rawValue))
        #expect(stored.map(\.1) == expected.map(\.1))
        let outcome = try pool.read { db in try String.fetchOne(db, sql: "SELECT outcome FROM configs") }
        #expect(outcome == "applied-with-rejections")
    }
}

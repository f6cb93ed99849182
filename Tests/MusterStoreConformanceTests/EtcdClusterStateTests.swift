import Foundation
import MusterStore
import MusterStoreEtcd
import MusterStoreSQLite
import MusterWire
import Synchronization
import Testing

/// The cluster state in etcd as several collectors write it: the ledger's answers are the
/// SQLite store's for the same journal lines, each line is interpreted once whichever
/// collector gets it and however often, and event ids stay dense across collectors.
@Suite struct EtcdClusterStateTests {
    /// Runs `body` with a fresh namespace in the test etcd, and `count` collectors' states on it.
    func withCollectors(_ count: Int, maxTxnOps: Int = 128, _ body: ([EtcdClusterState], EtcdHistoryReader) async throws -> Void)
        async throws
    {
        let running = try await ScaleOutServers.shared.servers()
        let keys = try StateKeys(namespace: "t-" + UUID().uuidString)
        let states = try (0..<count).map { _ in
            try EtcdClusterState(client: try EtcdClient(endpoints: running.etcd), keys: keys, maxTxnOps: maxTxnOps)
        }
        try await states[0].create()
        do {
            try await body(states, EtcdHistoryReader(client: try EtcdClient(endpoints: running.etcd), keys: keys))
        } catch {
            try? await states[0].removeAll()
            throw error
        }
        try await states[0].removeAll()
    }

    /// A history of 3 observers: joins, a leave, a failure, a late report that moves a change
    /// back, an address taken over, snapshots, user events, inventories and configurations.
    static func history() -> [JournalLine] {
        var lines: [JournalLine] = []
        var offsets: [String: Int64] = [:]
        func add(_ entry: JournalEntry) {
            let observer = entry.observer
            lines.append(JournalLine(origin: Origin(agent: observer, source: JournalEntry.sourceID, generation: "g", offset: offsets[observer, default: 0]), entry: entry))
            offsets[observer, default: 0] += Int64(entry.encodedLine().utf8.count) + 1
        }
        func member(_ name: String, _ address: String) -> Member { Member(name: name, address: address, role: "web", tags: ["role": "web"]) }
        for observer in ["ha", "s1", "s2"] {
            add(JournalEntry(t: Fixtures.at(100), event: .memberJoin, observer: observer, member: member("s1", "10.0.0.11")))
            add(JournalEntry(t: Fixtures.at(101), event: .memberJoin, observer: observer, member: member("s2", "10.0.0.12")))
        }
        add(JournalEntry(t: Fixtures.at(150), event: .memberJoin, observer: "ha", member: member("s3", "10.0.0.13")))
        add(JournalEntry(t: Fixtures.at(160), event: .user, observer: "ha", user: UserEvent(name: "deploy", payload: "v2")))
        add(JournalEntry(t: Fixtures.at(170), event: .memberFailed, observer: "s1", member: member("s2", "10.0.0.12")))
        // Seen earlier by another observer, reported later: the failure moves back to 165.
        add(JournalEntry(t: Fixtures.at(165), event: .memberFailed, observer: "ha", member: member("s2", "10.0.0.12")))
        // s4 takes s3's address: s3 is replaced.
        add(JournalEntry(t: Fixtures.at(180), event: .memberJoin, observer: "ha", member: member("s4", "10.0.0.13")))
        add(JournalEntry(t: Fixtures.at(190), event: .memberLeave, observer: "s1", member: member("s1", "10.0.0.11")))
        add(JournalEntry(t: Fixtures.at(200), event: .snapshot, observer: "ha", members: [member("s4", "10.0.0.13"), member("s5", "10.0.0.15")]))
        let inventory = Inventory(
            node: "s4", hostname: "s4", addresses: ["10.0.0.13"], role: "web", tags: [:], image: "webapp:1", agentVersion: "1", services: [])
        add(JournalEntry(t: Fixtures.at(201), event: .inventory, observer: "s4", inventory: inventory))
        add(JournalEntry(t: Fixtures.at(202), event: .inventory, observer: "s4", inventory: inventory))
        for version in 1...3 {
            let apply = ConfigApply(
                version: version, sha256: "sha\(version)", text: "backend web\n  server s4 10.0.0.13:80\n", diff: "+server s4",
                trigger: ["s4 joined"], method: "runtime", durationMilliseconds: 3, outcome: .applied, message: nil, servers: ["s4"])
            add(JournalEntry(t: Fixtures.at(210 + Int64(version)), event: .config, observer: "ha", config: apply))
        }
        return lines
    }

    /// The same lines through the SQLite store: the reference answers.
    func reference(_ lines: [JournalLine]) async throws -> (
        events: [StoredEvent], changes: [MembershipChange], reader: any HistoryStore, directory: String, store: SQLiteStore
    ) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-etcd-ref-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: directory + "/store.sqlite", synchronous: .normal)
        for line in lines {
            var batch = IngestBatch(records: [
                LogRecord(time: line.entry.t, node: line.origin.agent, origin: line.origin, message: line.entry.encodedLine())
            ])
            batch.journal[0] = line.entry
            _ = try await store.commit([batch])
        }
        let reader = try SQLiteHistoryReader(path: directory + "/store.sqlite")
        return (try await store.allEvents(), try reader.changes(since: nil, until: nil, members: []), reader, directory, store)
    }

    func withoutIDs(_ changes: [MembershipChange]) -> [MembershipChange] {
        changes.map { var change = $0; change.id = 0; return change }
    }

    @Test func twoCollectorsTakingTurnsGiveTheSingleWritersHistory() async throws {
        let lines = Self.history()
        let expected = try await reference(lines)
        defer { try? FileManager.default.removeItem(atPath: expected.directory) }
        try await withCollectors(2) { states, history in
            // Each line goes to one collector, the other gets a resend of it later.
            for (index, line) in lines.enumerated() {
                _ = try await states[index % 2].interpret([line])
                if index > 0 { _ = try await states[(index + 1) % 2].interpret([lines[index - 1]]) }
            }
            let events = try await states[1].allEvents()
            #expect(events == expected.events)
            #expect(events.map(\.id) == Array(1...Int64(events.count)))
            let changes = try history.changes(since: nil, until: nil, members: [])
            #expect(withoutIDs(changes) == withoutIDs(expected.changes))
            for seconds: Int64 in [99, 100, 101, 166, 185, 195, 205, 300] {
                #expect(try history.members(at: Fixtures.at(seconds)) == withEventIDs(try expected.reader.members(at: Fixtures.at(seconds))))
                #expect(try history.nodes(at: Fixtures.at(seconds)).inventories == expected.reader.nodes(at: Fixtures.at(seconds)).inventories)
            }
            #expect(try history.configRecords(node: nil, since: nil, until: nil, withText: true) == expected.reader.configRecords(node: nil, since: nil, until: nil, withText: true))
            #expect(try history.configVersions() == expected.reader.configVersions())
            #expect(try history.configTexts(version: 2, node: "ha") == expected.reader.configTexts(version: 2, node: "ha"))
            #expect(try history.events(since: Fixtures.at(150), until: Fixtures.at(200)) == expected.reader.events(since: Fixtures.at(150), until: Fixtures.at(200)))
            #expect(try history.inventory(of: "s4", at: Fixtures.at(300)) == expected.reader.inventory(of: "s4", at: Fixtures.at(300)))
        }
    }

    /// SQLite numbers membership rows on its own; etcd's rows have their event's id.
    func withEventIDs(_ members: [MembershipChange]) -> [MembershipChange] {
        members.map { var member = $0; member.id = member.event; return member }
    }

    @Test func pruningHistoryRemovesWhatTheSQLiteStoreRemoves() async throws {
        let lines = Self.history()
        let expected = try await reference(lines)
        defer { try? FileManager.default.removeItem(atPath: expected.directory) }
        try await withCollectors(2) { states, history in
            _ = try await states[0].interpret(lines)
            let mark = try await states[0].recordMark(name: "task-1", note: "", at: Fixtures.at(120))
            _ = try await expected.store.recordMark(name: "task-1", note: "", at: Fixtures.at(120))
            // Everything before 185 s is older than a 100 s history at 285 s.
            let policy = RetentionPolicy(historyMaxAge: Fixtures.at(100))
            var chunks = 0
            var more = true
            while more {
                more = try await states[1].pruneHistory(before: Fixtures.at(185), maxRows: 3).more
                chunks += 1
            }
            while try await expected.store.pruneChunk(policy, now: Fixtures.at(285), maxRows: 3, trimming: false).more {}
            #expect(chunks > 1)
            let changes = try history.changes(since: nil, until: nil, members: [])
            #expect(changes.count < expected.changes.count)
            #expect(withoutIDs(changes) == withoutIDs(try expected.reader.changes(since: nil, until: nil, members: [])))
            #expect(try history.events(since: nil, until: nil) == expected.reader.events(since: nil, until: nil))
            #expect(try history.marks() == [mark])
            // The other collector's copy was read before the prune: it reads anew and decides
            // a late report as the single writer does.
            let late = JournalLine(
                origin: Origin(agent: "s2", source: JournalEntry.sourceID, generation: "g", offset: 99_999),
                entry: Fixtures.join("s6", at: Fixtures.at(400), seenBy: "s2", address: "10.0.0.16"))
            _ = try await states[0].interpret([late])
            var batch = IngestBatch(records: [LogRecord(time: late.entry.t, node: "s2", origin: late.origin, message: late.entry.encodedLine())])
            batch.journal[0] = late.entry
            _ = try await expected.store.commit([batch])
            #expect(try history.members(at: Fixtures.at(500)) == withEventIDs(try expected.reader.members(at: Fixtures.at(500))))
            #expect(try history.members(at: Fixtures.at(500)).contains { $0.member == "s6" })
        }
    }

    @Test func collectorsRacingWithTheSameLinesInterpretEachOnce() async throws {
        // 120 user events from 4 observers, every line sent to all three collectors at once,
        // in groups of 5.
        var lines: [JournalLine] = []
        for observer in ["a", "b", "c", "d"] {
            for index in 0..<30 {
                let entry = Fixtures.userEvent("\(observer)-\(index)", at: Fixtures.at(Int64(1_000 + index)), seenBy: observer)
                lines.append(JournalLine(origin: Origin(agent: observer, source: JournalEntry.sourceID, generation: "g", offset: Int64(index * 100)), entry: entry))
            }
        }
        let all = lines
        try await withCollectors(3) { states, history in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for state in states {
                    group.addTask {
                        for start in stride(from: 0, to: all.count, by: 5) {
                            _ = try await state.interpret(Array(all[start..<min(start + 5, all.count)]))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let events = try await states[0].allEvents()
            #expect(events.count == lines.count)
            #expect(events.map(\.id) == Array(1...Int64(lines.count)))
            #expect(Set(events.map(\.body)).count == lines.count)
            #expect(try history.events(since: nil, until: nil).count == lines.count)
        }
    }

    @Test func manyLinesAreSplitIntoTransactionsWithinMaxTxnOps() async throws {
        var lines: [JournalLine] = []
        for index in 0..<50 {
            let entry = Fixtures.join("m\(index)", at: Fixtures.at(Int64(500 + index)), seenBy: "ha", address: "10.1.0.\(index + 1)")
            lines.append(JournalLine(origin: Origin(agent: "ha", source: JournalEntry.sourceID, generation: "g", offset: Int64(index * 200)), entry: entry))
        }
        try await withCollectors(1, maxTxnOps: 8) { states, history in
            let newest = try await states[0].interpret(lines + lines)
            #expect(newest == 50)
            #expect(try history.members(at: Fixtures.at(1_000)).count == 50)
            #expect(try await states[0].latestEventID() == 50)
        }
    }

    /// A prune reads events (an await) while a commit of the same collector lands: the prune
    /// must not then install its older rows under the newer revision (seen in review: every
    /// later commit reused the same event id and seq stopped moving).
    @Test func aPruneRacingACommitOfTheSameCollectorKeepsIdsDense() async throws {
        func user(_ agent: String, _ offset: Int64, at seconds: Int64) -> JournalLine {
            JournalLine(
                origin: Origin(agent: agent, source: JournalEntry.sourceID, generation: "g", offset: offset),
                entry: Fixtures.userEvent("\(agent)\(offset)", at: Fixtures.at(seconds), seenBy: agent))
        }
        try await withCollectors(1) { states, _ in
            let state = states[0]
            // 2,000 recent events (scanned, kept: the scan pages), then 20 old ones (pruned).
            let recent = (0..<2_000).map { user("a", Int64($0), at: 10_000 + Int64($0)) }
            let old = (0..<20).map { user("b", Int64($0), at: Int64($0)) }
            _ = try await state.interpret(recent + old)
            for round in 0..<10 {
                async let pruned = state.pruneHistory(before: Fixtures.at(5_000), maxRows: 1)
                async let committed = state.interpret([user("c", Int64(round), at: 20_000 + Int64(round))])
                _ = try await (pruned, committed)
            }
            let before = try await state.latestEventID()
            #expect(before == 2_020 + 10)
            _ = try await state.interpret([user("d", 0, at: 30_000)])
            #expect(try await state.latestEventID() == before + 1)
            let events = try await state.allEvents()
            #expect(Set(events.map(\.body)).count == events.count, "an event overwritten by another")
        }
    }

    @Test func aMarkNameIsTakenOnceAcrossCollectors() async throws {
        try await withCollectors(2) { states, history in
            let first = try await states[0].recordMark(name: "task-1", note: "one", at: Fixtures.at(10))
            await #expect(throws: MarkError.exists(first)) {
                try await states[1].recordMark(name: "task-1", note: "again", at: Fixtures.at(11))
            }
            let second = try await states[1].recordMark(name: "task-2", note: "", at: Fixtures.at(12))
            #expect(second.event == first.event + 1)
            #expect(try history.marks() == [first, second])
        }
    }

    /// A collector following the newest event id sees every id another collector's commits
    /// make, once each and in order, across watch sessions (short here, so there are several).
    @Test func aFollowerSeesEachIdAnotherCollectorCommits() async throws {
        try await withCollectors(2) { states, _ in
            let sighted = Mutex<[Int64]>([])
            let follower = Task {
                try await states[1].followLatestEventID(watchSession: .milliseconds(300)) { id in sighted.withLock { $0.append(id) } }
            }
            // Bounded by the outcome (60 s on a very busy machine): the follower has read the
            // newest id, then has the last one.
            let deadline = ContinuousClock.now + .seconds(60)
            while sighted.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            for number in 1...5 {
                _ = try await states[0].recordMark(name: "m\(number)", note: "", at: Fixtures.at(Int64(number)))
                try await Task.sleep(for: .milliseconds(150))
            }
            while sighted.withLock({ $0.last }) != 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            follower.cancel()
            _ = await follower.result
            #expect(sighted.withLock { $0 } == [0, 1, 2, 3, 4, 5])
        }
    }

    @Test func aNamespaceWithoutSeqIsNoStore() async throws {
        let running = try await ScaleOutServers.shared.servers()
        let reader = EtcdHistoryReader(
            client: try EtcdClient(endpoints: running.etcd), keys: try StateKeys(namespace: "absent-" + UUID().uuidString))
        #expect(throws: StoreError.missing(location: reader.location)) { try reader.members(at: 0) }
    }
}

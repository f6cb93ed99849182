import MusterStore
import MusterWire
import Testing

/// What readers (`HistoryStore`, as `logq` uses it) see of what `IngestStore` and
/// `StoreMaintenance` did, on every backend in `StoreBackends`.
@Suite struct HistoryConformanceTests {
    /// s1 and s2 join at 100 s, s3 at 150 s, s2 leaves at 200 s; each change reported by
    /// two observers.
    func membershipStory(_ store: any CollectorStore) async throws {
        var offsets: [String: Int64] = [:]
        func report(_ entries: [JournalEntry]) async throws {
            var batches: [IngestBatch] = []
            for observer in ["ha", "s1"] {
                let seen = entries.map { entry -> JournalEntry in
                    var copy = entry
                    copy.observer = observer
                    return copy
                }
                let batch = Fixtures.journal(seen, observer: observer, offset: offsets[observer, default: 0])
                offsets[observer, default: 0] += batch.records.reduce(0) { $0 + Int64($1.message.utf8.count) + 1 }
                batches.append(batch)
            }
            _ = try await store.commit(batches)
        }
        try await report([
            Fixtures.join("s1", at: Fixtures.at(100), seenBy: "ha", address: "10.0.0.11"),
            Fixtures.join("s2", at: Fixtures.at(100), seenBy: "ha", address: "10.0.0.12"),
        ])
        try await report([Fixtures.join("s3", at: Fixtures.at(150), seenBy: "ha", address: "10.0.0.13")])
        try await report([Fixtures.leave("s2", at: Fixtures.at(200), seenBy: "ha", address: "10.0.0.12")])
    }

    func alive(_ reader: any HistoryStore, at seconds: Int64) throws -> [String] {
        try reader.members(at: Fixtures.at(seconds)).filter { $0.status == .alive }.map(\.member).sorted()
    }

    @Test(arguments: StoreBackends.all)
    func membersAtAnInstantFollowTheLedger(backend: StoreBackend) async throws {
        try await backend.withStoreAndReader { store, reader in
            try await membershipStory(store)
            let history = try reader()
            #expect(try alive(history, at: 99) == [])
            #expect(try alive(history, at: 120) == ["s1", "s2"])
            #expect(try alive(history, at: 160) == ["s1", "s2", "s3"])
            #expect(try alive(history, at: 250) == ["s1", "s3"])
            #expect(try history.members(at: Fixtures.at(250)).first { $0.member == "s2" }?.status == .left)
            // Each change once, although two observers reported each.
            let changes = try history.changes(since: nil, until: nil, members: [])
            #expect(changes.map(\.member) == ["s1", "s2", "s3", "s2"] || changes.map(\.member) == ["s2", "s1", "s3", "s2"])
            #expect(try history.changes(since: Fixtures.at(150), until: nil, members: ["s2"]).map(\.change) == [.left])
        }
    }

    @Test(arguments: StoreBackends.all)
    func searchAnswersAreCompleteBeforeAndAfterIndexing(backend: StoreBackend) async throws {
        try await backend.withStoreAndReader { store, reader in
            var batch = Fixtures.lines(0..<200)
            batch.records[17].message = "worker 3: deadlock detected, retrying"
            batch.records[150].message = "Deadlock DETECTED again"
            batch.records[151].message = "detected deadlock (words in the other order)"
            _ = try await store.commit([batch, Fixtures.lines(0..<50, node: "s2")])
            var filter = LogFilter()
            filter.match = "deadlock detected"
            let before = try reader().lines(filter).map(\.message)
            #expect(before == ["worker 3: deadlock detected, retrying", "Deadlock DETECTED again"])
            _ = try await store.indexNextChunk(maxRows: 120)  // part of it indexed
            #expect(try reader().lines(filter).map(\.message) == before)
            while try await store.indexNextChunk(maxRows: 120).pending > 0 {}
            #expect(try reader().lines(filter).map(\.message) == before)
            #expect(try reader().searchIndexBacklog() == 0)
        }
    }

    @Test(arguments: StoreBackends.all)
    func pruningHistoryNeverChangesAnAnswerAboutTheKeptPeriod(backend: StoreBackend) async throws {
        try await backend.withStoreAndReader { store, reader in
            try await membershipStory(store)
            _ = try await store.recordMark(name: "task-0", note: "", at: Fixtures.at(120))
            let after = [300, 1_000, 5_000] as [Int64]
            let before = try after.map { try alive(reader(), at: $0) }
            // Keep 1,000 s of history at 1,250 s: every change above is older than the cutoff.
            let policy = RetentionPolicy(logsMaxAge: Fixtures.at(1_000), historyMaxAge: Fixtures.at(1_000))
            var progress = PruneProgress(more: true)
            while progress.more { progress = try await store.pruneChunk(policy, now: Fixtures.at(1_250), maxRows: 2, trimming: false) }
            #expect(try after.map { try alive(reader(), at: $0) } == before)
            #expect(try reader().marks().map(\.name) == ["task-0"])
        }
    }

    /// One reader kept open (as `logq logs -f` keeps one) answers for the store as it is at each
    /// call: every append and every prune after its first read shows in its next answer.
    @Test(arguments: StoreBackends.all)
    func aReaderKeptOpenSeesEveryLaterChange(backend: StoreBackend) async throws {
        try await backend.withStoreAndReader { store, reader in
            try await membershipStory(store)
            let history = try reader()
            #expect(try alive(history, at: 250) == ["s1", "s3"])
            #expect(try history.marks().isEmpty)
            _ = try await store.recordMark(name: "task-0", note: "", at: Fixtures.at(260))
            #expect(try history.marks().map(\.name) == ["task-0"])
            let batch = Fixtures.journal([Fixtures.leave("s3", at: Fixtures.at(210), seenBy: "ha", address: "10.0.0.13")], observer: "ha", offset: 1 << 20)
            _ = try await store.commit([batch])
            #expect(try alive(history, at: 220) == ["s1"])
            #expect(try history.changes(since: nil, until: nil, members: ["s3"]).map(\.change) == [.joined, .left])
            // Pruning at 1,250 s with 1,000 s kept (cutoff 250 s): s3's join goes (its leave is
            // its latest change before the cutoff), which the same reader no longer lists.
            let policy = RetentionPolicy(historyMaxAge: Fixtures.at(1_000))
            var progress = PruneProgress(more: true)
            while progress.more { progress = try await store.pruneChunk(policy, now: Fixtures.at(1_250), maxRows: 2, trimming: false) }
            #expect(try history.changes(since: nil, until: nil, members: ["s3"]).map(\.change) == [.left])
            #expect(try alive(history, at: 220) == ["s1"])
        }
    }
}

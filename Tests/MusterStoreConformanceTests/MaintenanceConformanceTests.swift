import MusterStore
import MusterWire
import Testing

/// `StoreMaintenance`'s guarantees that can be seen through the write side, on every backend
/// in `StoreBackends`. (What readers see after pruning and indexing is checked with the reads.)
@Suite struct MaintenanceConformanceTests {
    @Test(arguments: StoreBackends.all.filter(\.searchIndex))
    func indexingCatchesUpInChunksAndThenHasNothingToDo(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            _ = try await store.commit([Fixtures.lines(0..<250)])
            let first = try await store.indexNextChunk(maxRows: 100)
            #expect(first.indexed == 100 && first.pending == 150)
            _ = try await store.indexNextChunk(maxRows: 100)
            let last = try await store.indexNextChunk(maxRows: 100)
            #expect(last.indexed == 50 && last.pending == 0)
            #expect(try await store.indexNextChunk(maxRows: 100).indexed == 0)
        }
    }

    @Test(arguments: StoreBackends.all)
    func pruningByAgeRemovesOldLinesInChunksAndKeepsTheRest(backend: StoreBackend) async throws {
        try await backend.withStoreAndReader { store, reader in
            _ = try await store.commit([Fixtures.lines(0..<50)])  // at 1 s of day 0
            _ = try await store.recordMark(name: "kept", note: "", at: Fixtures.at(1))
            // Two days later: day 0 lies wholly before the cutoff, so whole-day pruning takes it too.
            let later = 2 * 86_400 as Int64
            var recent = Fixtures.lines(50..<55)
            for index in recent.records.indices { recent.records[index].time = Fixtures.at(later + 3_590) }
            _ = try await store.commit([recent])
            let policy = RetentionPolicy(logsMaxAge: Fixtures.at(60))
            var removed = 0
            var chunks = 0
            var progress = PruneProgress(more: true)
            while progress.more, chunks < 100 {
                progress = try await store.pruneChunk(policy, now: Fixtures.at(later + 3_600), maxRows: 20, trimming: false)
                removed += progress.logRows
                chunks += 1
            }
            #expect(removed == 50)
            #expect(chunks >= (backend.prunesWholeDays ? 1 : 3))
            // Nothing more to do; the recent lines, the mark and its event stay.
            #expect(try await store.pruneChunk(policy, now: Fixtures.at(later + 3_600), maxRows: 20, trimming: false) == PruneProgress())
            #expect(try reader().lines(LogFilter()).map(\.message) == (50..<55).map { "line \($0)" })
            #expect(try reader().marks().map(\.name) == ["kept"])
            #expect(try await store.allEvents(kinds: [.mark]).count == 1)
        }
    }
}

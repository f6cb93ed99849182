import MusterStore
import MusterWire
import Testing

/// `IngestStore`'s guarantees about the cluster state, on every backend in `StoreBackends`
/// (those about lines alone are `LogConformanceTests`).
@Suite struct IngestConformanceTests {
    @Test(arguments: StoreBackends.all)
    func plainLinesAnnounceNoEvent(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let commit = try await store.commit([Fixtures.lines(0..<10), Fixtures.lines(0..<10)])
            #expect(commit.newestEvent == nil)
            #expect(try await store.latestEventID() == 0)
        }
    }

    @Test(arguments: StoreBackends.all)
    func aJournalLineIsInterpretedOnceHoweverOftenItIsResent(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let batch = Fixtures.journal([Fixtures.join("s3", at: Fixtures.at(100), seenBy: "ha")], observer: "ha")
            let first = try await store.commit([batch])
            let announced = try #require(first.newestEvent)
            #expect(try await store.latestEventID() == announced)
            let resent = try await store.commit([batch])
            #expect(resent.counts == [IngestCounts(accepted: 0, duplicates: 1)])
            #expect(resent.newestEvent == nil)
            #expect(try await store.latestEventID() == announced)
        }
    }

    @Test(arguments: StoreBackends.all)
    func everyObserverReportsAJoinButTheLedgerRecordsItOnce(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            _ = try await store.commit([
                Fixtures.journal([Fixtures.join("s3", at: Fixtures.at(100), seenBy: "ha")], observer: "ha"),
                Fixtures.journal([Fixtures.join("s3", at: Fixtures.at(100) + 3_000_000, seenBy: "s1")], observer: "s1"),
            ])
            _ = try await store.commit([
                Fixtures.journal([Fixtures.join("s3", at: Fixtures.at(101), seenBy: "s2")], observer: "s2")
            ])
            #expect(try await store.allEvents(kinds: [.membership]).count == 1)
            // A change is a change again: s3 leaves, reported by two observers.
            _ = try await store.commit([
                Fixtures.journal([Fixtures.leave("s3", at: Fixtures.at(200), seenBy: "ha")], observer: "ha", offset: 1_000),
                Fixtures.journal([Fixtures.leave("s3", at: Fixtures.at(200), seenBy: "s1")], observer: "s1", offset: 1_000),
            ])
            #expect(try await store.allEvents(kinds: [.membership]).count == 2)
        }
    }

    @Test(arguments: StoreBackends.all)
    func aMarkIsAnnouncedOnceAndItsNameIsTakenForGood(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let mark = try await store.recordMark(name: "task-1", note: "first", at: Fixtures.at(50))
            #expect(mark.name == "task-1" && mark.note == "first" && mark.t == Fixtures.at(50))
            #expect(try await store.latestEventID() == mark.event)
            let marks = try await store.allEvents(kinds: [.mark])
            #expect(marks.map(\.id) == [mark.event])
            await #expect(throws: MarkError.exists(mark)) {
                _ = try await store.recordMark(name: "task-1", note: "", at: Fixtures.at(60))
            }
            await #expect(throws: MarkError.invalidName("../x")) {
                _ = try await store.recordMark(name: "../x", note: "", at: Fixtures.at(60))
            }
            await #expect(throws: MarkError.invalidNote) {
                _ = try await store.recordMark(name: "task-2", note: "two\nlines", at: Fixtures.at(60))
            }
            #expect(try await store.latestEventID() == mark.event)
        }
    }
}

import MusterStore
import MusterWire
import Testing

/// `EventLog`'s guarantees, on every backend in `StoreBackends`.
@Suite struct EventLogConformanceTests {
    /// 30 events of three kinds: user events from one observer, joins of distinct members,
    /// and marks, interleaved over several commits.
    func fill(_ store: any CollectorStore) async throws -> [StoredEvent] {
        var offset: Int64 = 0
        for round in 0..<10 {
            let t = Fixtures.at(Int64(100 + round * 10))
            let entries = [
                Fixtures.userEvent("deploy \(round)", at: t, seenBy: "ha"),
                Fixtures.join("n\(round)", at: t + 1, seenBy: "ha", address: "10.0.1.\(round + 1)"),
            ]
            let batch = Fixtures.journal(entries, observer: "ha", offset: offset)
            offset += batch.records.reduce(0) { $0 + Int64($1.message.utf8.count) + 1 }
            _ = try await store.commit([batch])
            _ = try await store.recordMark(name: "task-\(round)", note: "", at: t + 2)
        }
        let all = try await store.allEvents()
        #expect(all.count == 30)
        return all
    }

    @Test(arguments: StoreBackends.all)
    func pagesOfAnySizeSeeEveryEventOnceInOrder(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let all = try await fill(store)
            #expect(all.map(\.id) == all.map(\.id).sorted())
            #expect(Set(all.map(\.id)).count == all.count)
            for pageSize in [1, 3, 7, 500] {
                #expect(try await store.allEvents(pageSize: pageSize) == all)
                for kinds: [EventKind] in [[.membership], [.user], [.mark, .membership]] {
                    let expected = all.filter { kinds.map(\.rawValue).contains($0.kind) }
                    #expect(try await store.allEvents(kinds: kinds, pageSize: pageSize) == expected, "kinds \(kinds), page \(pageSize)")
                }
            }
        }
    }

    @Test(arguments: StoreBackends.all)
    func aPageStopsAtItsHorizonAndResumesFromItsCursor(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let all = try await fill(store)
            let horizon = all[11].id
            let page = try await store.events(after: all[4].id, through: horizon, kinds: [], limit: 100)
            #expect(page.events == Array(all[5...11]))
            #expect(page.scannedThrough == horizon)
            // A full page continues from its last event, not from the horizon.
            let full = try await store.events(after: 0, through: horizon, kinds: [], limit: 4)
            #expect(full.events == Array(all[0..<4]))
            #expect(full.scannedThrough == all[3].id)
            // A filtered page that is not full moves the cursor to the horizon: the other kinds
            // up to it need not be read again.
            let marks = try await store.events(after: 0, through: horizon, kinds: [.mark], limit: 100)
            #expect(marks.events == all[0...11].filter { $0.kind == EventKind.mark.rawValue })
            #expect(marks.scannedThrough == horizon)
            // Nothing after the newest event.
            let newest = try await store.latestEventID()
            #expect(newest == all.last?.id)
            #expect(try await store.events(after: newest, through: newest, kinds: [], limit: 10).events.isEmpty)
        }
    }

    @Test(arguments: StoreBackends.all)
    func anEmptyLogStartsAtZero(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.latestEventID() == 0)
            let page = try await store.events(after: 0, through: 0, kinds: [], limit: 10)
            #expect(page.events.isEmpty && page.scannedThrough == 0)
        }
    }
}

import MusterStore
import MusterWire
import Testing

/// The guarantees about lines alone (stored once, read once, searched alike), on every backend
/// in `LogBackends`: the full stores and the ClickHouse cluster.
@Suite struct LogConformanceTests {
    @Test(arguments: LogBackends.all)
    func aResentRecordIsStoredOnceAndCountedAsADuplicate(backend: LogBackend) async throws {
        try await backend.withLines { store, _ in
            #expect(try await store([Fixtures.lines(0..<10)]) == [IngestCounts(accepted: 10, duplicates: 0)])
            // A resend overlapping what was stored, and a new generation of the same source.
            let again = try await store([Fixtures.lines(5..<15), Fixtures.lines(0..<3, generation: "g2")])
            #expect(again == [IngestCounts(accepted: 5, duplicates: 5), IngestCounts(accepted: 3, duplicates: 0)])
            // The same batch twice in one call: the second copy is the duplicate.
            let twice = try await store([Fixtures.lines(20..<24), Fixtures.lines(20..<24)])
            #expect(twice == [IngestCounts(accepted: 4, duplicates: 0), IngestCounts(accepted: 0, duplicates: 4)])
        }
    }

    /// An agent that lost its checkpoint reads its files again and stamps lines that carry no
    /// time of their own anew: the identity, not the time, says it is the same line.
    @Test(arguments: LogBackends.all)
    func aLineReadAgainWithANewTimeIsStillADuplicate(backend: LogBackend) async throws {
        try await backend.withLines { store, reader in
            _ = try await store([Fixtures.lines(0..<10)])
            var again = Fixtures.lines(0..<12)
            for index in again.records.indices { again.records[index].time += Fixtures.at(3_600) }
            #expect(try await store([again]) == [IngestCounts(accepted: 2, duplicates: 10)])
            #expect(try reader().lines(LogFilter()).map(\.message) == (0..<12).map { "line \($0)" })
        }
    }

    @Test(arguments: LogBackends.all)
    func anyTextComesBackAsItWasSent(backend: LogBackend) async throws {
        try await backend.withLines { store, reader in
            var batch = Fixtures.lines(0..<3)
            batch.records[0].message = "tab\there, backslash \\ and \\t, quote \" ' and \r carriage, \u{1} control, naïve 日本 🙂"
            batch.records[1].message = ""
            batch.records[2].fields = ["user": .string("a\tb\\c\"d"), "n": .int(42)]
            _ = try await store([batch])
            let lines = try reader().lines(LogFilter())
            #expect(lines.map(\.message) == batch.records.map(\.message))
            #expect(lines.map(\.fields) == [nil, nil, try StoredFieldsEncoder().encode(batch.records[2])])
        }
    }

    @Test(arguments: LogBackends.all)
    func aReaderSeesEachLineOnceHoweverOftenItWasSent(backend: LogBackend) async throws {
        try await backend.withLines { store, reader in
            _ = try await store([Fixtures.lines(0..<10), Fixtures.lines(5..<15)])
            _ = try await store([Fixtures.lines(0..<15)])
            let lines = try reader().lines(LogFilter())
            try #require(lines.map(\.message) == (0..<15).map { "line \($0)" })
            #expect(Set(lines.map(\.id)).count == 15)
            var after = LogFilter()
            after.afterID = lines[9].id
            #expect(try reader().lines(after).map(\.message) == (10..<15).map { "line \($0)" })
            #expect(try reader().newestLineID() == lines.map(\.id).max())
        }
    }

    @Test(arguments: LogBackends.all)
    func searchesMeanTheSameOnEveryBackend(backend: LogBackend) async throws {
        try await backend.withLines { store, reader in
            var batch = Fixtures.lines(0..<200)
            batch.records[17].message = "worker 3: deadlock detected, retrying"
            batch.records[150].message = "Deadlock DETECTED again"
            batch.records[151].message = "detected deadlock (words in the other order)"
            batch.records[152].message = "Déadlock detécted: folded like the index folds"
            batch.records[153].message = "deadlockdetected is one word"
            _ = try await store([batch, Fixtures.lines(0..<50, node: "s2")])
            var match = LogFilter()
            match.match = "deadlock detected"
            #expect(
                try reader().lines(match).map(\.message) == [
                    "worker 3: deadlock detected, retrying", "Deadlock DETECTED again", "Déadlock detécted: folded like the index folds",
                ])
            var grep = LogFilter()
            grep.grep = "line 1[0-9]$"
            grep.nodes = ["s2"]
            #expect(try reader().lines(grep).map(\.message) == (10...19).map { "line \($0)" })
            // ICU syntax on every backend: a possessive quantifier, which re2 lacks.
            var icu = LogFilter()
            icu.grep = "^line 4[0-9]++$"
            icu.nodes = ["s2"]
            #expect(try reader().lines(icu).map(\.message) == (40...49).map { "line \($0)" })
            var tail = LogFilter()
            tail.nodes = ["s1"]
            tail.tail = 3
            #expect(try reader().lines(tail).map(\.message) == ["line 197", "line 198", "line 199"])
            var limit = LogFilter()
            limit.sources = ["webapp"]
            limit.since = Fixtures.lines(0..<1).records[0].time + 190
            limit.limit = 5
            #expect(try reader().lines(limit).map(\.message) == ["line 190", "line 191", "line 192", "line 193", "line 194"])
            var typo = LogFilter()
            typo.nodes = ["s9"]
            #expect(throws: StoreError.unknownNode("s9", known: ["s1", "s2"])) { try reader().lines(typo) }
            var source = LogFilter()
            source.sources = ["haproxy"]
            #expect(throws: StoreError.unknownSource("haproxy", known: ["webapp"])) { try reader().lines(source) }
            var badPattern = LogFilter()
            badPattern.grep = "("
            #expect(throws: StoreError.self) { try reader().lines(badPattern) }
            var noWords = LogFilter()
            noWords.match = "-- !"
            #expect(throws: StoreError.nothingToMatch("-- !")) { try reader().lines(noWords) }
        }
    }

    @Test(arguments: LogBackends.all)
    func contextIsTheLinesAroundEachHitInItsOwnFile(backend: LogBackend) async throws {
        try await backend.withLines { store, reader in
            var batch = Fixtures.lines(0..<30)
            batch.records[5].message = "ERROR one"
            batch.records[8].message = "ERROR two"
            batch.records[20].message = "ERROR three"
            _ = try await store([batch, Fixtures.lines(0..<30, node: "s2")])
            var filter = LogFilter()
            filter.grep = "ERROR"
            let items = try reader().linesWithContext(filter, context: 2)
            let text = items.map { item -> String in
                switch item {
                case .line(let line, let match): (match ? "> " : "  ") + line.message
                case .separator: "--"
                }
            }
            #expect(
                text == [
                    "  line 3", "  line 4", "> ERROR one", "  line 6", "  line 7", "> ERROR two", "  line 9", "  line 10", "--",
                    "  line 18", "  line 19", "> ERROR three", "  line 21", "  line 22",
                ])
        }
    }
}

import MusterStore
import MusterWire

/// Batches as agents send them, for the conformance tests.
enum Fixtures {
    /// Plain log lines `offsets` of one source generation.
    static func lines(_ offsets: Range<Int64>, node: String = "s1", source: String = "webapp", generation: String = "g1") -> IngestBatch {
        IngestBatch(records: offsets.map {
            LogRecord(
                time: 1_000_000_000 + $0, node: node, origin: Origin(agent: node, source: source, generation: generation, offset: $0),
                message: "line \($0)")
        })
    }

    /// A batch of `observer`'s event-journal lines, at offsets from `offset` on.
    static func journal(_ entries: [JournalEntry], observer: String, offset: Int64 = 0) -> IngestBatch {
        var batch = IngestBatch(records: [])
        var offset = offset
        for (index, entry) in entries.enumerated() {
            let line = entry.encodedLine()
            batch.records.append(
                LogRecord(
                    time: entry.t, node: observer,
                    origin: Origin(agent: observer, source: JournalEntry.sourceID, generation: "g", offset: offset), message: line))
            batch.journal[index] = entry
            offset += Int64(line.utf8.count) + 1
        }
        return batch
    }

    static func join(_ name: String, at t: Int64, seenBy observer: String, address: String = "10.0.0.2") -> JournalEntry {
        JournalEntry(t: t, event: .memberJoin, observer: observer, member: Member(name: name, address: address, role: "web", tags: [:]))
    }

    static func leave(_ name: String, at t: Int64, seenBy observer: String, address: String = "10.0.0.2") -> JournalEntry {
        JournalEntry(t: t, event: .memberLeave, observer: observer, member: Member(name: name, address: address, role: "web", tags: [:]))
    }

    static func userEvent(_ payload: String, at t: Int64, seenBy observer: String) -> JournalEntry {
        JournalEntry(t: t, event: .user, observer: observer, user: UserEvent(name: "deploy", payload: payload))
    }

    /// 1970-01-01 plus `seconds`, in nanoseconds.
    static func at(_ seconds: Int64) -> Int64 { seconds * 1_000_000_000 }
}

extension EventLog {
    /// Every event of `kinds` up to the newest, read in pages of `pageSize`.
    func allEvents(kinds: [EventKind] = [], pageSize: Int = 500) async throws -> [StoredEvent] {
        let horizon = try await latestEventID()
        var cursor: Int64 = 0
        var events: [StoredEvent] = []
        while cursor < horizon {
            let page = try await self.events(after: cursor, through: horizon, kinds: kinds, limit: pageSize)
            events += page.events
            cursor = page.scannedThrough
        }
        return events
    }
}

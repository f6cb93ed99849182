import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MusterStore
import MusterWire
import NIOCore
import Synchronization
import Testing

@testable import MusterCollector

/// Many writers and many live consumers at once: every consumer must see every event of its
/// kinds exactly once, in id order, however the commits and its reads interleave.
@Suite struct EventStreamConcurrencyTests {
    let base = try! EventStreamTests()

    /// Every stored event (id, kind) once the writers are done; nil while they write.
    final class StoredEvents: Sendable {
        private let value = Mutex<[(id: Int64, kind: String)]?>(nil)
        func set(_ events: [(id: Int64, kind: String)]) { value.withLock { $0 = events } }

        /// The ids a consumer of `kinds` must see, once known.
        func ids(kinds: [String]) -> [Int64]? {
            value.withLock { $0?.filter { kinds.isEmpty || kinds.contains($0.kind) }.map(\.id) }
        }
    }

    /// Why a test consumer's `send` throws: it hangs up, as a client closing its connection does.
    struct HangUp: Error {}

    /// One live consumer: follows the stream with its kinds, hangs up after every `reconnectEvery`
    /// events (when set) and resumes from its last id, until it has seen `last` or time is up.
    struct Consumer: Sendable {
        var kinds: [EventKind]
        var reconnectEvery: Int?

        func run(
            events: any EventLog, feed: EventFeed, stored: StoredEvents, deadline: ContinuousClock.Instant
        ) async throws -> (ids: [Int64], connections: Int) {
            var seen: [Int64] = []
            var connections = 0
            var text = ""
            while ContinuousClock.now < deadline {
                let done: () -> Bool = {
                    guard let expected = stored.ids(kinds: kinds.map(\.rawValue)) else { return false }
                    return (seen.last ?? 0) >= (expected.last ?? 0)
                }
                if done() { break }
                connections += 1
                text = ""
                var thisConnection = 0
                let query = EventRoutes.Query(cursor: seen.last ?? 0, kinds: kinds, follow: true)
                do {
                    try await EventRoutes.follow(query, events: events, feed: feed, heartbeat: .milliseconds(100)) { buffer in
                        text += String(buffer: buffer)
                        while let end = text.range(of: "\n\n") {
                            let frame = text[..<end.lowerBound]
                            text.removeSubrange(..<end.upperBound)
                            guard let line = frame.split(separator: "\n").first(where: { $0.hasPrefix("id: ") }),
                                let id = Int64(line.dropFirst(4))
                            else { continue }
                            seen.append(id)
                            thisConnection += 1
                            if let every = reconnectEvery, thisConnection >= every { throw HangUp() }
                        }
                        if done() || ContinuousClock.now >= deadline { throw HangUp() }
                    }
                } catch is HangUp {}
            }
            return (seen, connections)
        }
    }

    /// Journal lines of one writer: user events, and now and then a member joining, so the
    /// membership consumers see a sparse subset of the ids.
    func writerBatch(writer: Int, batch: Int, offset: inout Int64) -> ByteBuffer {
        var encoder = BatchEncoder()
        let observer = "w\(writer)"
        for index in 0..<(1 + (writer + batch) % 4) {
            let t = Int64(1_000_000 * batch + index)
            let entry: JournalEntry =
                (batch + index) % 5 == 0
                ? JournalEntry(
                    t: t, event: .memberJoin, observer: observer,
                    member: Member(name: "m-\(writer)-\(batch)-\(index)", address: "10.\(writer).\(batch % 250).\(index + 1)", role: "web", tags: [:]))
                : JournalEntry(t: t, event: .user, observer: observer, user: UserEvent(name: "deploy", payload: "\(writer)/\(batch)/\(index)"))
            let line = entry.encodedLine()
            encoder.append(
                time: t, node: observer, origin: Origin(agent: observer, source: JournalEntry.sourceID, generation: "g", offset: offset),
                message: line)
            offset += Int64(line.utf8.count) + 1
        }
        return ByteBuffer(bytes: encoder.bytes)
    }

    @Test func everyLiveConsumerSeesEveryEventOnceAndInOrderWhileManyWritersCommit() async throws {
        let collector = try await Collector(config: base.config, logger: Logger(label: "test"))
        let store = collector.store
        let feed = collector.writer.feed
        let writers = 8
        let batchesPerWriter = 60
        let consumers = [
            Consumer(kinds: [], reconnectEvery: nil),
            Consumer(kinds: [], reconnectEvery: 37),
            Consumer(kinds: [.membership], reconnectEvery: nil),
            Consumer(kinds: [.membership], reconnectEvery: 5),
            Consumer(kinds: [.user], reconnectEvery: nil),
            Consumer(kinds: [.mark, .membership], reconnectEvery: 3),
            Consumer(kinds: [.mark], reconnectEvery: nil),
        ]
        let stored = StoredEvents()
        let deadline = ContinuousClock.now + .seconds(25)
        try await collector.application().test(.router) { client in
            try await withThrowingTaskGroup(of: (Int, [Int64], Int)?.self) { group in
                for (index, consumer) in consumers.enumerated() {
                    group.addTask {
                        let (ids, connections) = try await consumer.run(events: store, feed: feed, stored: stored, deadline: deadline)
                        return (index, ids, connections)
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { writing in
                    for writer in 0..<writers {
                        writing.addTask {
                            var offset: Int64 = 0
                            for batch in 0..<batchesPerWriter {
                                let body = writerBatch(writer: writer, batch: batch, offset: &offset)
                                try await client.execute(
                                    uri: "/v1/ingest", method: .post, headers: [.authorization: "Bearer s3cret"], body: body
                                ) { #expect($0.status == .ok) }
                                // Marks take the writer's queue directly, beside the group commits.
                                if writer < 2, batch % 6 == 0 {
                                    try await client.execute(
                                        uri: "/v1/marks", method: .post, headers: [.authorization: "Bearer s3cret"],
                                        body: ByteBuffer(string: #"{"name":"m\#(writer)-\#(batch)"}"#)
                                    ) { #expect($0.status == .created) }
                                }
                            }
                        }
                    }
                    try await writing.waitForAll()
                }
                stored.set(
                    try await DatabaseQueue(path: base.config.database).read { db in
                        try Row.fetchAll(db, sql: "SELECT id, kind FROM events ORDER BY id").map { (id: $0["id"], kind: $0["kind"]) }
                    })
                var results: [Int: ([Int64], Int)] = [:]
                for try await result in group {
                    if let (index, ids, connections) = result { results[index] = (ids, connections) }
                }
                #expect((stored.ids(kinds: []) ?? []).count > 1_000)
                for (index, consumer) in consumers.enumerated() {
                    let expected = stored.ids(kinds: consumer.kinds.map(\.rawValue)) ?? []
                    let (seen, connections) = results[index] ?? ([], 0)
                    let missing = Set(expected).subtracting(seen).sorted()
                    #expect(
                        seen == expected,
                        """
                        consumer \(index) (kinds \(consumer.kinds), reconnect every \(consumer.reconnectEvery.map(String.init) ?? "never"), \
                        \(connections) connections): saw \(seen.count) of \(expected.count); missing \(missing.prefix(10)); \
                        \(seen.count - Set(seen).count) repeated
                        """)
                    if let every = consumer.reconnectEvery { #expect(connections > expected.count / every / 2) }
                }
            }
        }
    }
}

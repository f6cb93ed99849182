import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import MusterWire
import NIOCore
import Testing

@testable import MusterCollector

/// Journal lines in, canonical events out on `GET /v1/events`, through the real router and store.
@Suite struct EventStreamTests {
    let config: CollectorConfig

    init() throws {
        config = try CollectorConfig.forTest("events").config
    }

    func journalBatch(_ entries: [JournalEntry], observer: String = "ha", firstOffset: Int64 = 0) -> ByteBuffer {
        var encoder = BatchEncoder()
        var offset = firstOffset
        for entry in entries {
            let line = entry.encodedLine()
            encoder.append(
                time: entry.t, node: observer,
                origin: Origin(agent: observer, source: JournalEntry.sourceID, generation: "g", offset: offset), message: line)
            offset += Int64(line.utf8.count) + 1
        }
        return ByteBuffer(bytes: encoder.bytes)
    }

    func join(_ name: String, _ address: String, at t: Int64, event: JournalEvent = .memberJoin) -> JournalEntry {
        JournalEntry(t: t, event: event, observer: "ha", member: Member(name: name, address: address, role: "web", tags: [:]))
    }

    func withCollector(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let collector = try await Collector(config: config, logger: Logger(label: "test"))
        try await collector.application().test(.router, body)
    }

    func ingest(_ client: any TestClientProtocol, _ body: ByteBuffer) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(
            uri: "/v1/ingest", method: .post, headers: [.authorization: "Bearer s3cret"], body: body
        ) { ($0.status, String(buffer: $0.body)) }
    }

    /// (id, event, data) of each SSE event in a finished stream.
    func events(_ client: any TestClientProtocol, _ query: String, headers: HTTPFields = [.authorization: "Bearer s3cret"])
        async throws -> (HTTPResponse.Status, [(id: Int64, kind: String, data: String)])
    {
        try await client.execute(uri: "/v1/events?\(query)", method: .get, headers: headers) { response in
            var parsed: [(Int64, String, String)] = []
            for block in String(buffer: response.body).components(separatedBy: "\n\n") {
                var id: Int64?
                var kind = ""
                var data = ""
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
                    if line.hasPrefix("event: ") { kind = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
                }
                if let id { parsed.append((id, kind, data)) }
            }
            return (response.status, parsed)
        }
    }

    @Test func membershipChangesAreStreamedInOrderAndResumableFromACursor() async throws {
        try await withCollector { client in
            let batch = journalBatch([
                join("s1", "10.0.0.10", at: 100), join("s2", "10.0.0.11", at: 100), join("s1", "10.0.0.10", at: 200, event: .memberLeave),
            ])
            #expect(try await ingest(client, batch).0 == .ok)
            // Resending the same lines changes nothing: no second set of events.
            #expect(try await ingest(client, batch).0 == .ok)
            let (status, all) = try await events(client, "since=0&follow=false")
            #expect(status == .ok)
            #expect(all.map(\.id) == [1, 2, 3])
            #expect(all.map(\.kind) == ["membership", "membership", "membership"])
            #expect(all[2].data.contains(#""change":"left""#))
            let (_, rest) = try await events(client, "since=2&follow=false")
            #expect(rest.map(\.id) == [3])
            var headers: HTTPFields = [.authorization: "Bearer s3cret"]
            headers[HTTPField.Name("Last-Event-ID")!] = "1"
            let (_, resumed) = try await events(client, "follow=false", headers: headers)
            #expect(resumed.map(\.id) == [2, 3])
        }
    }

    @Test func kindsFilterTheStream() async throws {
        try await withCollector { client in
            let user = JournalEntry(t: 150, event: .user, observer: "ha", user: UserEvent(name: "deploy", payload: "v2"))
            _ = try await ingest(client, journalBatch([join("s1", "10.0.0.10", at: 100), user]))
            let (_, users) = try await events(client, "kind=user&follow=false")
            #expect(users.map(\.kind) == ["user"])
            let (_, both) = try await events(client, "kind=membership,user&follow=false")
            #expect(both.count == 2)
        }
    }

    @Test func badRequestsGetAStatusAndAJSONReason() async throws {
        try await withCollector { client in
            let (unauthorized, _) = try await events(client, "since=0", headers: [:])
            #expect(unauthorized == .unauthorized)
            for (query, code) in [("since=-1", "invalid_cursor"), ("since=abc", "invalid_cursor"), ("kind=bogus", "unknown_kind"),
                                  ("follow=maybe", "invalid_follow")] {
                try await client.execute(uri: "/v1/events?\(query)", method: .get, headers: [.authorization: "Bearer s3cret"]) {
                    #expect($0.status == .badRequest)
                    #expect(String(buffer: $0.body).contains(#""code":"\#(code)""#))
                }
            }
            // A journal line that is not a journal entry refuses the batch, and stores nothing of it.
            var encoder = BatchEncoder()
            encoder.append(
                time: 1, node: "ha", origin: Origin(agent: "ha", source: JournalEntry.sourceID, generation: "g", offset: 0),
                message: "not json")
            let (status, body) = try await ingest(client, ByteBuffer(bytes: encoder.bytes))
            #expect(status == .badRequest)
            #expect(body.contains("invalid_journal_entry"))
        }
    }
}

/// `POST /v1/marks` (what `logq mark` sends) through the real router and store.
@Suite struct MarkRouteTests {
    let stream = try! EventStreamTests()

    func mark(_ client: any TestClientProtocol, _ body: String, token: String = "s3cret") async throws -> (HTTPResponse.Status, String) {
        try await client.execute(
            uri: "/v1/marks", method: .post, headers: [.authorization: "Bearer \(token)"], body: ByteBuffer(string: body)
        ) { ($0.status, String(buffer: $0.body)) }
    }

    @Test func aMarkIsStoredOnceAndStreamed() async throws {
        try await stream.withCollector { client in
            let (status, body) = try await mark(client, #"{"name":"task-2","note":"serf"}"#)
            #expect(status == .created)
            #expect(body.contains(#""name":"task-2""#) && body.contains(#""event":1"#))
            let (again, refusal) = try await mark(client, #"{"name":"task-2"}"#)
            #expect(again == .conflict)
            #expect(refusal.contains(#""code":"mark_exists""#))
            let (_, events) = try await stream.events(client, "since=0&follow=false&kind=mark")
            #expect(events.map(\.kind) == ["mark"])
            #expect(events.first?.data.contains(#""name":"task-2""#) == true)
        }
    }

    @Test func badMarksAreRefusedWithAJSONBody() async throws {
        try await stream.withCollector { client in
            for body in ["not json", #"{"note":"no name"}"#, #"{"name":"a b"}"#, #"{"name":"x","note":"two\nlines"}"#] {
                let (status, answer) = try await mark(client, body)
                #expect(status == .badRequest, "\(body)")
                #expect(answer.contains(#""code":"invalid_mark""#), "\(body): \(answer)")
            }
            #expect(try await mark(client, #"{"name":"x"}"#, token: "wrong").0 == .unauthorized)
        }
    }
}

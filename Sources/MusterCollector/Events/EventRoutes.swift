import Foundation
import Hummingbird
import MusterStore
import NIOCore

/// `GET /v1/events?since=CURSOR[&kind=membership,inventory][&follow=false]`: the event
/// stream as Server-Sent Events.
///
/// Each event's SSE `id` is its row id in `events`, so a client that reconnects with its
/// last id (`since`, or the standard `Last-Event-ID` header) gets exactly what followed it.
/// Events are always read from the store, in pages, at the consumer's pace: a consumer far
/// behind is caught up from disk and a slow one only slows itself.
struct EventRoutes {
    let events: any EventLog
    let feed: EventFeed
    let tokens: TokenSet
    /// A comment line is sent when nothing happened for this long, so proxies and clients
    /// can tell a quiet stream from a dead connection.
    var heartbeat: Duration = .seconds(15)
    /// On a store other collectors write too: a stream ends (as a broken connection, so its
    /// consumer goes on to another collector) once the store's newest id has gone unread this
    /// long. Such a stream could only send keepalives while the cluster changed unseen.
    var outOfSightLimit: Duration = .seconds(15)
    static let pageSize = 500

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/events") { request, _ in try stream(request) }
    }

    struct Query: Sendable {
        var cursor: Int64
        var kinds: [EventKind]
        var follow: Bool
    }

    static func parse(_ request: Request) throws -> Query {
        let parameters = request.uri.queryParameters
        let lastEventID = request.headers.first { $0.name.canonicalName == "last-event-id" }?.value
        let cursorText = lastEventID ?? parameters["since"].map(String.init) ?? "0"
        guard let cursor = Int64(cursorText), cursor >= 0 else {
            throw APIError(
                status: .badRequest, code: "invalid_cursor",
                message: "since (or Last-Event-ID) must be an event id, a whole number >= 0; got '\(cursorText)'")
        }
        var kinds: [EventKind] = []
        if let list = parameters["kind"] {
            for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let kind = EventKind(rawValue: name) else {
                    let known = EventKind.allCases.map(\.rawValue)
                    throw APIError(
                        status: .badRequest, code: "unknown_kind",
                        message: "unknown event kind '\(name)' (known: \(known.joined(separator: ", ")))")
                }
                kinds.append(kind)
            }
        }
        let followText = parameters["follow"].map(String.init) ?? "true"
        guard ["true", "false", "1", "0"].contains(followText) else {
            throw APIError(status: .badRequest, code: "invalid_follow", message: "follow must be true or false; got '\(followText)'")
        }
        return Query(cursor: cursor, kinds: kinds, follow: followText == "true" || followText == "1")
    }

    private func stream(_ request: Request) throws -> Response {
        guard tokens.accepts(authorization: request.headers[.authorization]) else { throw APIError.unauthorized }
        let query = try Self.parse(request)
        let events = self.events
        let feed = self.feed
        let heartbeat = self.heartbeat
        let outOfSightLimit = self.outOfSightLimit
        let body = ResponseBody { writer in
            try await Self.follow(query, events: events, feed: feed, heartbeat: heartbeat, outOfSightLimit: outOfSightLimit) {
                try await writer.write($0)
            }
            try await writer.finish(nil)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Sends the stream for `query` to `send` until it is caught up (without `follow`), the
    /// feed closes at shutdown, or `send` throws (the consumer hung up). Throws
    /// `StoreOutOfSight` once the feed has not read the store's newest id for `outOfSightLimit`.
    static func follow(
        _ query: Query, events: any EventLog, feed: EventFeed, heartbeat: Duration, outOfSightLimit: Duration = .seconds(15),
        send: (ByteBuffer) async throws -> Void
    ) async throws {
        var cursor = query.cursor
        // The store's newest id, not only this collector's: on a store other collectors write
        // too, an event acknowledged elsewhere a moment ago is in this answer (the feed hears
        // of it within its poll otherwise).
        feed.advance(to: try await events.latestEventID())
        try await send(ByteBuffer(string: "retry: 1000\n\n"))
        var lastSent = ContinuousClock.now
        // Woken at least this often to check the store is still in sight.
        let check = min(heartbeat, outOfSightLimit / 3)
        while !feed.isClosed {
            // Everything up to `horizon` is committed; read it page by page.
            let horizon = feed.latest
            let page = try await events.events(after: cursor, through: horizon, kinds: query.kinds, limit: Self.pageSize)
            if !page.events.isEmpty {
                var buffer = ByteBuffer()
                for event in page.events {
                    buffer.writeString("id: \(event.id)\nevent: \(event.kind)\ndata: \(event.body)\n\n")
                }
                try await send(buffer)
                lastSent = .now
            }
            cursor = page.scannedThrough
            // A full page stopped short of the horizon: read on before waiting.
            if page.scannedThrough < horizon { continue }
            if !query.follow { break }
            await feed.wait(after: cursor, timeout: check)
            if let unseen = feed.outOfSight, unseen > outOfSightLimit { throw StoreOutOfSight(duration: unseen) }
            if feed.latest <= cursor, !feed.isClosed, ContinuousClock.now - lastSent >= heartbeat {
                try await send(ByteBuffer(string: ": keepalive\n\n"))
                lastSent = .now
            }
        }
    }

    /// Why a stream ended: the store's newest id could not be read for `duration`.
    struct StoreOutOfSight: Error, CustomStringConvertible {
        var duration: Duration

        var description: String {
            "the store's newest event id could not be read for \(duration.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))); ending the stream"
        }
    }
}

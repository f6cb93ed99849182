import Foundation
import GRDB
import Hummingbird
import MusterStore
import MusterStoreSQLite
import NIOCore

/// `GET /v1/events?since=CURSOR[&kind=membership,inventory][&follow=false]`: the event
/// stream as Server-Sent Events.
///
/// Each event's SSE `id` is its row id in `events`, so a client that reconnects with its
/// last id (`since`, or the standard `Last-Event-ID` header) gets exactly what followed it.
/// Events are always read from SQLite, in pages, at the consumer's pace: a consumer far
/// behind is caught up from disk and a slow one only slows itself.
struct EventRoutes {
    let database: DatabasePool
    let feed: EventFeed
    let tokens: TokenSet
    /// A comment line is sent when nothing happened for this long, so proxies and clients
    /// can tell a quiet stream from a dead connection.
    var heartbeat: Duration = .seconds(15)
    static let pageSize = 500

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/events") { request, _ in try stream(request) }
    }

    struct Query: Sendable {
        var cursor: Int64
        var kinds: [String]
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
        var kinds: [String] = []
        if let list = parameters["kind"] {
            kinds = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let known = EventKind.allCases.map(\.rawValue)
            if let unknown = kinds.first(where: { !known.contains($0) }) {
                throw APIError(
                    status: .badRequest, code: "unknown_kind",
                    message: "unknown event kind '\(unknown)' (known: \(known.joined(separator: ", ")))")
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
        let database = self.database
        let feed = self.feed
        let heartbeat = self.heartbeat
        let body = ResponseBody { writer in
            try await Self.follow(query, database: database, feed: feed, heartbeat: heartbeat) { try await writer.write($0) }
            try await writer.finish(nil)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Sends the stream for `query` to `send` until it is caught up (without `follow`), the
    /// feed closes at shutdown, or `send` throws (the consumer hung up).
    static func follow(
        _ query: Query, database: DatabasePool, feed: EventFeed, heartbeat: Duration,
        send: (ByteBuffer) async throws -> Void
    ) async throws {
        var cursor = query.cursor
        try await send(ByteBuffer(string: "retry: 1000\n\n"))
        while !feed.isClosed {
            // Everything up to `horizon` is committed; read it page by page.
            let horizon = feed.latest
            let after = cursor
            let page = try await database.read { db in
                try Self.page(after: after, through: horizon, kinds: query.kinds, in: db)
            }
            if !page.events.isEmpty {
                var buffer = ByteBuffer()
                for event in page.events {
                    buffer.writeString("id: \(event.id)\nevent: \(event.kind)\ndata: \(event.body)\n\n")
                }
                try await send(buffer)
            }
            cursor = page.scannedThrough
            if page.events.count == Self.pageSize { continue }
            if !query.follow { break }
            await feed.wait(after: cursor, timeout: heartbeat)
            if feed.latest <= cursor, !feed.isClosed { try await send(ByteBuffer(string: ": keepalive\n\n")) }
        }
    }

    struct Page {
        var events: [(id: Int64, kind: String, body: String)]
        /// The cursor to continue from: the last event sent, or `horizon` when the page was
        /// not full (so events of other kinds are not read again).
        var scannedThrough: Int64
    }

    static func page(after cursor: Int64, through horizon: Int64, kinds: [String], in db: Database) throws -> Page {
        var sql = "SELECT id, kind, body FROM events WHERE id > ? AND id <= ?"
        var arguments: StatementArguments = [cursor, horizon]
        if !kinds.isEmpty {
            sql += " AND kind IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ",")))"
            for kind in kinds { _ = arguments.append(contentsOf: [kind]) }
        }
        sql += " ORDER BY id LIMIT \(pageSize)"
        let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
        let events = rows.map { (id: $0["id"] as Int64, kind: $0["kind"] as String, body: $0["body"] as String) }
        let through = events.count == pageSize ? events.last!.id : max(cursor, horizon)
        return Page(events: events, scannedThrough: through)
    }
}

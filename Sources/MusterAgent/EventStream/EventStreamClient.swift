import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import MusterWire
import NIOCore
import NIOHTTP1
import Synchronization

/// One event from the collector's stream.
public struct StreamEvent: Sendable, Equatable {
    /// The cursor: reconnect with `since` = the last id handled to miss nothing and repeat nothing.
    public var id: Int64
    public var kind: String
    /// The event's JSON body.
    public var data: String
}

/// Reads `GET /v1/events` (Server-Sent Events) from a collector.
///
/// A stream ends when the connection does; resuming is the caller's decision (it knows
/// which id it has durably handled), so `events` takes the cursor to start after.
public struct EventStreamClient: Sendable {
    public let baseURL: String
    let token: String
    public let client: HTTPClient
    /// How long connecting and receiving the response head may take. The stream itself has
    /// no deadline, and AsyncHTTPClient keeps retrying a refused connection until the
    /// request's deadline, so without this bound a dead collector would never be noticed.
    let openTimeout: Duration
    /// How long an open stream may stay silent before it is taken for dead. The collector
    /// sends a keepalive comment every 15 s, so silence this long means the connection is
    /// gone without having been closed (a network path that stopped delivering, a peer that
    /// vanished); TCP alone would wait minutes, and events would pile up unseen meanwhile.
    let silenceLimit: Duration

    public init(
        baseURL: String, token: String, client: HTTPClient, openTimeout: Duration = .seconds(5),
        silenceLimit: Duration = .seconds(45)
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.client = client
        self.openTimeout = openTimeout
        self.silenceLimit = silenceLimit
    }

    /// The response head within `limit`. AsyncHTTPClient's deadline bounds the request only
    /// until its head arrives (the stream itself has none); a request still waiting for a
    /// connection then fails with the last connection error, which says why.
    private func responseHead(_ request: HTTPClientRequest, within limit: Duration) async throws -> HTTPClientResponse {
        do {
            return try await client.execute(request, deadline: .now() + .nanoseconds(limit.saturatingNanoseconds))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw EventStreamError.unreachable(baseURL: baseURL, after: limit)
        } catch where !Task.isCancelled {
            throw EventStreamError.failed(baseURL: baseURL, reason: ConnectionFailure.describe(error: error, url: baseURL))
        }
    }

    /// Calls `handle` for each event after `cursor`, in order, until the stream ends (with
    /// `follow: false`, once caught up), `handle` returns false, or the task is cancelled.
    /// Throws `EventStreamError.silent` when nothing (not even a keepalive) arrives for
    /// `silenceLimit`: reconnect from the last id handled.
    public func events(
        since cursor: Int64, kinds: [String] = [], follow: Bool = true, onOpen: () async -> Void = {},
        handle: (StreamEvent) async throws -> Bool
    ) async throws {
        var url = "\(baseURL)/v1/events?since=\(cursor)&follow=\(follow)"
        if !kinds.isEmpty { url += "&kind=" + kinds.joined(separator: ",") }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await responseHead(request, within: openTimeout)
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 64 << 10)
            throw EventStreamError.refused(status: Int(response.status.code), body: String(buffer: body))
        }
        await onOpen()
        // The body is read by a child task, so a watchdog can end a stream that went silent;
        // the channel hands each chunk over only when the previous one is handled.
        let chunks = AsyncThrowingChannel<ByteBuffer, any Error>()
        let lastHeard = LastHeard()
        let (baseURL, silenceLimit) = (self.baseURL, self.silenceLimit)
        try await withThrowingTaskGroup(of: Void.self) { group in
            defer { group.cancelAll() }
            group.addTask {
                do {
                    for try await chunk in response.body {
                        lastHeard.now()
                        await chunks.send(chunk)
                    }
                    chunks.finish()
                } catch {
                    chunks.fail(error)
                }
            }
            group.addTask {
                while true {
                    let due = lastHeard.instant + silenceLimit
                    if ContinuousClock.now >= due {
                        chunks.fail(EventStreamError.silent(baseURL: baseURL, after: silenceLimit))
                        return
                    }
                    try await Task.sleep(until: due)
                }
            }
            var parser = ServerSentEventParser()
            for try await chunk in chunks {
                for event in parser.feed(chunk) {
                    guard let id = event.id.flatMap(Int64.init) else { continue }
                    if try await !handle(StreamEvent(id: id, kind: event.event ?? "message", data: event.data)) { return }
                }
                // A slow handler is not a silent collector.
                lastHeard.now()
            }
        }
    }

    /// When the stream last delivered something.
    private final class LastHeard: Sendable {
        private let value = Mutex(ContinuousClock.now)
        var instant: ContinuousClock.Instant { value.withLock { $0 } }
        func now() { value.withLock { $0 = .now } }
    }
}

public enum EventStreamError: Error, CustomStringConvertible, Equatable {
    case refused(status: Int, body: String)
    /// No response head within the limit: a connection still being attempted, or one that
    /// did not answer.
    case unreachable(baseURL: String, after: Duration)
    /// No response: the connection failed (within the limit, retried; see `ConnectionFailure`).
    case failed(baseURL: String, reason: String)
    case silent(baseURL: String, after: Duration)

    public var description: String {
        switch self {
        case .silent(let url, let limit):
            "the event stream from \(url) stayed silent for \(limit) (no event, no keepalive): the connection is taken for dead"
        case .unreachable(let url, let limit): "no answer from the collector at \(url) within \(limit)"
        case .failed(let url, let reason): "cannot open the event stream from \(url): \(reason)"
        case .refused(let status, let body): "the collector refused the event stream (HTTP \(status)): \(body)"
        }
    }
}

/// The `text/event-stream` wire format: fields `id`, `event`, `data` (several `data` lines
/// join with newlines), comments start with `:`, a blank line ends an event. Input arrives in
/// arbitrary chunks, so a partial line is kept until its end comes.
struct ServerSentEventParser {
    struct Event: Equatable {
        var id: String?
        var event: String?
        var data: String
    }

    private var pending: [UInt8] = []
    private var id: String?
    private var event: String?
    private var data: [String] = []

    mutating func feed(_ chunk: ByteBuffer) -> [Event] {
        pending.append(contentsOf: chunk.readableBytesView)
        var events: [Event] = []
        var lineStart = 0
        var index = 0
        while index < pending.count {
            let byte = pending[index]
            // A CR that ends the input may be the first half of CRLF: decide when more arrives.
            if byte == UInt8(ascii: "\r"), index + 1 == pending.count { break }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                let line = String(decoding: pending[lineStart..<index], as: UTF8.self)
                if byte == UInt8(ascii: "\r"), index + 1 < pending.count, pending[index + 1] == UInt8(ascii: "\n") { index += 1 }
                if let finished = take(line) { events.append(finished) }
                lineStart = index + 1
            }
            index += 1
        }
        pending.removeFirst(lineStart)
        return events
    }

    private mutating func take(_ line: String) -> Event? {
        if line.isEmpty {
            defer { (id, event, data) = (nil, nil, []) }
            guard id != nil || !data.isEmpty else { return nil }
            return Event(id: id, event: event, data: data.joined(separator: "\n"))
        }
        if line.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring = ""
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = line[...]
        }
        switch field {
        case "id": id = String(value)
        case "event": event = String(value)
        case "data": data.append(String(value))
        default: break
        }
        return nil
    }
}

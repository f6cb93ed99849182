import AsyncHTTPClient
import NIOCore
import Synchronization

/// Watching a key: etcd's `POST /v3/watch` on the HTTP/JSON gateway, a response that stays open
/// and carries one JSON object per line as the key is written.
///
/// A watch is followed in sessions of bounded length: each opens a stream from a revision and
/// ends after its `session` (or when the stream or the member fails), and the caller opens the
/// next from the revision the last one returned. So a stream that went quiet without closing
/// (a member cut off from the rest, a connection a middlebox dropped) costs at most one session,
/// nothing is missed between sessions (each starts where the last ended), and the stream needs
/// no read timeout of its own.
extension EtcdClient {
    /// How a watch session ended.
    public enum WatchEnd: Sendable, Equatable {
        /// The session's time was up, or the member ended the stream: go on from `next`.
        case over(next: Int64)
        /// The start revision has been compacted away: the history from it is gone, and the
        /// key should be read anew (from `oldest` on, the member has it all).
        case compacted(oldest: Int64)
    }

    /// Reports the writes of `key` from revision `revision` on (that revision included) to
    /// `changed`, in revision order, for at most `session`; returns where to go on from.
    ///
    /// Tries the endpoints in the usual turn until one takes the watch. Fails with
    /// `.unreachable` when none does, with the member's refusal, or with `.interrupted` /
    /// `.unexpectedAnswer` when the stream broke or carried something else than watch
    /// messages; the writes reported before the failure stay reported, and nothing after them
    /// is.
    public func watch(
        _ key: String, from revision: Int64, for session: Duration, changed: @escaping @Sendable (EtcdWatchChange) -> Void
    ) async throws(EtcdError) -> WatchEnd {
        guard revision >= 1 else { throw .configuration("a watch starts at revision 1 or later, not \(revision)") }
        let body = Self.encode(WatchRequest(createRequest: .init(key: base64(key), startRevision: String(revision))))
        var attempts: [String] = []
        for endpoint in inTurn {
            var request = HTTPClientRequest(url: endpoint + "/v3/watch")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            let response: HTTPClientResponse
            do {
                response = try await watchClient.execute(request, timeout: timeout)
            } catch {
                try passOver(endpoint, error, &attempts)
                continue
            }
            guard response.status == .ok else {
                let answer = (try? await response.body.collect(upTo: 64 << 10)) ?? ByteBuffer()
                do {
                    _ = try Self.accept(endpoint, response.status, answer)
                } catch where Self.isUnavailable(error) {
                    attempts.append("\(error)")
                    continue
                }
                throw .unexpectedAnswer(endpoint: endpoint, detail: "HTTP \(response.status.code) to a watch")
            }
            remember(endpoint)
            return try await follow(response.body, from: endpoint, after: revision - 1, for: session, changed: changed)
        }
        throw .unreachable(attempts)
    }

    /// Reads one stream's messages until the session is over; see `watch`.
    private func follow(
        _ body: HTTPClientResponse.Body, from endpoint: String, after revision: Int64, for session: Duration,
        changed: @escaping @Sendable (EtcdWatchChange) -> Void
    ) async throws(EtcdError) -> WatchEnd {
        let reader = WatchStreamReader(endpoint: endpoint, seen: revision, changed: changed)
        do {
            return try await withThrowingTaskGroup(of: WatchEnd?.self) { group in
                group.addTask { try await reader.read(body) }
                group.addTask {
                    try? await Task.sleep(for: session)
                    return nil
                }
                // Whichever ends first ends the session; the other is cancelled.
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first ?? .over(next: reader.next)
            }
        } catch let error as EtcdError {
            throw error
        } catch {
            throw .interrupted(endpoint: endpoint, detail: "the watch stream broke: \(error)")
        }
    }
}

/// The state of one watch stream: its bytes split into lines, each line decoded
/// (`EtcdAnswer.watch`), each change reported once and in order.
private final class WatchStreamReader: Sendable {
    let endpoint: String
    let changed: @Sendable (EtcdWatchChange) -> Void
    /// The newest revision reported (or the one before the start).
    private let seen: Mutex<Int64>

    init(endpoint: String, seen: Int64, changed: @escaping @Sendable (EtcdWatchChange) -> Void) {
        self.endpoint = endpoint
        self.changed = changed
        self.seen = Mutex(seen)
    }

    var next: Int64 { seen.withLock { $0 } + 1 }

    /// The longest line taken: one message carries the changes of one revision batch of one key.
    static let lineLimit = 16 << 20

    func read(_ body: HTTPClientResponse.Body) async throws -> EtcdClient.WatchEnd? {
        var line: [UInt8] = []
        for try await buffer in body {
            var rest = buffer.readableBytesView[...]
            while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
                line += rest[..<newline]
                rest = rest[rest.index(after: newline)...]
                if let end = try take(line) { return end }
                line.removeAll(keepingCapacity: true)
            }
            line += rest
            guard line.count <= Self.lineLimit else {
                throw EtcdError.unexpectedAnswer(endpoint: endpoint, detail: "a watch message over \(Self.lineLimit >> 20) MiB")
            }
        }
        if !line.isEmpty, let end = try take(line) { return end }
        return .over(next: next)
    }

    /// Handles one message; returns how the watch ended when it did.
    private func take(_ line: [UInt8]) throws(EtcdError) -> EtcdClient.WatchEnd? {
        guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) else { return nil }
        let message = try EtcdAnswer.watch(line, from: endpoint)
        if message.compactRevision > 0 { return .compacted(oldest: message.compactRevision) }
        for change in message.changes {
            // A change at or before one reported (a duplicate the server should not send) is
            // skipped, so each is reported once.
            let isNew = seen.withLock { seen in
                guard change.modRevision > seen else { return false }
                seen = change.modRevision
                return true
            }
            if isNew { changed(change) }
        }
        return message.canceled ? .over(next: next) : nil
    }
}

// The request as the gateway takes it: `{"create_request": {"key": …, "start_revision": "N"}}`.
private struct WatchRequest: Encodable {
    struct Create: Encodable {
        var key: String
        var startRevision: String
    }

    var createRequest: Create
}

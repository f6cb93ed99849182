import Synchronization

/// In-memory sessions: id → views. Bounded: past `capacity` the oldest session is
/// forgotten (oldest by creation, O(1)), so clients that never send their cookie back
/// cannot grow memory forever.
final class SessionStore: Sendable {
    private struct State {
        var views: [String: Int] = [:]
        /// Ids in creation order; `head` is the oldest not yet evicted.
        var created: [String] = []
        var head = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Counts a view for the session `id` if it exists, or starts a new one.
    /// Returns the session's id (new when `id` was unknown) and its view count.
    func view(_ id: String?) -> (id: String, views: Int) {
        state.withLock { state in
            if let id, let views = state.views[id] {
                state.views[id] = views + 1
                return (id, views + 1)
            }
            // Unknown ids are not adopted: a client cannot choose its session id.
            if state.views.count >= capacity {
                state.views[state.created[state.head]] = nil
                state.head += 1
                if state.head > capacity {
                    state.created.removeFirst(state.head)
                    state.head = 0
                }
            }
            let session = Self.newID()
            state.views[session] = 1
            state.created.append(session)
            return (session, 1)
        }
    }

    var count: Int { state.withLock { $0.views.count } }

    private static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return [generator.next() as UInt64, generator.next() as UInt64].map { part in
            let hex = String(part, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

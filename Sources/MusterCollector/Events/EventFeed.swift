import Foundation
import ServiceLifecycle
import Synchronization

/// Tells stream consumers that the `events` table has grown.
///
/// It carries no events, only the newest committed id: every consumer reads the events
/// themselves from SQLite at its own pace, so a slow or far-behind consumer holds no memory
/// here and can never make ingest wait.
public final class EventFeed: Service, Sendable {
    private enum Waiter {
        case parked(CheckedContinuation<Void, Never>)
        case released
    }

    private struct State {
        var latest: Int64
        var waiters: [UInt64: Waiter] = [:]
        var nextToken: UInt64 = 0
        var closed = false
        /// When the store's newest id was last read (`EventFeedFollower`); nil when this
        /// collector is the store's only writer and its own commits advance the feed.
        var lastSight: ContinuousClock.Instant?

        /// Wakes every parked waiter (marking it released).
        mutating func takeParked() -> [CheckedContinuation<Void, Never>] {
            var woken: [CheckedContinuation<Void, Never>] = []
            for (token, waiter) in waiters {
                if case .parked(let continuation) = waiter {
                    woken.append(continuation)
                    waiters[token] = .released
                }
            }
            return woken
        }
    }

    private let state: Mutex<State>

    init(latest: Int64) {
        state = Mutex(State(latest: latest))
    }

    /// The newest committed event id.
    var latest: Int64 { state.withLock { $0.latest } }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// How long the store's newest id has gone unread, on a store other collectors write too
    /// (nil on a store this collector alone writes: its own commits tell it everything).
    var outOfSight: Duration? {
        state.withLock { $0.lastSight }.map { ContinuousClock.now - $0 }
    }

    /// Called by the follower with the store's newest id each time it could read it.
    func sighted(_ id: Int64) {
        state.withLock { $0.lastSight = .now }
        advance(to: id)
    }

    /// Called by the writer after a commit that appended events.
    func advance(to id: Int64) {
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard id > state.latest else { return [] }
            state.latest = id
            return state.takeParked()
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns when an event newer than `cursor` is committed, after `timeout`, or at shutdown.
    func wait(after cursor: Int64, timeout: Duration) async {
        let token: UInt64 = state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.park(token, after: cursor) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.release(token)
            }
            await group.next()
            group.cancelAll()
            self.release(token)
        }
        state.withLock { _ = $0.waiters.removeValue(forKey: token) }
    }

    private func park(_ token: UInt64, after cursor: Int64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow: Bool = state.withLock { state in
                if state.closed || state.latest > cursor { return true }
                if case .released = state.waiters[token] { return true }
                state.waiters[token] = .parked(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func release(_ token: UInt64) {
        let parked: CheckedContinuation<Void, Never>? = state.withLock { state in
            if case .parked(let continuation) = state.waiters[token] {
                state.waiters[token] = .released
                return continuation
            }
            state.waiters[token] = .released
            return nil
        }
        parked?.resume()
    }

    /// Ends every stream at shutdown, so open connections do not hold the server up.
    public func run() async throws {
        try? await gracefulShutdown()
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.closed = true
            return state.takeParked()
        }
        for continuation in woken { continuation.resume() }
    }
}

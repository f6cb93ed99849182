#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// How many files the agent's tailers may hold open at once, shared by all of them.
///
/// A host agent may match thousands of files, and a process has a limit on descriptors
/// (`ulimit -n`, often 1024, 256 in some containers). Without a budget the tailers take every
/// descriptor and the spool, the state files and the connection to the collector fail with
/// "Too many open files": shipping stops for good. So the tailers hold at most `limit` files
/// open and close files read to their end to make room (see `FileTailer+Descriptors`); the
/// rest of the process limit stays free for everything else.
///
/// Only files kept open count; a file opened for a moment (to look at its first line) and
/// closed again does not.
public final class DescriptorBudget: Sendable {
    public let limit: Int
    private let state = Mutex(State())

    private struct State {
        var inUse = 0
        /// When a tailer last wanted a descriptor and there was none left.
        var lastRefusal: ContinuousClock.Instant?
    }

    /// Descriptors left to the rest of the agent whatever the configuration says: spool
    /// segments, state files, sockets to the collector, the HTTP server, inotify.
    public static let reserved = 64

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// The default: half of what the process may open beyond the reserve, at most 1024.
    public static func defaultLimit(processLimit: Int = DescriptorBudget.processLimit()) -> Int {
        max(8, min(1024, (processLimit - reserved) / 2))
    }

    /// The limit for a configured value: the value, but never more than the process can open
    /// beside the reserve. Returns the limit and whether the value was lowered.
    public static func limit(configured: Int?, processLimit: Int = DescriptorBudget.processLimit()) -> (limit: Int, lowered: Bool) {
        guard let configured else { return (defaultLimit(processLimit: processLimit), false) }
        let ceiling = max(8, processLimit - reserved)
        return configured > ceiling ? (ceiling, true) : (configured, false)
    }

    /// The process's soft limit on open descriptors (`RLIMIT_NOFILE`).
    public static func processLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        // RLIM_INFINITY does not fit an Int; nothing above a million matters here.
        return limit.rlim_cur > 1_000_000 ? 1_000_000 : Int(limit.rlim_cur)
    }

    /// Takes a descriptor from the budget; false when none is left.
    public func acquire() -> Bool {
        state.withLock { state in
            guard state.inUse < limit else {
                state.lastRefusal = .now
                return false
            }
            state.inUse += 1
            return true
        }
    }

    /// Gives back a descriptor taken with `acquire`.
    public func release() {
        state.withLock { $0.inUse = max(0, $0.inUse - 1) }
    }

    public var inUse: Int { state.withLock { $0.inUse } }

    /// Whether a tailer was refused a descriptor in the last few seconds: every tailer then
    /// closes files it has read to their end, so that one source's idle files cannot keep
    /// another source's new ones unread.
    public var isContended: Bool {
        state.withLock { state in state.lastRefusal.map { ContinuousClock.now - $0 < .seconds(3) } ?? false }
    }
}

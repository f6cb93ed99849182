import Foundation
import Synchronization

/// Gives each stored line its id (`LogLine.id`): the collector's clock in nanoseconds when the
/// line was handed to ClickHouse, never the same twice from one collector.
///
/// Ids order lines by when they were stored, which is what `logq logs -f` follows. Between
/// collectors they are as close to that order as the collectors' clocks are to each other
/// (NTP: milliseconds), which is why followers read a little behind the newest id
/// (docs/scale-out.md).
final class LineIDClock: Sendable {
    private let last = Mutex<Int64>(0)

    /// `count` consecutive ids, the first of them returned.
    func next(_ count: Int) -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let wall = Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
        return last.withLock { last in
            let first = max(wall, last &+ 1)
            last = first &+ Int64(max(count, 1)) &- 1
            return first
        }
    }
}

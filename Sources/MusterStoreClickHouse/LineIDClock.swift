import MusterWire
import Synchronization

/// Gives each stored line its id (`LogLine.id`): the collector's clock in nanoseconds when the
/// line was handed to ClickHouse, never the same twice from one process.
///
/// Ids order lines by when they were stored, which is what following reads. Between
/// collectors they are as close to that order as the collectors' clocks are to each other
/// (NTP: milliseconds), and two collectors can give the same id to different lines; readers
/// order by time first, so only lines of the same nanosecond are affected (docs/scale-out.md).
enum LineIDClock {
    private static let last = Mutex<Int64>(0)

    /// `count` consecutive ids, the first of them returned.
    static func next(_ count: Int) -> Int64 {
        let wall = Timestamp.now()
        return last.withLock { last in
            let first = max(wall, last &+ 1)
            last = first &+ Int64(max(count, 1)) &- 1
            return first
        }
    }
}

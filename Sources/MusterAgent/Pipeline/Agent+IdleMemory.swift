import Logging
import MusterWire

/// When an agent hands memory back (`ResidentMemory.release()`): once after start, and again
/// whenever it has been idle for a while after work.
///
/// An agent runs in every container and is idle most of its life, so what matters to a fleet
/// is what it holds while idle. What its start-up touched (the configuration parser, the
/// loader's tables) is never needed again, so the first release comes after a second of
/// quiet. What a burst touched (batch buffers, the shipping code) is needed again when the
/// next burst comes, so later releases wait for `afterWork` of quiet: an agent that ships
/// every few seconds keeps its pages, and one whose containers went quiet gives them back.
struct IdleReleaseSchedule {
    /// Quiet before the first release.
    static let afterStart = Duration.seconds(1)
    /// Quiet before each later release.
    let afterWork: Duration
    private var seen: UInt64
    private var quietSince: ContinuousClock.Instant
    private var releasedSinceWork = false
    private var releasedOnce = false

    init(afterWork: Duration, activity: UInt64, at now: ContinuousClock.Instant) {
        self.afterWork = afterWork
        self.seen = activity
        self.quietSince = now
    }

    /// Takes the agent's activity count (anything that moves when it works) at `now`; true
    /// when the agent is to release memory now. True at most once per quiet spell.
    mutating func shouldRelease(activity: UInt64, at now: ContinuousClock.Instant) -> Bool {
        if activity != seen {
            seen = activity
            quietSince = now
            releasedSinceWork = false
            return false
        }
        let quietNeeded = releasedOnce ? afterWork : min(afterWork, Self.afterStart)
        guard !releasedSinceWork, now - quietSince >= quietNeeded else { return false }
        releasedSinceWork = true
        releasedOnce = true
        return true
    }
}

extension Agent {
    /// Releases memory on `IdleReleaseSchedule`'s terms until cancelled, looking at the
    /// activity once per `IdleReleaseSchedule.afterStart`; returns at once when
    /// `memory.release_when_idle_ms` is 0. Not while the agent stops: its last sends need
    /// what they need.
    func idleMemoryLoop() async {
        guard config.memory.releaseWhenIdleMilliseconds > 0 else { return }
        var schedule = IdleReleaseSchedule(
            afterWork: .milliseconds(config.memory.releaseWhenIdleMilliseconds), activity: activity.load(ordering: .relaxed),
            at: .now)
        var refusalLogged = false
        while (try? await Task.sleep(for: IdleReleaseSchedule.afterStart)) != nil {
            guard schedule.shouldRelease(activity: activity.load(ordering: .relaxed), at: .now), !isStopping else { continue }
            let before = ResidentMemory.residentBytes()
            let started = ContinuousClock.now
            let release = ResidentMemory.release()
            let took = ContinuousClock.now - started
            metrics.memoryReleases.increment()
            let metadata: Logger.Metadata = [
                "resident_mib_before": Self.mebibytes(before), "resident_mib_after": Self.mebibytes(ResidentMemory.residentBytes()),
                "took_ms": "\(took.saturatingNanoseconds / 1_000_000)",
                "ranges_refused": "\(release.refusedRanges)",
            ]
            if release.refusedRanges > 0, !refusalLogged {
                refusalLogged = true
                logger.notice(
                    "idle: the kernel refused to take memory back for some ranges (madvise MADV_PAGEOUT needs Linux 5.4; a sandbox may refuse it); free heap was still returned",
                    metadata: metadata)
            } else {
                logger.debug("idle: gave back free heap and the pages of the program and its libraries", metadata: metadata)
            }
        }
    }

    private static func mebibytes(_ bytes: Int?) -> Logger.MetadataValue {
        bytes.map { "\(Double($0 / 1024) / 1024)" } ?? "unknown"
    }
}

import Logging
import MusterStore
import ServiceLifecycle

/// Keeps the feed current when other collectors append to the same event log (the scale-out
/// store), waking this collector's stream consumers for events it did not commit itself. With
/// the embedded store this collector is the only writer and the writer advances the feed; this
/// service is not run.
///
/// Two ways, side by side:
/// - **Following** (a `FollowedEventLog`: an etcd watch on the newest id), which wakes
///   consumers as soon as the store reports another collector's commit;
/// - **polling** the newest id every `interval`, which bounds the wait when following is down
///   (etcd unreachable, a watch restarting) and is how the feed learns that the store can
///   be read at all.
///
/// Either way the consumer then reads the events by id from the store, so nothing depends on
/// which collector committed them or on which way the id arrived. While the newest id cannot
/// be read, this collector's streams cannot know of new events: `EventRoutes` ends them after
/// `outOfSightLimit`, so their consumers go on to another collector.
struct EventFeedFollower: Service {
    let events: any EventLog
    let feed: EventFeed
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            if let followed = events as? any FollowedEventLog {
                group.addTask { await follow(followed) }
            }
            group.addTask { await poll() }
        }
    }

    private func poll() async {
        // One line when reading starts failing and one when it works again, not one per poll.
        var failing = false
        while !BehindIngest.isStopping {
            do {
                feed.sighted(try await events.latestEventID())
                if failing { logger.notice("reading the store's newest event id works again") }
                failing = false
            } catch {
                if !failing { logger.error("reading the store's newest event id failed; retrying", metadata: ["error": "\(error)"]) }
                failing = true
            }
            await BehindIngest.sleep(interval)
        }
    }

    /// Follows the newest id until shutdown, starting again a second after each stop (the
    /// poll covers the gap); a failure is logged once until following works again.
    private func follow(_ followed: any FollowedEventLog) async {
        let feed = feed
        var failing = false
        while !BehindIngest.isStopping {
            do {
                try await cancelWhenGracefulShutdown {
                    try await followed.followLatestEventID { feed.sighted($0) }
                }
                if failing { logger.notice("following the store's newest event id works again") }
                failing = false
            } catch where !BehindIngest.isStopping {
                if !failing {
                    logger.warning(
                        "following the store's newest event id failed; polling every \(interval) until it works again",
                        metadata: ["error": "\(error)"])
                }
                failing = true
            } catch {}
            await BehindIngest.sleep(.seconds(1))
        }
    }
}

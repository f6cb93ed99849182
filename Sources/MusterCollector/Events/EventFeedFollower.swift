import Logging
import MusterStore
import ServiceLifecycle

/// Keeps the feed current when other collectors append to the same event log (the scale-out
/// store): it reads the newest committed id every `interval` and wakes this collector's
/// stream consumers for events it did not commit itself. With the embedded store this
/// collector is the only writer and the writer advances the feed; this service is not run.
///
/// A consumer's wait ends at most `interval` after another collector's commit; the consumer
/// then reads the events by id from the store, so nothing depends on which collector
/// committed them. While the newest id cannot be read, this collector's streams cannot know
/// of new events: `EventRoutes` ends them after `outOfSightLimit`, so their consumers go on
/// to another collector.
struct EventFeedFollower: Service {
    let events: any EventLog
    let feed: EventFeed
    let interval: Duration
    let logger: Logger

    func run() async throws {
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
}

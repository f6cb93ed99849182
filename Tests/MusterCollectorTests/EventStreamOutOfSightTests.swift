import Logging
import MusterStore
import NIOCore
import Testing

@testable import MusterCollector

/// On a store other collectors write too, a collector that can no longer read the store's
/// newest event id ends its streams, so their consumers go on to another collector instead of
/// getting keepalives while the cluster changes unseen.
@Suite struct EventStreamOutOfSightTests {
    let base = try! EventStreamTests()

    /// Follows the stream for at most `within`: the error it ended with (nil: still open) and
    /// the keepalives it sent.
    func follow(_ feed: EventFeed, _ events: any EventLog, within: Duration) async -> (error: (any Error)?, keepalives: Int) {
        let query = EventRoutes.Query(cursor: 0, kinds: [], follow: true)
        let deadline = ContinuousClock.now + within
        struct TimeUp: Error {}
        var keepalives = 0
        do {
            try await EventRoutes.follow(query, events: events, feed: feed, heartbeat: .milliseconds(100), outOfSightLimit: .milliseconds(600)) { buffer in
                if String(buffer: buffer).contains(": keepalive") { keepalives += 1 }
                if ContinuousClock.now >= deadline { throw TimeUp() }
            }
            return (nil, keepalives)
        } catch is TimeUp {
            return (nil, keepalives)
        } catch {
            return (error, keepalives)
        }
    }

    @Test func aStreamEndsOnceTheStoreIsOutOfSightAndNotBefore() async throws {
        let collector = try await Collector(config: base.config, logger: Logger(label: "test"))
        let feed = collector.writer.feed
        // Embedded store, no follower: never out of sight, however long.
        #expect(feed.outOfSight == nil)
        let alone = await follow(feed, collector.store, within: .seconds(1.5))
        #expect(alone.error == nil)
        #expect(alone.keepalives >= 5)

        // Followed and read every 100 ms: the stream stays.
        feed.sighted(0)
        let reading = Task {
            while !Task.isCancelled {
                feed.sighted(0)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let followed = await follow(feed, collector.store, within: .seconds(1.5))
        reading.cancel()
        #expect(followed.error == nil)

        // No read for 600 ms: the stream ends, with why.
        let started = ContinuousClock.now
        let blind = await follow(feed, collector.store, within: .seconds(10))
        let error = try #require(blind.error as? EventRoutes.StoreOutOfSight)
        #expect(error.duration > .milliseconds(600))
        #expect("\(error)".contains("could not be read for"))
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}

/// One event of the stream, as stored: what the stream sends and an export lists.
public struct StoredEvent: Sendable, Equatable {
    /// The event's place in the stream: ids only grow, in commit order.
    public var id: Int64
    /// When it happened, nanoseconds since the epoch.
    public var t: Int64
    /// The kind as stored: an `EventKind` raw value in every store this version writes, passed
    /// on as it is otherwise (a newer collector's kind reaches consumers that know it).
    public var kind: String
    /// The body as JSON, exactly as it was appended (see `MusterWire`'s event bodies).
    public var body: String

    public init(id: Int64, t: Int64, kind: String, body: String) {
        self.id = id
        self.t = t
        self.kind = kind
        self.body = body
    }
}

/// A page of the event log, and where to continue from.
public struct EventPage: Sendable, Equatable {
    public var events: [StoredEvent]
    /// The cursor to read on from: the last event returned when the page is full, otherwise
    /// the horizon (events of other kinds up to it need not be read again).
    public var scannedThrough: Int64

    public init(events: [StoredEvent], scannedThrough: Int64) {
        self.events = events
        self.scannedThrough = scannedThrough
    }
}

/// The event stream's storage: the cluster's events in one total order.
///
/// Guarantees every backend gives:
///
/// - **Total order.** Each event has an id; ids only grow, in the order of the commits that
///   appended them (`IngestStore`). Two readers see the same events in the same order.
/// - **Stable pages.** `events(after:through:kinds:limit:)` returns only events with
///   `cursor < id <= horizon`, oldest first. For a horizon no newer than `latestEventID()`
///   (every event up to it committed), the answer never changes: reading page after page from
///   `scannedThrough` sees every event of the chosen kinds exactly once, in order, however
///   the pages fall and whatever is written meanwhile.
/// - Reads never block writers and see committed commits only.
public protocol EventLog: Sendable {
    /// The newest event id committed (0 when the log is empty).
    func latestEventID() async throws -> Int64

    /// Up to `limit` events with `cursor < id <= horizon` of the given kinds (all kinds when
    /// empty), oldest first.
    func events(after cursor: Int64, through horizon: Int64, kinds: [EventKind], limit: Int) async throws -> EventPage
}

/// An event log that other processes append to too (the scale-out store), whose newest id can
/// be followed as their commits land: what lets a collector wake its stream consumers for
/// another collector's events at once rather than at its next read of `latestEventID()`.
///
/// Following is an optimisation over polling, never the only source: it may stop at any time
/// (the store unreachable, its history compacted away), and a caller keeps polling
/// `latestEventID()` and starts following again.
public protocol FollowedEventLog: EventLog {
    /// Calls `sighted` with the newest event id now, then each time a commit changes it, until
    /// the task is cancelled; returns or throws when following stopped. Each id passed is the
    /// newest committed when the store reported it.
    func followLatestEventID(_ sighted: @escaping @Sendable (Int64) -> Void) async throws
}

extension EventPage {
    /// The page of `events`, read after `cursor` up to `horizon` with at most `limit` of them:
    /// a full page continues from its last event, any other from the horizon. The one rule,
    /// so every backend pages alike.
    public init(events: [StoredEvent], after cursor: Int64, through horizon: Int64, limit: Int) {
        let through = events.count == limit ? (events.last?.id ?? cursor) : max(cursor, horizon)
        self.init(events: events, scannedThrough: through)
    }
}

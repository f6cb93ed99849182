/// One event of the stream, as stored.
public struct StoredEvent: Sendable, Equatable {
    /// The event's place in the stream: ids only grow, in commit order.
    public var id: Int64
    public var kind: EventKind
    /// The body as JSON, exactly as it was appended (see `MusterWire`'s event bodies).
    public var body: String

    public init(id: Int64, kind: EventKind, body: String) {
        self.id = id
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

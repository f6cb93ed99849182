import MusterWire

/// One batch as the collector accepted it: its records, validated, and the event-journal
/// lines among them, already decoded.
public struct IngestBatch: Sendable {
    public var records: [LogRecord]
    /// The batch's event-journal lines by record index (the records of the journal source).
    public var journal: [Int: JournalEntry]

    public init(records: [LogRecord], journal: [Int: JournalEntry] = [:]) {
        self.records = records
        self.journal = journal
    }
}

/// What one `IngestStore.commit` did.
public struct IngestCommit: Sendable, Equatable {
    /// One per batch, in the order given.
    public var counts: [IngestCounts]
    /// The newest stream event the commit appended, or nil when it appended none.
    public var newestEvent: Int64?

    public init(counts: [IngestCounts], newestEvent: Int64?) {
        self.counts = counts
        self.newestEvent = newestEvent
    }
}

/// Where the collector's accepted lines go: the write side of a store.
///
/// Guarantees every backend gives:
///
/// - **A commit is one unit.** Every batch of a `commit` call, the membership ledger's changes
///   and the stream events their journal lines cause, are stored together or not at all. When
///   `commit` returns they are durable and visible to every reader of the store (`EventLog`,
///   `HistoryStore`); when it throws, none of them is.
/// - **A record is stored once.** A record's identity is (agent, source, generation, offset).
///   A record already stored — a resend after a lost acknowledgement, a copy in the same
///   group — is counted in `IngestCounts.duplicates`, not stored again, and its journal line is
///   not interpreted again, so the ledger sees each observation once.
/// - **Journal lines are applied in arrival order** (batch order, then record order), and the
///   ledger's rules (`ClusterLedger`) are the same in every backend.
/// - **Event ids follow commit order.** Ids of stream events only grow; an event is readable
///   through `EventLog` no earlier than the commit that appended it returned. Marks are
///   serialised with commits, so they take their place in the same order.
///
/// Calls may come concurrently from several tasks; the store serialises them. The collector
/// still gives it groups of batches from one writer (group commit) because one commit of many
/// batches costs about what one of a single batch does.
public protocol IngestStore: Sendable {
    /// Stores `batches` as one unit (see the guarantees above) and reports per batch.
    func commit(_ batches: [IngestBatch]) async throws -> IngestCommit

    /// Records a mark named `name` at `t` and announces it on the event stream. Throws
    /// `MarkError` for a name or note that breaks `Mark`'s rules, or a name already taken.
    func recordMark(name: String, note: String, at t: Int64) async throws -> Mark
}

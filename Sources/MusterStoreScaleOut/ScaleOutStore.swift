import MusterStore
import MusterStoreClickHouse
import MusterStoreEtcd
import MusterWire

/// The collector's store on the scale-out path: the lines in ClickHouse
/// (`ClickHouseLogWriter`), the cluster's state in etcd (`EtcdClusterState`). Any number of
/// collectors write through one each; none keeps state another needs.
///
/// A commit writes ClickHouse first, then etcd (docs/scale-out.md, "The order of writes"): the
/// history never shows a change whose line is not stored, and an event is on the stream only
/// once its lines are. Where this gives less than `IngestStore` states:
///
/// - **A commit that throws may be partly stored** (some shards' lines, some of its journal
///   lines' transactions). Its resend completes it and stores nothing twice: stored lines are
///   found by identity and counted as duplicates, interpreted journal lines by their keys.
/// - **A journal line is interpreted when its key is absent in etcd**, whether or not its row
///   was a duplicate in ClickHouse: so a commit cut between the two is completed by the resend.
///
/// Commits of one store are serialised (one at a time, in call order); marks go to etcd at
/// once and take their place among commits there.
public actor ScaleOutStore: CollectorStore, FollowedEventLog {
    public nonisolated let writer: ClickHouseLogWriter
    public nonisolated let state: EtcdClusterState
    /// Commits waiting for the one in progress, oldest first.
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var committing = false

    public init(writer: ClickHouseLogWriter, state: EtcdClusterState) {
        self.writer = writer
        self.state = state
    }

    /// Creates the tables (if absent) and the state's `seq` (if absent): what a collector does
    /// when it opens the store. Safe to run on every collector at every start.
    public nonisolated func create() async throws {
        try await writer.createTables()
        try await state.create()
    }

    // MARK: IngestStore

    public func commit(_ batches: [IngestBatch]) async throws -> IngestCommit {
        await takeTurn()
        defer { passTurn() }
        let stored = try await writer.store(batches)
        var lines: [JournalLine] = []
        for batch in batches {
            for index in batch.journal.keys.sorted() where batch.records.indices.contains(index) {
                lines.append(JournalLine(origin: batch.records[index].origin, entry: batch.journal[index]!))
            }
        }
        let newest = lines.isEmpty ? nil : try await state.interpret(lines)
        return IngestCommit(counts: stored.counts, newestEvent: newest)
    }

    public nonisolated func recordMark(name: String, note: String, at t: Int64) async throws -> Mark {
        try await state.recordMark(name: name, note: note, at: t)
    }

    private func takeTurn() async {
        if committing {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            committing = true
        }
    }

    /// Hands the turn to the oldest waiting commit, or frees it.
    private func passTurn() {
        if waiting.isEmpty {
            committing = false
        } else {
            waiting.removeFirst().resume()
        }
    }

    // MARK: EventLog

    public nonisolated func latestEventID() async throws -> Int64 {
        try await state.latestEventID()
    }

    public nonisolated func events(after cursor: Int64, through horizon: Int64, kinds: [EventKind], limit: Int) async throws -> EventPage {
        try await state.events(after: cursor, through: horizon, kinds: kinds, limit: limit)
    }

    public nonisolated func followLatestEventID(_ sighted: @escaping @Sendable (Int64) -> Void) async throws {
        try await state.followLatestEventID(sighted)
    }

    // MARK: StoreMaintenance

    /// Nothing to index: `--match` on this path narrows in ClickHouse and decides in logq, so
    /// search is complete without an index.
    public nonisolated func indexNextChunk(maxRows: Int) async throws -> SearchIndexProgress {
        SearchIndexProgress(indexed: 0, indexedThrough: 0, pending: 0)
    }

    /// Lines go a whole day at a time, once the day lies wholly before the cutoff (one day per
    /// call, both tables on every shard); history rows and events go in etcd by the SQLite
    /// store's rules, up to `maxRows` per call. A size limit is not offered: disks are sized
    /// per server.
    public nonisolated func pruneChunk(_ policy: RetentionPolicy, now: Int64, maxRows: Int, trimming: Bool) async throws -> PruneProgress {
        guard policy.maxDatabaseBytes == nil else {
            throw StoreError.unsupported("retention.max_database_mb on the ClickHouse and etcd store (size each server's disk instead)")
        }
        let now = Timestamp.clamped(now)
        var progress = PruneProgress()
        if let age = policy.logsMaxAge {
            let cutoff = Self.cutoff(now, age)
            let dropped = try await writer.dropOldestDay(before: cutoff)
            progress.logRows = dropped.lines
            progress.more = dropped.more
            // Journal keys only once their lines are gone: a resend of a line still stored must
            // find its key and not be interpreted again.
            if !dropped.more { try await state.pruneJournal(before: cutoff) }
        }
        if let age = policy.historyMaxAge {
            let pruned = try await state.pruneHistory(before: Self.cutoff(now, age), maxRows: maxRows)
            progress.historyRows = pruned.rows
            progress.more = progress.more || pruned.more
        }
        return progress
    }

    /// `now` less `age`, the earliest instant when a policy's age reaches past it.
    private static func cutoff(_ now: Int64, _ age: Int64) -> Int64 {
        let (cutoff, overflow) = now.subtractingReportingOverflow(age)
        return overflow ? .min : cutoff
    }
}

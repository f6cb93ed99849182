import MusterStore
import MusterWire

/// A journal line to interpret: its identity (which names its key, so it is interpreted once
/// however often it is resent, to whichever collector) and what it says.
public struct JournalLine: Sendable, Equatable {
    public var origin: Origin
    public var entry: JournalEntry

    public init(origin: Origin, entry: JournalEntry) {
        self.origin = origin
        self.entry = entry
    }
}

/// The cluster's shared state in etcd, as one collector among several writes and reads it:
/// the event stream's ids, the membership ledger, inventories, configurations and marks
/// (`StateKeys` has the layout).
///
/// Guarantees, across every collector writing to the same keys:
///
/// - **One total order.** Every commit is one etcd transaction that compares `seq`'s
///   revision with the one its ledger copy was read at and writes `seq`; so commits are
///   serialised as a single writer's would be, and event ids are dense and grow in commit order.
/// - **A journal line is interpreted once.** Its key is created in the transaction that
///   applies it, under a compare that it does not exist yet; a resend to any collector finds
///   it and changes nothing.
/// - **The ledger's rules are `ClusterLedger`'s**, applied to a copy of the rows as of the
///   last commit; a transaction that fails its compare (another collector committed) brings the
///   copy up to date and is interpreted again.
/// - **Each transaction is complete in itself**: journal lines are split, in arrival order,
///   into transactions of at most `maxTxnOps` writes (etcd's `--max-txn-ops`), each with its
///   lines' keys, rows and events, so a crash between two leaves the later lines to the resend.
///
/// One owner for the copy: this actor. Stream reads (`latestEventID`, `events`) read etcd
/// directly and never wait for a commit.
public actor EtcdClusterState: EventLog {
    public nonisolated let keys: StateKeys
    let client: EtcdClient
    let ledger: ClusterLedger
    /// The most operations one transaction may carry in a branch (etcd's `--max-txn-ops`).
    let maxTxnOps: Int
    var copy = LedgerCopy()
    var loaded = false

    /// How many times a commit is tried again after another collector's commit came first,
    /// before it gives up (a store with that much contention is misconfigured or looping).
    static let maxAttempts = 1_000

    public init(client: EtcdClient, keys: StateKeys, ledger: ClusterLedger = ClusterLedger(), maxTxnOps: Int = 128) throws(EtcdError) {
        guard maxTxnOps >= 4 else { throw .configuration("max_txn_ops must be at least 4, not \(maxTxnOps)") }
        self.client = client
        self.keys = keys
        self.ledger = ledger
        self.maxTxnOps = maxTxnOps
    }

    /// Makes the store exist (`seq` = 0) unless a collector did already; every collector may
    /// call it at every start.
    public nonisolated func create() async throws(EtcdError) {
        _ = try await client.txn(compare: [.version(keys.seq, equals: 0)], success: [.put(keys.seq, value: "0")])
    }

    // MARK: Commits

    /// Interprets `lines` (in arrival order), each once across every collector; returns the
    /// newest event the calls' transactions appended, or nil when they appended none. When it
    /// throws, the lines of the transactions that committed stay interpreted, and a resend
    /// interprets the rest.
    public func interpret(_ lines: [JournalLine]) async throws -> Int64? {
        var seen = Set<String>()
        // A line given twice in one call (a resend within one group) is one line.
        var pending = lines.map { (key: keys.journal($0.origin, at: $0.entry.t), entry: $0.entry) }.filter { seen.insert($0.key).inserted }[...]
        var newest: Int64?
        var attempts = 0
        while !pending.isEmpty {
            try await catchUp()
            var writes = LedgerWrites(copy: copy, keys: keys)
            var compares = [EtcdCompare.modRevision(keys.seq, equals: copy.revision)]
            for line in pending {
                let before = writes
                try ledger.apply([line.entry], to: &writes)
                writes.putJournalKey(line.key)
                // `seq` is one more write and its compare one more compare.
                if writes.writeCount + 1 > maxTxnOps || compares.count + 1 > maxTxnOps || writes.byteCount > Self.maxTxnBytes {
                    guard compares.count > 1 else {
                        throw EtcdError.configuration(
                            "one journal line needs \(writes.writeCount + 1) writes of \(writes.byteCount) bytes in one etcd transaction, more than max_txn_ops (\(maxTxnOps)) or \(Self.maxTxnBytes) bytes; raise etcd's --max-txn-ops and the store's max_txn_ops, or --max-request-bytes")
                    }
                    writes = before
                    break
                }
                compares.append(.version(line.key, equals: 0))
            }
            let chunk = pending.prefix(compares.count - 1)
            let result = try await client.txn(compare: compares, success: writes.finish())
            if result.succeeded {
                adopt(writes.copy, at: result.revision)
                if writes.appendedEvents > 0 { newest = writes.copy.seq }
                pending.removeFirst(chunk.count)
                attempts = 0
                continue
            }
            attempts += 1
            guard attempts < Self.maxAttempts else { throw EtcdError.contended(attempts: attempts, what: "a commit") }
            stale = true
            // Lines interpreted meanwhile (a resend that reached another collector first, or
            // this one's own earlier attempt) are left out; the rest are interpreted again.
            let interpreted = try await existing(chunk.map(\.key))
            if !interpreted.isEmpty {
                pending = chunk.filter { !interpreted.contains($0.key) } + pending.dropFirst(chunk.count)
            }
        }
        return newest
    }

    /// Records a mark and announces it on the stream, in one transaction ordered with commits.
    /// Throws `MarkError` for a name or note that breaks `Mark`'s rules or a name taken.
    public func recordMark(name: String, note: String, at t: Int64) async throws -> Mark {
        guard Mark.isValidName(name) else { throw MarkError.invalidName(name) }
        guard note.utf8.count <= Mark.maxNoteBytes, !note.contains(where: \.isNewline) else { throw MarkError.invalidNote }
        for _ in 0..<Self.maxAttempts {
            try await catchUp()
            if let existing = copy.marks[name] { throw MarkError.exists(existing) }
            var writes = LedgerWrites(copy: copy, keys: keys)
            let event = try ClusterLedger.appendEvent(kind: .mark, t: t, body: MarkEvent(name: name, note: note), to: &writes)
            let mark = Mark(id: event, name: name, t: t, note: note, event: event)
            writes.putMark(mark)
            let result = try await client.txn(
                compare: [.modRevision(keys.seq, equals: copy.revision), .version(keys.mark(name), equals: 0)], success: writes.finish())
            if result.succeeded {
                adopt(writes.copy, at: result.revision)
                return mark
            }
            stale = true
        }
        throw EtcdError.contended(attempts: Self.maxAttempts, what: "recording the mark")
    }

    /// The most bytes of keys and values one transaction writes: under etcd's default
    /// `--max-request-bytes` (1.5 MiB) once base64 and JSON have grown them by a third.
    static let maxTxnBytes = 1_000_000

    /// Takes `new`, the state as of `revision` after a transaction of this collector, unless
    /// the copy is newer already (another of its transactions or a catch-up finished first):
    /// the copy only moves forward, and its rows are always those of its revision.
    func adopt(_ new: LedgerCopy, at revision: Int64) {
        guard revision > copy.revision else { return }
        copy = new
        copy.revision = revision
    }

    /// Set when a compare failed: another collector committed since the copy was read.
    var stale = false

    /// Reads the ledger once, then what changed since the copy's revision whenever a compare
    /// said another collector committed.
    func catchUp() async throws(EtcdError) {
        guard !loaded || stale else { return }
        let read = try await Self.read(client: client, keys: keys, into: copy, since: loaded ? copy.revision : nil)
        if !loaded || read.revision >= copy.revision { copy = read }
        loaded = true
        stale = false
    }

    /// Which of `journalKeys` exist (one transaction of reads: one revision).
    private func existing(_ journalKeys: [String]) async throws(EtcdError) -> Set<String> {
        var found = Set<String>()
        var start = journalKeys.startIndex
        while start < journalKeys.endIndex {
            let part = journalKeys[start..<min(start + maxTxnOps, journalKeys.endIndex)]
            let result = try await client.txn(compare: [], success: part.map { .range($0, end: nil) })
            for range in result.ranges { found.formUnion(range?.kvs.map(\.key) ?? []) }
            start = part.endIndex
        }
        return found
    }

    // MARK: Reading

    /// `copy` brought up to date: with `since`, the rows written after that revision; without
    /// it, or when history was pruned after it (a read by revision shows no deletions), every
    /// row anew. `seq`, `pruned` and the rows are all read at one revision.
    static func read(client: EtcdClient, keys: StateKeys, into copy: LedgerCopy, since: Int64?) async throws(EtcdError) -> LedgerCopy {
        let heads = try await client.txn(compare: [], success: [.range(keys.seq), .range(keys.pruned)])
        let revision = heads.revision
        var since = since
        if let after = since, let pruned = heads.ranges.last??.kvs.first, pruned.modRevision > after { since = nil }
        var copy = since == nil ? LedgerCopy() : copy
        if let kv = heads.ranges.first??.kvs.first {
            copy.seq = try parseSeq(kv)
            copy.revision = kv.modRevision
        }
        for prefix in keys.ledgerPrefixes {
            var start = prefix
            let end = EtcdClient.prefixEnd(prefix)
            while true {
                let page = try await client.range(
                    start, end: end, revision: revision, minModRevision: since.map { $0 + 1 }, limit: pageSize)
                for kv in page.kvs { try copy.absorb(kv, keys: keys) }
                guard page.more, let last = page.kvs.last else { break }
                start = last.key + "\u{0}"
            }
        }
        return copy
    }

    /// Keys read per range request.
    static let pageSize = 1_000

    static func parseSeq(_ kv: EtcdKeyValue) throws(EtcdError) -> Int64 {
        guard let value = Int64(kv.text), value >= 0 else {
            throw .unexpectedAnswer(endpoint: "etcd", detail: "\(kv.key) holds '\(kv.text.prefix(40))', not an event id")
        }
        return value
    }

    /// The newest event id committed (0 for an empty store).
    public nonisolated func latestEventID() async throws(EtcdError) -> Int64 {
        guard let kv = try await client.range(keys.seq).kvs.first else { return 0 }
        return try Self.parseSeq(kv)
    }

    /// The newest event id now, then each time a commit writes `seq`, until the task is
    /// cancelled: `seq` read, then watched from the next revision in sessions of
    /// `watchSession`. Returns when the store is not made yet or `seq`'s history from there was
    /// compacted away (the caller starts again); throws when etcd fails.
    public nonisolated func followLatestEventID(
        watchSession: Duration = .seconds(60), _ sighted: @escaping @Sendable (Int64) -> Void
    ) async throws(EtcdError) {
        guard let kv = try await client.range(keys.seq).kvs.first else { return }
        sighted(try Self.parseSeq(kv))
        var next = kv.modRevision + 1
        while !Task.isCancelled {
            let end = try await client.watch(keys.seq, from: next, for: watchSession) { change in
                // A value that is not an id is left to `latestEventID()`, whose poll reports it.
                if let kv = change.kv, let id = try? Self.parseSeq(kv) { sighted(id) }
            }
            guard case .over(let after) = end else { return }
            next = after
        }
    }

    /// Up to `limit` events with `cursor < id <= horizon` of `kinds` (all when empty), oldest
    /// first; the page rule is `EventPage`'s.
    public nonisolated func events(after cursor: Int64, through horizon: Int64, kinds: [EventKind], limit: Int) async throws(EtcdError)
        -> EventPage
    {
        var found: [StoredEvent] = []
        if limit > 0, horizon > cursor {
            var start = keys.event(max(0, cursor) + 1)
            let end = horizon == .max ? EtcdClient.prefixEnd(keys.events) : keys.event(horizon + 1)
            scan: while true {
                let page = try await client.range(start, end: end, limit: max(limit, 100))
                for kv in page.kvs {
                    let event = try Self.event(kv, keys: keys)
                    guard kinds.isEmpty || kinds.contains(where: { $0.rawValue == event.kind }) else { continue }
                    found.append(event)
                    if found.count == limit { break scan }
                }
                guard page.more, let last = page.kvs.last else { break }
                start = last.key + "\u{0}"
            }
        }
        return EventPage(events: found, after: cursor, through: horizon, limit: limit)
    }

    /// An `events/<id>` row read back, its id from its key.
    static func event(_ kv: EtcdKeyValue, keys: StateKeys) throws(EtcdError) -> StoredEvent {
        guard kv.key.hasPrefix(keys.events), let id = Int64(kv.key.dropFirst(keys.events.count)), id > 0 else {
            throw .unexpectedAnswer(endpoint: "etcd", detail: "\(kv.key) is not an event's key")
        }
        let value = try StateValue.decode(StoredEventValue.self, kv)
        return StoredEvent(id: id, t: Timestamp.clamped(value.t), kind: value.kind, body: value.body)
    }

    /// Removes every key of the store (its namespace); for tests and benchmarks.
    public nonisolated func removeAll() async throws(EtcdError) {
        _ = try await client.txn(compare: [], success: [.deleteRange(keys.everything, end: EtcdClient.prefixEnd(keys.everything))])
    }
}

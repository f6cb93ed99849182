import MusterStore
import MusterWire
import NIOCore

/// What `ClickHouseLogWriter.store` did, per batch. (Which journal lines to interpret is not
/// the lines' business: their keys in etcd decide, `EtcdClusterState`.)
public struct StoredLines: Sendable, Equatable {
    /// One per batch, in the order given.
    public var counts: [IngestCounts]

    public struct BatchRecord: Sendable, Equatable, Hashable {
        public var batch: Int
        public var record: Int
    }
}

/// Stores accepted batches' lines in ClickHouse, each line once (`LogTables`).
///
/// - A line goes to the shard its identity hashes to (`LineIdentity.shard(of:)`), into the
///   first replica of that shard that answers; every copy of a line meets its other copies on
///   one shard, whichever collector received it.
/// - Before inserting, the writer asks that replica which of the lines it already holds, and
///   inserts only the others: a resend is counted as duplicates, not stored again. Two
///   collectors given the same resend at the same instant may both store it; the table keeps
///   the first copy when it merges and readers show one before that (`ClickHouseLogReader`).
/// - An insert that fails is retried on the shard's next replica. If the first replica did
///   store it before failing, the retry is an identical block, which the replicated table
///   drops (insert deduplication), except after ClickHouse's "unknown status" (a ZooKeeper
///   failure mid-insert), when the retry is stored as a same-key copy (`ClickHouseHTTP.run`);
///   if every replica fails, `store` throws, the collector does
///   not acknowledge the batch, and the agent's resend finds what did get stored.
/// - A replica that takes the lookup or the insert and does not start answering within
///   `ClickHouseHTTP.commitTimeout` (stopped, stalled) is passed over the same way, and tried
///   after the others for a while (`ReplicaTrouble`): a frozen replica holds up the commits
///   that found it so, not every commit.
public final class ClickHouseLogWriter: Sendable {
    public let http: ClickHouseHTTP
    private let compressor = BatchCompressor(level: 1, gzip: true)

    public init(http: ClickHouseHTTP) {
        self.http = http
    }

    /// Creates the database and tables on every server of the cluster where missing.
    public func createTables() async throws(ClickHouseError) {
        for statement in LogTables.create(http.servers) {
            _ = try await http.run(statement, on: http.servers.replicas, inDatabase: false)
        }
    }

    /// Drops the database with every table in it, on every server of the cluster: the store
    /// and all its lines are gone.
    public func dropDatabase() async throws(ClickHouseError) {
        _ = try await http.run("DROP DATABASE IF EXISTS \(http.servers.database) ON CLUSTER \(http.servers.cluster)", on: http.servers.replicas, inDatabase: false)
    }

    public func store(_ batches: [IngestBatch]) async throws(ClickHouseError) -> StoredLines {
        let shardCount = http.servers.shards.count
        // The first copy of each identity in this call, by shard; later copies are duplicates.
        var firstCopy: [LineIdentity: StoredLines.BatchRecord] = [:]
        var inOrder: [StoredLines.BatchRecord] = []  // the first copies, in the order given
        var candidates = Array(repeating: [StoredLines.BatchRecord](), count: shardCount)
        for (batchIndex, batch) in batches.enumerated() {
            for (recordIndex, record) in batch.records.enumerated() {
                let identity = LineIdentity(record.origin)
                guard firstCopy[identity] == nil else { continue }
                let place = StoredLines.BatchRecord(batch: batchIndex, record: recordIndex)
                firstCopy[identity] = place
                inOrder.append(place)
                candidates[identity.shard(of: shardCount)].append(place)
            }
        }
        // Ids in the order the lines were given, whichever shard each goes to (lines found
        // stored already leave gaps, which ids may have).
        let firstID = LineIDClock.next(firstCopy.count)
        var idOf: [StoredLines.BatchRecord: Int64] = [:]
        for (index, place) in inOrder.enumerated() {
            idOf[place] = firstID &+ Int64(index)
        }
        // The shards at once: each is its own servers, and a group waits for its slowest.
        let work = candidates.enumerated().filter { !$0.element.isEmpty }.map { shard, places in
            (replicas: http.servers.shards[shard], lines: places.map { ShardLine(record: batches[$0.batch].records[$0.record], id: idOf[$0]!, place: $0) })
        }
        var stored = Set<StoredLines.BatchRecord>()
        do {
            try await withThrowingTaskGroup(of: [StoredLines.BatchRecord].self) { group in
                for (replicas, lines) in work {
                    group.addTask { try await self.store(lines, on: replicas) }
                }
                for try await places in group { stored.formUnion(places) }
            }
        } catch let error as ClickHouseError {
            throw error
        } catch {
            throw .interrupted(server: "", detail: "\(error)")
        }
        var counts: [IngestCounts] = []
        for (batchIndex, batch) in batches.enumerated() {
            var accepted = 0
            for recordIndex in batch.records.indices {
                let place = StoredLines.BatchRecord(batch: batchIndex, record: recordIndex)
                guard stored.contains(place) else { continue }
                accepted += 1
            }
            counts.append(IngestCounts(accepted: accepted, duplicates: batch.records.count - accepted))
        }
        return StoredLines(counts: counts)
    }

    /// A line on its way to its shard: the record, its id, and where it was in the call.
    struct ShardLine: Sendable {
        var record: LogRecord
        var id: Int64
        var place: StoredLines.BatchRecord
    }

    /// Stores on one shard those of `lines` it does not hold yet; returns where they were.
    private func store(_ lines: [ShardLine], on replicas: [String]) async throws(ClickHouseError) -> [StoredLines.BatchRecord] {
        let present = try await storedIdentities(of: lines.map(\.record), on: replicas)
        let new = lines.filter { !present.contains(LineIdentity($0.record.origin)) }
        guard !new.isEmpty else { return [] }
        // The identities follow in the same insert (`ids_from_logs`). Should the server fail
        // between the two, lines lack their identities, and the resend stores them again (the
        // same key: merged, shown once); identities never go without their lines.
        _ = try await http.run(
            "INSERT INTO logs_local (\(Self.lineColumns)) FORMAT JSONEachRow", on: replicas, body: try body(new), gzip: true,
            answerWithin: http.commitTimeout)
        return new.map(\.place)
    }

    /// The identities among `records` that the shard already holds (`ids_local`'s primary key).
    private func storedIdentities(of records: [LogRecord], on replicas: [String]) async throws(ClickHouseError)
        -> Set<LineIdentity>
    {
        let wanted = Set(records.map { LineIdentity($0.origin) })
        var stored = Set<LineIdentity>()
        for condition in IdentityQuery.conditions(Array(wanted)) {
            let sql = "SELECT agent, src, gen, off FROM ids_local WHERE \(condition) FORMAT JSONEachRow"
            let (answer, replica) = try await http.run(
                sql, on: replicas, settings: LogTables.readSettings, answerWithin: http.commitTimeout)
            stored.formUnion(try IdentityQuery.decode(answer, from: replica).intersection(wanted))
        }
        return stored
    }

    static let lineColumns = "agent, src, gen, off, t, node, msg, fields, id, rank"

    /// The rows of `logs_local` as ClickHouse's JSONEachRow, gzip-compressed.
    private func body(_ lines: [ShardLine]) throws(ClickHouseError) -> ByteBuffer {
        let fields = StoredFieldsEncoder()
        var rows = JSONRows()
        rows.bytes.reserveCapacity(lines.count * 256)
        for line in lines {
            let record = line.record
            let id = line.id
            rows.begin()
            rows.string("agent", record.origin.agent)
            rows.string("src", record.origin.source)
            rows.string("gen", record.origin.generation)
            rows.number("off", record.origin.offset)
            rows.number("t", record.time)
            rows.string("node", record.node)
            let encodedFields: String?
            do {
                encodedFields = try fields.encode(record)
            } catch {
                throw .configuration("a record's fields cannot be encoded: \(error)")
            }
            rows.string("msg", record.message)
            rows.string("fields", encodedFields ?? "")
            rows.number("id", id)
            rows.number("rank", UInt64.max - UInt64(bitPattern: id))
            rows.end()
        }
        do {
            return try compressor.compress(rows.bytes)
        } catch {
            throw .configuration("cannot compress an insert: \(error)")
        }
    }
}

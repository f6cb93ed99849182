/// The tables holding the lines, defined once for the collectors that write them and the
/// readers (docs/scale-out.md has the reasons at length).
///
/// - `logs_local`, on every server: `ReplicatedReplacingMergeTree`, one replica set per shard
///   through the `{shard}` and `{replica}` macros. Sorted by `(node, t, identity)`: logq reads by
///   node and time range, so the primary key prunes for them, and the identity (agent, src,
///   gen, off) fixes node and t, so rows that repeat an identity repeat the whole key and
///   merge into one. `rank` is the version the merge keeps the largest of: `UInt64.max - id`,
///   so the copy kept is the first one stored and a line's id never changes after a merge.
///   Partitioned by day (UTC) so retention drops whole partitions.
/// - `ids_local`: each stored line's identity, sorted by it, with the line's node, time and
///   id. The identity does not always fix the time (an agent that lost its checkpoint reads
///   its files again and stamps lines without their own time anew), so "is this line stored?"
///   and "which lines are next to it in its file?" are asked here, where they are a primary-key
///   lookup, not of `logs_local`, where they would read every line of the node.
/// - `ids_from_logs`: a materialized view that writes each block inserted into `logs_local`
///   into `ids_local` within the same insert, so a collector sends each line once, and an
///   insert dropped as a duplicate block is dropped for both.
/// - `logs` and `ids`: `Distributed` tables over them, for reads; writes go straight to a
///   replica of the shard the collector chose, so copies of a line always meet on one shard.
///
/// Only what ClickHouse 18.16 (Debian 12) and current ClickHouse both accept: `Int64`
/// nanoseconds instead of `DateTime64`, plain `String`s, no skip indexes.
enum LogTables {
    /// How many recent blocks a shard remembers to drop an identical block sent again: the
    /// writer sends an insert whose outcome it does not know again, byte for byte, to the
    /// shard's next replica. (An agent's resend is not such a block: its lines get new ids; the
    /// stored-identity lookup catches those.)
    static let deduplicationWindow = 10_000

    static func create(_ servers: ClickHouseServers) -> [String] {
        let cluster = servers.cluster
        let database = servers.database
        return [
            "CREATE DATABASE IF NOT EXISTS \(database) ON CLUSTER \(cluster)",
            """
            CREATE TABLE IF NOT EXISTS \(database).logs_local ON CLUSTER \(cluster) (
                agent String, src String, gen String, off Int64,
                t Int64, node String, msg String, fields String,
                id Int64, rank UInt64
            ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/\(database)/logs_local', '{replica}', rank)
            PARTITION BY toYYYYMMDD(toDateTime(intDiv(t, 1000000000)))
            ORDER BY (node, t, agent, src, gen, off)
            SETTINGS index_granularity = 8192, replicated_deduplication_window = \(deduplicationWindow)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(database).ids_local ON CLUSTER \(cluster) (
                agent String, src String, gen String, off Int64,
                t Int64, node String, id Int64, rank UInt64
            ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/\(database)/ids_local', '{replica}', rank)
            PARTITION BY toYYYYMMDD(toDateTime(intDiv(t, 1000000000)))
            ORDER BY (agent, src, gen, off)
            SETTINGS index_granularity = 8192, replicated_deduplication_window = \(deduplicationWindow)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS \(database).ids_from_logs ON CLUSTER \(cluster) TO \(database).ids_local
            AS SELECT agent, src, gen, off, t, node, id, rank FROM \(database).logs_local
            """,
            """
            CREATE TABLE IF NOT EXISTS \(database).logs ON CLUSTER \(cluster) AS \(database).logs_local
            ENGINE = Distributed(\(cluster), \(database), logs_local)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(database).ids ON CLUSTER \(cluster) AS \(database).ids_local
            ENGINE = Distributed(\(cluster), \(database), ids_local)
            """,
        ]
    }

    /// The columns a reader selects, in the order `StoredLineRow` decodes.
    static let lineColumns = "id, t, node, src, agent, gen, off, msg, fields"

    /// Settings of every read: 64-bit integers as JSON numbers (18.16 quotes them by default),
    /// and each shard's replicas asked in the order listed, as the writer inserts: a line a
    /// collector stored is read back from the replica that took it, not from one that may
    /// not have fetched it yet.
    /// A shard that cannot be read is an error naming it, never a partial answer.
    static let readSettings = [
        "output_format_json_quote_64bit_integers": "0", "load_balancing": "in_order", "skip_unavailable_shards": "0",
    ]
}

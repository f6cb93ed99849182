import Foundation
import MusterWire

/// Retention of lines on ClickHouse: whole days, by partition (`LogTables` partitions both
/// tables by the day of `t`). A day goes once it lies wholly before the cutoff, so lines are
/// kept up to a day longer than the age asks; dropping a partition costs no rewrite of parts,
/// unlike a `DELETE` mutation. ClickHouse 18.16 has no TTL.
extension ClickHouseLogWriter {
    /// One step of pruning: drops the oldest day wholly before `cutoff` from both tables, on
    /// every shard (each through the first replica that answers; replication drops it on the
    /// others). Returns how many rows that day held (from the parts' row counts: a copy not yet
    /// merged counts too; counting distinct identities over a day could exceed the servers'
    /// memory and stop retention for good) and whether an older-than-cutoff day is left.
    public func dropOldestDay(before cutoff: Int64) async throws(ClickHouseError) -> (lines: Int, more: Bool) {
        let cutoffDay = Self.day(Timestamp.clamped(cutoff))
        var days = Set<Int64>()
        for replicas in http.servers.shards {
            let sql = """
                SELECT DISTINCT partition FROM system.parts
                WHERE database = \(ClickHouseSQL.literal(http.servers.database)) AND table IN ('logs_local', 'ids_local') AND active
                FORMAT JSONEachRow
                """
            let (answer, replica) = try await http.run(sql, on: replicas, settings: LogTables.readSettings, inDatabase: false)
            for row in try JSONAnswer.rows(PartitionRow.self, answer, from: replica) {
                guard let day = Self.day(partition: row.partition) else {
                    throw .unexpectedAnswer(server: replica, detail: "partition '\(row.partition.prefix(40))' is not a day (YYYYMMDD)")
                }
                days.insert(day)
            }
        }
        let old = days.filter { $0 < cutoffDay }.sorted()
        guard let oldest = old.first else { return (0, false) }
        let partition = Self.partition(day: oldest)
        var lines: Int64 = 0
        for replicas in http.servers.shards {
            let count = """
                SELECT sum(rows) AS lines FROM system.parts
                WHERE database = \(ClickHouseSQL.literal(http.servers.database)) AND table = 'logs_local' AND active
                  AND partition = \(ClickHouseSQL.literal(partition))
                FORMAT JSONEachRow
                """
            let (answer, replica) = try await http.run(count, on: replicas, settings: LogTables.readSettings, inDatabase: false)
            let counted = try JSONAnswer.rows(CountRow.self, answer, from: replica).first?.lines ?? 0
            lines.saturatingAdd(Int64(clamping: counted))
            // Identities first: a failure between the two leaves lines without identities (a
            // resend stores them again, shown once), never identities without their lines.
            for table in ["ids_local", "logs_local"] {
                _ = try await http.run("ALTER TABLE \(table) DROP PARTITION \(partition)", on: replicas)
            }
        }
        return (Int(clamping: lines), old.count > 1)
    }

    private struct PartitionRow: Decodable {
        var partition: String
    }

    private struct CountRow: Decodable {
        var lines: UInt64
    }

    static let nanosPerDay = 86_400 * Timestamp.nanosPerSecond

    /// Days since the epoch of `t` (rounded down: a time before the epoch is in day -1).
    static func day(_ t: Int64) -> Int64 {
        t >= 0 ? t / nanosPerDay : (t + 1) / nanosPerDay - 1
    }

    /// The partition `toYYYYMMDD` gives for a day since the epoch.
    static func partition(day: Int64) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(day) * 86_400)
        let parts = utc.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d%02d%02d", parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1)
    }

    /// A partition's day since the epoch; nil for anything that is not an eight-digit date.
    static func day(partition: String) -> Int64? {
        guard partition.utf8.count == 8, partition.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let number = Int(partition)
        else { return nil }
        let components = DateComponents(year: number / 10_000, month: number / 100 % 100, day: number % 100)
        guard (1...12).contains(components.month!), (1...31).contains(components.day!), let date = utc.date(from: components) else {
            return nil
        }
        return Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}

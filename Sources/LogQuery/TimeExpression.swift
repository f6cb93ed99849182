import Foundation
import MusterWire

/// The time syntax of every logq option that takes a time.
///
/// | form | meaning |
/// |---|---|
/// | `now` | now |
/// | `10m`, `-1h`, `10m ago`, `1h30m`, `500ms`, `2d`, `1w` | that long before now |
/// | `today`, `yesterday` | local midnight starting that day |
/// | `14:05`, `14:05:30` | that local time today |
/// | `2026-11-21` | local midnight starting that date |
/// | `2026-11-21T14:05:00Z`, `…14:05:00.123456789+01:00` | RFC 3339, as logq prints |
/// | `@1763733900`, `@1763733900.25` | Unix seconds |
public enum TimeExpression {
    /// `timeZone` nil means the local one, looked up only for the local forms (loading it costs
    /// more than a whole `logq members --at` query).
    public static func parse(_ text: String, now: Int64 = Timestamp.now(), timeZone: TimeZone? = nil)
        throws(QueryError) -> Int64
    {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let lowered = trimmed.lowercased()
        if lowered == "now" { return now }
        if lowered == "today" || lowered == "yesterday" {
            let timeZone = timeZone ?? .current
            let midnight = startOfDay(containing: now, timeZone: timeZone)
            return lowered == "today" ? midnight : startOfDay(containing: midnight - 1, timeZone: timeZone)
        }
        if lowered.hasPrefix("@") {
            guard let seconds = Decimal(string: String(lowered.dropFirst())), seconds >= 0 else {
                throw .badTime(text, "after '@' give Unix seconds, e.g. @1763733900")
            }
            let nanos = NSDecimalNumber(decimal: seconds * Decimal(1_000_000_000)).int64Value
            return nanos
        }
        if let nanos = Timestamp.parseRFC3339(trimmed) { return nanos }
        let timeZone = timeZone ?? .current
        if let nanos = parseClock(lowered, now: now, timeZone: timeZone) { return nanos }
        if let nanos = parseDate(lowered, timeZone: timeZone) { return nanos }
        var body = lowered
        if body.hasSuffix(" ago") { body = String(body.dropLast(4)).trimmingCharacters(in: .whitespaces) }
        if body.hasPrefix("-") { body = String(body.dropFirst()) }
        if let duration = parseDuration(body) { return now - duration }
        throw .badTime(
            text, "use e.g. 10m, -1h, '10m ago', today, yesterday, 14:05, 2026-11-21T14:05:00Z or @1763733900")
    }

    /// `1h30m`, `90s`, `500ms`, `2d`, `1w` in nanoseconds.
    static func parseDuration(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [
            ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
            ("d", 86_400_000_000_000), ("w", 604_800_000_000_000),
        ]
        var rest = Substring(text)
        var total: Int64 = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            // "ms" is listed before "m" and "s", so it wins where it applies.
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            total += product
        }
        return total
    }

    private static func parseClock(_ text: String, now: Int64, timeZone: TimeZone) -> Int64? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isNumber) }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), hour < 24, minute < 60
        else { return nil }
        let second = parts.count == 3 ? Int(parts[2])! : 0
        guard second < 60 else { return nil }
        return startOfDay(containing: now, timeZone: timeZone)
            + Int64(hour * 3600 + minute * 60 + second) * Timestamp.nanosPerSecond
    }

    private static func parseDate(_ text: String, timeZone: TimeZone) -> Int64? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Calendar rolls 2026-02-30 over into March; refuse dates that do not exist instead.
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: day)),
            calendar.component(.day, from: date) == day
        else { return nil }
        return Int64(date.timeIntervalSince1970) * Timestamp.nanosPerSecond
    }

    private static func startOfDay(containing nanos: Int64, timeZone: TimeZone) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let date = Date(timeIntervalSince1970: Double(nanos / Timestamp.nanosPerSecond))
        return Int64(calendar.startOfDay(for: date).timeIntervalSince1970) * Timestamp.nanosPerSecond
    }
}

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
    ///
    /// The result always lies in `Timestamp.supportedRange` (1970 through 2261): a form that
    /// names an instant outside it, or a duration too long to count in nanoseconds, is a
    /// `badTime` error (exit 65) saying so, never an overflow.
    public static func parse(_ text: String, now: Int64 = Timestamp.now(), timeZone: TimeZone? = nil)
        throws(QueryError) -> Int64
    {
        let nanos = try parseUnchecked(text, now: now, timeZone: timeZone)
        guard Timestamp.supportedRange.contains(nanos) else { throw outOfRange(text) }
        return nanos
    }

    /// The hint of every time that parses but lies outside what logq can count.
    static func outOfRange(_ text: String) -> QueryError {
        .badTime(
            text,
            "outside the times logq handles, \(Timestamp.format(Timestamp.supportedRange.lowerBound)) "
                + "to \(Timestamp.format(Timestamp.supportedRange.upperBound))")
    }

    private static func parseUnchecked(_ text: String, now: Int64, timeZone: TimeZone?) throws(QueryError) -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let lowered = trimmed.lowercased()
        if lowered == "now" { return now }
        if lowered == "today" || lowered == "yesterday" {
            let timeZone = timeZone ?? .current
            let midnight = try startOfDay(containing: now, timeZone: timeZone, text: text)
            return lowered == "today" ? midnight : try startOfDay(containing: midnight - 1, timeZone: timeZone, text: text)
        }
        if lowered.hasPrefix("@") {
            return try unixSeconds(lowered.dropFirst(), text: text)
        }
        if let nanos = Timestamp.parseRFC3339(trimmed) { return nanos }
        if isOutOfRangeRFC3339(trimmed) { throw outOfRange(text) }
        let timeZone = timeZone ?? .current
        if let nanos = try parseClock(lowered, now: now, timeZone: timeZone, text: text) { return nanos }
        if let nanos = try parseDate(lowered, timeZone: timeZone, text: text) { return nanos }
        var body = lowered
        if body.hasSuffix(" ago") { body = String(body.dropLast(4)).trimmingCharacters(in: .whitespaces) }
        if body.hasPrefix("-") { body = String(body.dropFirst()) }
        switch parseDuration(body) {
        case .nanos(let duration)?:
            // `now` may be anything a caller passes; the difference is checked, not trusted.
            let (start, overflow) = now.subtractingReportingOverflow(duration)
            guard !overflow else { throw outOfRange(text) }
            return start
        case .tooLong?:
            throw outOfRange(text)
        case nil:
            throw .badTime(
                text, "use e.g. 10m, -1h, '10m ago', today, yesterday, 14:05, 2026-11-21T14:05:00Z or @1763733900")
        }
    }

    /// `@1763733900`, `@1763733900.25`: digits, at most one fraction, no sign or exponent.
    private static func unixSeconds(_ digits: Substring, text: String) throws(QueryError) -> Int64 {
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) })
        else { throw .badTime(text, "after '@' give Unix seconds, e.g. @1763733900") }
        // Too many digits for an Int64 is out of range too, not a syntax error.
        let lastSecond = Timestamp.supportedRange.upperBound / Timestamp.nanosPerSecond
        guard let seconds = Int64(whole), seconds <= lastSecond else { throw outOfRange(text) }
        var fraction: Int64 = 0
        if parts.count == 2 {
            // Nanoseconds: the first nine digits, padded; further ones are below what a time holds.
            let nine = parts[1].prefix(9)
            fraction = Int64(nine)! * Int64(pow(10, Double(9 - nine.count)))
        }
        return seconds * Timestamp.nanosPerSecond + fraction
    }

    /// Whether RFC 3339 text that `parseRFC3339` refused is refused only for its instant: the
    /// same text in the year 2000 (a leap year, so February 29th stays valid) parses. Then the
    /// error says so, instead of suggesting the forms logq reads.
    private static func isOutOfRangeRFC3339(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count > 4, bytes[0..<4].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return false }
        return Timestamp.parseRFC3339(String(decoding: Array("2000".utf8) + bytes[4...], as: UTF8.self)) != nil
    }

    /// What a duration's text says: a length, or more nanoseconds than an `Int64` holds.
    enum ParsedDuration: Equatable {
        case nanos(Int64)
        case tooLong
    }

    /// `1h30m`, `90s`, `500ms`, `2d`, `1w` in nanoseconds; nil when the text is not a duration.
    static func parseDuration(_ text: String) -> ParsedDuration? {
        let units: [(String, Int64)] = [
            ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
            ("d", 86_400_000_000_000), ("w", 604_800_000_000_000),
        ]
        var rest = Substring(text)
        var total: Int64 = 0
        var tooLong = false
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCIIDigit }
            guard !digits.isEmpty else { return nil }
            rest = rest.dropFirst(digits.count)
            // "ms" is listed before "m" and "s", so it wins where it applies.
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            // Keep reading after an overflow: `99999999999h x` is still not a duration.
            guard !tooLong, let value = Int64(digits) else {
                tooLong = true
                continue
            }
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            tooLong = overflow || sumOverflow
            total = sum
        }
        return tooLong ? .tooLong : .nanos(total)
    }

    private static func parseClock(_ text: String, now: Int64, timeZone: TimeZone, text original: String) throws(QueryError)
        -> Int64?
    {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCIIDigit) }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), hour < 24, minute < 60
        else { return nil }
        let second = parts.count == 3 ? Int(parts[2])! : 0
        guard second < 60 else { return nil }
        return try startOfDay(containing: now, timeZone: timeZone, text: original)
            + Int64(hour * 3600 + minute * 60 + second) * Timestamp.nanosPerSecond
    }

    private static func parseDate(_ text: String, timeZone: TimeZone, text original: String) throws(QueryError) -> Int64? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        guard Timestamp.supportedYears.contains(year) else { throw outOfRange(original) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Calendar rolls 2026-02-30 over into March; refuse dates that do not exist instead.
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: day)),
            calendar.component(.day, from: date) == day
        else { return nil }
        return try nanos(date, text: original)
    }

    /// Local midnight starting the day that holds `nanos`, which lies in the supported range
    /// (or a nanosecond before it, for `yesterday`).
    private static func startOfDay(containing nanos: Int64, timeZone: TimeZone, text: String) throws(QueryError) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let seconds = nanos / Timestamp.nanosPerSecond - (nanos % Timestamp.nanosPerSecond < 0 ? 1 : 0)
        return try self.nanos(calendar.startOfDay(for: Date(timeIntervalSince1970: Double(seconds))), text: text)
    }

    /// A calendar's answer in nanoseconds, or the out-of-range error when it has none.
    private static func nanos(_ date: Date, text: String) throws(QueryError) -> Int64 {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let limit = Double(Timestamp.supportedRange.upperBound / Timestamp.nanosPerSecond)
        guard seconds.isFinite, seconds >= -limit, seconds <= limit else { throw outOfRange(text) }
        return Int64(seconds) * Timestamp.nanosPerSecond
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanosecond UTC timestamps and their one textual form, RFC 3339 with nine fraction digits,
/// which every Muster tool prints and parses back without loss.
public enum Timestamp {
    public static let nanosPerSecond: Int64 = 1_000_000_000

    /// The current wall-clock time in nanoseconds since the Unix epoch.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * nanosPerSecond + Int64(spec.tv_nsec)
    }

    /// `2026-11-21T20:31:50.123456789Z`
    public static func format(_ nanos: Int64) -> String {
        var seconds = nanos / nanosPerSecond
        var fraction = nanos % nanosPerSecond
        if fraction < 0 {
            fraction += nanosPerSecond
            seconds -= 1
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Digits straight into 30 bytes: printing a million lines formats a million times.
        return String(unsafeUninitializedCapacity: 30) { buffer in
            var index = 0
            func put(_ value: Int, _ width: Int) {
                var value = value
                for position in stride(from: index + width - 1, through: index, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                index += width
            }
            func put(_ character: Unicode.Scalar) {
                buffer[index] = UInt8(ascii: character)
                index += 1
            }
            put(Int(parts.tm_year) + 1900, 4); put("-"); put(Int(parts.tm_mon) + 1, 2); put("-"); put(Int(parts.tm_mday), 2)
            put("T"); put(Int(parts.tm_hour), 2); put(":"); put(Int(parts.tm_min), 2); put(":"); put(Int(parts.tm_sec), 2)
            put("."); put(Int(fraction), 9); put("Z")
            return index
        }
    }

    /// Parses RFC 3339 (`2026-11-21T20:31:50Z`, `…50.5+01:00`, `…50.123456789Z`, a space instead of `T`),
    /// keeping up to nanosecond precision. Returns nil when the text is not RFC 3339 or names an
    /// instant outside ``supportedRange``: the text comes from outside, and a year like 9999
    /// has no nanosecond count.
    public static func parseRFC3339(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += count
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        var fraction: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 9 { fraction = fraction * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9)..<9 { fraction *= 10 }
        }
        var offsetSeconds = 0
        if expect("Zz") {
            offsetSeconds = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), hours < 24, expect(":"), let minutes = number(2), minutes < 60 else { return nil }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        return nanos(year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                     nanosecond: fraction, offsetSeconds: offsetSeconds)
    }

    /// The years a Muster timestamp may name: from the Unix epoch through 2261. `Int64`
    /// nanoseconds reach 1677-09-21 to 2262-04-11, but only a span of half that keeps every
    /// *difference* of two times representable too; taking it from the epoch (what a clock
    /// that was never set says) leaves 100 days of headroom above the last instant. Parsers
    /// reject a time outside it instead of trapping, so `a - b` of two parsed times, or a parsed
    /// time plus a day, can never overflow; ``supportedRange`` is the same bound in nanoseconds.
    public static let supportedYears: ClosedRange<Int> = 1970...2261

    /// 1970-01-01T00:00:00Z through 2261-12-31T23:59:59.999999999Z, in nanoseconds. Every parser
    /// of outside times (the wire, syslog, s6-log labels, logq's time expressions) keeps within
    /// it, and readers of stored rows clamp to it (``clamped(_:)``).
    public static let supportedRange: ClosedRange<Int64> = {
        let last = Int64(daysFromCivil(year: supportedYears.upperBound + 1, month: 1, day: 1)) * 86_400
        return 0...(last * nanosPerSecond - 1)
    }()

    /// `nanos` moved into ``supportedRange``: for stored or computed times read back, whose
    /// extremes would otherwise overflow the arithmetic of histograms, charts and windows.
    public static func clamped(_ nanos: Int64) -> Int64 {
        min(max(nanos, supportedRange.lowerBound), supportedRange.upperBound)
    }

    /// UTC nanoseconds of a civil date and time at a UTC offset, or nil when a part is out of
    /// range (month 13, February 30th, hour 24) or the instant falls outside ``supportedYears``.
    /// `second` may be 60 (a leap second, counted as the next second's first instant).
    public static func nanos(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int,
                             nanosecond: Int64 = 0, offsetSeconds: Int = 0) -> Int64? {
        guard supportedYears.contains(year), (1...12).contains(month), day >= 1,
            day <= daysInMonth(year: year, month: month), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second), (0..<nanosPerSecond).contains(nanosecond),
            (-86_400...86_400).contains(offsetSeconds)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        // The year check keeps `seconds` within a day of the range, far from overflowing; an
        // offset may still carry the instant just past either end.
        let (product, overflow) = seconds.multipliedReportingOverflow(by: nanosPerSecond)
        guard !overflow else { return nil }
        let result = product + nanosecond
        return supportedRange.contains(result) ? result : nil
    }

    public static func isLeapYear(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// The proleptic Gregorian year that a Unix second falls in (UTC).
    public static func year(ofUnixSeconds seconds: Int64) -> Int {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400) + 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

import Foundation
import MusterWire

/// Text helpers of the HTML report: escaping (names and messages come from untrusted agents)
/// and the few number and time forms the page prints, all independent of locale and clock so
/// the same store gives the same page.
enum ReportText {
    /// Escapes text for HTML content and for attribute values in double or single quotes.
    /// Control characters other than tab and newline become U+FFFD: they have no business in a
    /// page and some (NUL) are not allowed in one.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// At most `limit` characters, with an ellipsis when cut.
    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(max(limit - 1, 1))) + "…"
    }

    /// A coordinate or size in an SVG attribute: at most one decimal, no trailing `.0`.
    static func number(_ value: Double) -> String {
        // A rate from stored counters can be anything: beyond Int64 it is printed by `%g`.
        let tenths = (value * 10).rounded()
        guard tenths.isFinite else { return "0" }
        guard let integer = Int64(exactly: tenths) else { return String(format: "%g", value) }
        if integer % 10 == 0 { return String(integer / 10) }
        let sign = integer < 0 ? "-" : ""
        let magnitude = integer.magnitude
        return "\(sign)\(magnitude / 10).\(magnitude % 10)"
    }

    /// A rate for people: `0`, `0.4`, `12.5`, `1,250`.
    static func rate(_ value: Double) -> String {
        if value >= 100, let whole = Int64(exactly: value.rounded()) { return grouped(whole) }
        return number(value)
    }

    /// `1234567` → `1,234,567`.
    static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// `01:22:55.821` (UTC): the time of day to the millisecond.
    static func clock(_ t: Int64) -> String {
        let full = Timestamp.format(t)  // 2026-11-21T20:31:50.123456789Z
        let characters = Array(full)
        return String(characters[11..<23])
    }

    /// `2026-11-21 01:22:55.821 UTC`.
    static func dateTime(_ t: Int64) -> String {
        let full = Array(Timestamp.format(t))
        return String(full[0..<10]) + " " + String(full[11..<23]) + " UTC"
    }

    /// `2026-11-21`.
    static func date(_ t: Int64) -> String {
        String(Array(Timestamp.format(t))[0..<10])
    }

    /// A duration in words: `850 ms`, `12.4 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
    static func duration(_ nanos: Int64) -> String {
        let milliseconds = nanos / 1_000_000
        if milliseconds < 1_000 { return "\(milliseconds) ms" }
        let seconds = Double(nanos) / 1e9
        if seconds < 60 { return "\(number(seconds)) s" }
        let whole = Int64(seconds)
        if whole < 3_600 { return "\(whole / 60) min \(whole % 60) s" }
        if whole < 86_400 { return "\(whole / 3_600) h \(whole % 3_600 / 60) min" }
        return "\(whole / 86_400) d \(whole % 86_400 / 3_600) h"
    }

    /// `<time datetime="RFC 3339" title="RFC 3339">01:22:55.821</time>`: short to read,
    /// exact on hover, and the exact form parses back with `logq --since`.
    static func timeElement(_ t: Int64, long: Bool = false) -> String {
        let exact = Timestamp.format(t)
        return "<time datetime=\"\(exact)\" title=\"\(exact)\">\(long ? dateTime(t) : clock(t))</time>"
    }

    /// Orders names the way people count: s2 before s10. Ties fall back to plain order, so the
    /// result is the same everywhere.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        let result = a.compare(b, options: [.numeric])
        return result == .orderedSame ? a < b : result == .orderedAscending
    }
}

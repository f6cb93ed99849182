import Foundation
import MusterWire
import Testing

@testable import LogQuery

@Suite struct TimeExpressionTests {
    // 2026-11-21T20:31:50.25Z
    let now: Int64 = 1_795_293_110_250_000_000
    let utc = TimeZone(identifier: "UTC")!
    let second: Int64 = 1_000_000_000

    func parse(_ text: String, _ zone: TimeZone? = nil) throws(QueryError) -> Int64 {
        try TimeExpression.parse(text, now: now, timeZone: zone ?? utc)
    }

    @Test func relativeForms() throws {
        #expect(try parse("now") == now)
        #expect(try parse("10m") == now - 600 * second)
        #expect(try parse("-1h") == now - 3600 * second)
        #expect(try parse("10m ago") == now - 600 * second)
        #expect(try parse("1h30m") == now - 5400 * second)
        #expect(try parse("500ms") == now - 500_000_000)
        #expect(try parse("2d") == now - 2 * 86_400 * second)
        #expect(try parse("1w") == now - 7 * 86_400 * second)
    }

    @Test func calendarFormsUseTheLocalZone() throws {
        let midnight: Int64 = 1_795_219_200 * 1_000_000_000  // 2026-11-21T00:00:00Z
        #expect(try parse("today") == midnight)
        #expect(try parse("yesterday") == midnight - 86_400 * second)
        #expect(try parse("14:05") == midnight + (14 * 3600 + 5 * 60) * second)
        #expect(try parse("14:05:30") == midnight + (14 * 3600 + 5 * 60 + 30) * second)
        #expect(try parse("2026-11-21") == midnight)
        let paris = TimeZone(identifier: "Europe/Paris")!
        #expect(try parse("today", paris) == midnight - 3600 * second)
        #expect(try parse("14:05", paris) == midnight - 3600 * second + (14 * 3600 + 5 * 60) * second)
    }

    @Test func absoluteForms() throws {
        #expect(try parse("@1763733900") == 1_763_733_900 * second)
        #expect(try parse("@1763733900.25") == 1_763_733_900_250_000_000)
        #expect(try parse("2026-11-21T20:31:50.25Z") == now)
        #expect(try parse("2026-11-21T21:31:50.25+01:00") == now)
    }

    /// Whatever logq prints must be accepted back as input, to the nanosecond.
    @Test func printedTimestampsParseBack() throws {
        for value in [now, now + 1, 1_700_000_000_000_000_001, 0] {
            #expect(try parse(Timestamp.format(value)) == value)
        }
    }

    /// Before: `9999-01-01` and `5000000w5000000w` trapped (overflow), `@99999999999999`
    /// wrapped to a wrong instant. Now each is a clear error, exit 65.
    @Test(arguments: [
        "@99999999999999", "@18446744073709551616", "-999999999h", "100000000d ago", "5000000w5000000w", "9223372036854775807ms",
        "99999999999999999999s", "9999-01-01T00:00:00Z", "2262-04-11T23:47:16Z", "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
        "9999-01-01", "2262-01-01", "1969-12-31", "0001-01-01", "2261-12-31T23:30:00-01:00", "1970-01-01T00:30:00+01:00",
        "300y", "2026-13-01T00:00:00Z",
    ])
    func timesOutsideTheSupportedRangeAreAClearError(text: String) {
        do {
            let nanos = try parse(text)
            Issue.record("'\(text)' gave \(nanos)")
        } catch {
            #expect(error.exitCode == 65)
            #expect(error.description.hasPrefix("cannot read time '\(text)': "))
            if text != "300y" && text != "2026-13-01T00:00:00Z" {
                #expect(error.description.contains("outside the times logq handles"), "\(error)")
            }
        }
    }

    @Test func theEndsOfTheSupportedRangeParse() throws {
        #expect(try parse("1970-01-01T00:00:00Z") == 0)
        #expect(try parse("2261-12-31T23:59:59.999999999Z") == Timestamp.supportedRange.upperBound)
        #expect(try parse("@0") == 0)
        #expect(try parse("@1763733900.1234567891") == 1_763_733_900_123_456_789)
        // A `now` at the ends (a clock far off) gives errors, not overflows.
        #expect(throws: QueryError.self) { try TimeExpression.parse("1d", now: 0, timeZone: utc) }
        #expect(throws: QueryError.self) { try TimeExpression.parse("today", now: Int64.max, timeZone: utc) }
        #expect(throws: QueryError.self) { try TimeExpression.parse("14:05", now: Int64.min, timeZone: utc) }
        #expect(throws: QueryError.self) { try TimeExpression.parse("yesterday", now: 0, timeZone: utc) }
        #expect(throws: QueryError.self) { try TimeExpression.parse("now", now: Int64.max, timeZone: utc) }
    }

    @Test(arguments: ["", "soon", "10x", "25:00", "12:61", "@abc", "2026-13-01", "2026-02-30", "m10", "1h-5m"])
    func nonsenseIsAClearError(text: String) {
        #expect(throws: QueryError.self) { try parse(text) }
        do {
            _ = try parse(text)
        } catch {
            #expect(error.description.contains("cannot read time"))
            #expect(error.exitCode == 65)
        }
    }
}

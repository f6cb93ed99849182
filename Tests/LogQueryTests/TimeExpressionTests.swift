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

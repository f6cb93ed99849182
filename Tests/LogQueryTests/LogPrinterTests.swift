import Foundation
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// `logq logs` as the executable runs it: the lines, then (following) the ones stored later.
@Suite struct LogPrinterTests {
    let store: QueryStoreFixture
    let outputPath: String

    init() throws {
        store = try QueryStoreFixture()
        try store.lines("s1", [(0, "first"), (1, "second")])
        outputPath = store.directory + "/out.txt"
    }

    func printed(_ body: (inout BufferedOutput) throws -> Void) throws -> [String] {
        let descriptor = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var output = BufferedOutput(fileDescriptor: descriptor)
        try body(&output)
        output.flush()
        return try String(contentsOfFile: outputPath, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func followingPrintsTheLinesStoredLaterInArrivalOrder() throws {
        var printer = LogPrinter(search: LogSearch(store: try store.reader()), format: .csv, colors: nil)
        printer.pollInterval = .milliseconds(1)
        var rounds = 0
        var filter = LogFilter()
        filter.tail = 1
        let lines = try printed { output in
            try printer.print(filter, follow: true, to: &output) {
                rounds += 1
                // Stored later but stamped earlier: following goes by arrival, not by time.
                if rounds == 2 { try? store.lines("s2", [(-5, "late"), (7, "later")]) }
                return rounds < 4
            }
        }
        #expect(lines.map { $0.split(separator: ",").last.map(String.init) ?? "" } == ["message", "second", "late", "later"])
        #expect(rounds == 4)
    }

    @Test func contextGroupsAreSeparatedInText() throws {
        try store.lines("s2", [(5, "hit one"), (6, "a"), (7, "b"), (8, "c"), (9, "hit two")])
        let printer = LogPrinter(search: LogSearch(store: try store.reader()), format: .text, colors: nil)
        var filter = LogFilter()
        filter.grep = "hit"
        let lines = try printed { output in try printer.print(filter, context: 1, to: &output) }
        // Each line without its time.
        #expect(lines.map { $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? "" } == [
            "s2 webapp: hit one", "s2 webapp- a", "--", "s2 webapp- c", "s2 webapp: hit two",
        ])
    }
}

/// A store's refusals in logq's words: the same messages and exit codes whatever the backend.
@Suite struct StoreErrorWordingTests {
    @Test func eachRefusalKeepsLogqsMessageAndExitCode() {
        #expect(QueryError(.missing(location: "/x")) == .databaseMissing("/x"))
        #expect(QueryError(.unreadable(location: "/x", detail: "why")).exitCode == 74)
        #expect(QueryError(.unknownNode("s9", known: ["s1"])) == .unknownNode("s9", known: ["s1"]))
        #expect(QueryError(.invalidPattern("([", detail: "bad")) == .badRegex("([", "bad"))
        #expect(
            QueryError(.nothingToMatch("/ -")).description
                == "--match '/ -' has no letters or digits to search for; use --grep for punctuation")
        #expect(
            QueryError(.timeLimitOutOfRange(-1, longest: 86_400)).description
                == "--timeout must be between 0 (no limit) and 86400 seconds, not -1.0")
        #expect(QueryError(.timedOut(seconds: 0.5)).exitCode == 75)
        #expect(QueryError(.invalidStatement("x")) == .badSQL("x"))
    }

    /// A backend without a SQL console: `logq sql` says so and exits 69, it does not crash.
    @Test func aMissingCapabilityIsAClearErrorWithItsOwnExitCode() {
        let error = QueryError(.unsupported("a SQL console (logq sql and logq run)"))
        #expect(error.description == "this store does not offer a SQL console (logq sql and logq run)")
        #expect(error.exitCode == 69)
    }
}

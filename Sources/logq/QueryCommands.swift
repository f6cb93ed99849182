import ArgumentParser
import Foundation
import LogQuery
import MusterStore
import MusterWire

extension NodeColors.Mode: ExpressibleByArgument {}

/// `--format` and `--color`, for every command that prints rows.
struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Output: text, json (one object per line) or csv.")
    var format: OutputFormat = .text

    @Option(name: .long, help: "Colour node names in text output: auto (a terminal, and NO_COLOR not set), always or never.")
    var color: NodeColors.Mode = .auto

    /// The colours to paint with: none for JSON or CSV.
    var colors: NodeColors? {
        format == .text ? NodeColors.resolve(color) : nil
    }
}

/// `--since` and `--until`. A time may start with '-' (`--since -1h`): the value after the
/// option is taken as it is, never read as another option.
struct TimeRangeOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "From this time (inclusive).")
    var since: String?

    @Option(name: .long, parsing: .unconditional, help: "Up to this time (exclusive).")
    var until: String?

    /// Both ends read as logq times relative to `now`.
    func range(now: Int64) throws(QueryError) -> (since: Int64?, until: Int64?) {
        (try parseTime(since, now: now), try parseTime(until, now: now))
    }
}

/// Runs a command's body; a `QueryError` is printed as one line and becomes the exit code.
func reportingErrors(_ body: () throws(QueryError) -> Void) throws {
    do {
        try body()
    } catch {
        throw fail(error)
    }
}

/// `--timeout`, for the commands that run the user's SQL.
struct SQLLimitOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Stop a statement after this many seconds of work (0: no limit); exit 75 when stopped.")
    var timeout: Double = 5

    func open(_ store: StoreOptions) throws(QueryError) -> SQLSession {
        try store.location.openSQLConsole(timeout: timeout)
    }
}

struct Sql: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: StoreLocation.sqlSummary,
        discussion: StoreLocation.sqlReference + " " + """
            Text and CSV show control characters in values as \\xNN, and a CSV text cell starting with =, +, -, @, tab or \
            carriage return (not a plain number like -5) gets a leading ' so spreadsheets do not run it; JSON has the exact values. \
            A statement still running after --timeout seconds of work is stopped: exit 75.
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: "The statement (one).")
    var statement: String

    @OptionGroup var limits: SQLLimitOptions

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { () throws(QueryError) in
            let console = try limits.open(store)
            var printer = ChunkedTablePrinter(format: output.format, colors: output.colors)
            try console.query(statement) { printer.add($0) }
            printer.finish()
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a saved query, queries/NAME.sql, with its parameters.",
        discussion: """
            The queries folder: --queries DIR, else MUSTER_QUERIES, else ./queries, else share/muster/queries beside \
            logq's folder, else the queries folder of the source tree logq was built in. 'logq run --list' shows each \
            query with its parameters; time parameters take any logq time (10m, 14:05, RFC 3339 …). Output and \
            --timeout as for 'logq sql'.
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: "The query's name (the file NAME.sql).")
    var name: String?

    @Option(name: .long, help: "A parameter of the query, KEY=VALUE (repeatable).")
    var param: [String] = []

    @Flag(name: .long, help: "List the saved queries with their descriptions and parameters.")
    var list = false

    @Option(name: .long, help: "The queries folder (env MUSTER_QUERIES).")
    var queries: String?

    @OptionGroup var limits: SQLLimitOptions

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { () throws(QueryError) in
            let library = try QueryLibrary.locate(explicit: queries)
            if list {
                printLines(library.list().render(output.format))
                return
            }
            guard let name else { throw .badArgument("name a query to run ('logq run --list' shows them)") }
            let query = try library.query(named: name)
            let values = try query.bindings(try param.map(SavedQuery.parseParameter), now: Timestamp.now())
            let console = try limits.open(store)
            var printer = ChunkedTablePrinter(format: output.format, colors: output.colors)
            try console.query(query.statement, parameters: values) { printer.add($0) }
            printer.finish()
        }
    }
}

struct Hist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hist",
        abstract: "A histogram of lines (or error lines) per interval, stacked by node.",
        discussion: """
            Without --since it starts at the first line, without --until it ends at the last one (or now, with --since). \
            --errors counts error lines: 5xx for parsed HTTP logs, otherwise lines saying error, fail, fatal, panic … \
            (the rule of 'logq run errors-per-minute'). JSON and CSV give one row per interval and node.
            """)

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "The interval: 30s, 1m, 5m, 1h …")
    var by: String = "1m"

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .long, help: "Only these nodes (repeatable).")
    var node: [String] = []

    @Flag(name: .long, help: "Count error lines only.")
    var errors = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { () throws(QueryError) in
            let interval = try Histogram.parseInterval(by)
            let now = Timestamp.now()
            let (since, until) = try range.range(now: now)
            let histogram = try Histogram.build(
                store: try store.location.openHistory(), interval: interval, since: since, until: until, nodes: node,
                errorsOnly: errors, now: now)
            printLines(output.format == .text ? histogram.textLines(colors: output.colors) : histogram.table().render(output.format))
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Lines and bytes per node and source, ingest rate, search index lag, database size, what retention pruned.")

    @OptionGroup var store: StoreOptions

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { () throws(QueryError) in
            let stats = try StoreStats.read(try store.location.openHistory())
            guard output.format == .text else { return printTable(stats.table(), output) }
            printLines(stats.sourceTable().render(.text, colors: output.colors) + [""] + stats.summaryTable(readable: true).render(.text))
        }
    }
}

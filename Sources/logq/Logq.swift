import ArgumentParser
import Foundation
import LogQuery
import MusterStore
import MusterWire

@main
struct Logq: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logq",
        abstract: "Query the cluster's history stored by muster-collector.",
        discussion: """
            Examples:
              # errors a node served in the last 10 minutes
              logq logs --since 10m --node s1 --grep ' 5[0-9][0-9] '
              # a phrase on every node, with context
              logq logs --match 'deadlock detected' -C 3
              # follow HAProxy's request log
              logq logs -f --source haproxy
              # who was in the cluster at 14:05 today
              logq members --at 14:05
              # joins, leaves and failures of the last hour
              logq timeline --since 1h
              # every HAProxy configuration applied
              logq configs
              # one task's logs, membership and configs as files
              logq export --out evidence --mark task-6
              # the whole history on one page
              logq report --out report.html
              # the saved queries
              logq run --list

            Times: now, 10m, -1h, '10m ago', 1h30m, today, yesterday, 14:05, 2026-11-21, RFC 3339 (as printed), \
            @<unix seconds>; from 1970-01-01 through 2261-12-31 UTC. Stored times outside that range are counted \
            at its nearer end by hist and report.

            Output: text and CSV show control characters from the store (ESC, CR, DEL, C1…) as \\xNN, \
            keeping tab and, in log messages, line feed; a CSV text cell starting with =, +, -, @, tab or \
            carriage return (not a plain number like -5) gets a leading ' so a spreadsheet shows it instead of \
            running it. JSON has the exact text, JSON-escaped.

            Exit codes: 0 done; 64 a command line logq cannot parse (an unknown option, a missing value, \
            a number that is not one); 65 bad input (argument values, times, SQL, unknown names); 66 no database; \
            69 collector unreachable, or a command this store does not offer; 73 a file not written (export goes on with the others); 74 the store \
            unreadable; 75 a statement stopped by --timeout; 77 token refused.
            """,
        subcommands: [
            Logs.self, Members.self, Nodes.self, Timeline.self, Inspect.self, Configs.self, MarkCommand.self, Marks.self,
            Export.self, Report.self, Sql.self, Run.self, Hist.self, Stats.self,
        ])
}

/// Options every subcommand shares.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The collector's SQLite file (env MUSTER_DB; default ./muster.sqlite).")
    var db: String?

    @Option(
        name: .long,
        help: "A collector's config file whose store: section names ClickHouse and etcd (env MUSTER_STORE); instead of --db.")
    var store: String?

    var location: StoreLocation {
        get throws(QueryError) {
            let environment = ProcessInfo.processInfo.environment
            if db != nil, store != nil { throw .badArgument("give --db (a SQLite file) or --store (a config file), not both") }
            if db == nil, store == nil, environment["MUSTER_DB"] != nil, environment["MUSTER_STORE"] != nil {
                throw .badArgument("MUSTER_DB and MUSTER_STORE are both set: unset one, or choose with --db or --store")
            }
            // An explicit --db wins over MUSTER_STORE, as --store does over MUSTER_DB.
            if db == nil, let file = store ?? environment["MUSTER_STORE"] {
                return try StoreLocation(configFile: file)
            }
            return StoreLocation(path: db ?? environment["MUSTER_DB"] ?? "muster.sqlite")
        }
    }

    /// Runs a cluster-history query with the current time; a `QueryError` is printed as one
    /// line and becomes the exit code.
    func withHistory(_ body: (ClusterHistory, _ now: Int64) throws(QueryError) -> Void) throws {
        try reportingErrors { () throws(QueryError) in try body(ClusterHistory(store: try location.openHistory()), Timestamp.now()) }
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// Prints a QueryError as one line on stderr and exits with its code. The message may quote
/// stored names (`known: …`), so its control characters are shown, not sent.
func fail(_ error: QueryError) -> ExitCode {
    FileHandle.standardError.write(Data("logq: \(DisplayText.escapingControls(error.description, keepingLineFeeds: false))\n".utf8))
    return ExitCode(error.exitCode)
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print log lines from every node, interleaved in time order.",
        discussion: """
            Times (--since, --until) accept: now, 10m, -1h, '10m ago', today, yesterday, 14:05, \
            2026-11-21, RFC 3339 (as printed), @<unix seconds>, from 1970 through 2261; anything else is \
            refused with exit 65.
            """)

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "Only these nodes (repeatable).")
    var node: [String] = []

    @Option(name: .long, help: "Only these sources (repeatable).")
    var source: [String] = []

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .long, help: "Only lines matching this regular expression.")
    var grep: String?

    @Option(name: .long, help: "Only lines containing these words in this order (any case; full-text index).")
    var match: String?

    @Option(name: .long, help: "At most this many lines, oldest first.")
    var limit: Int?

    @Option(name: .long, help: "Only the newest this many lines.")
    var tail: Int?

    @Flag(name: [.short, .long], help: "Keep printing new lines as they arrive.")
    var follow = false

    @Option(name: [.customShort("C"), .long], help: "Also print N lines before and after each matching line, from its file (like grep -C).")
    var context: Int?

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors(runQuery)
    }

    private func runQuery() throws(QueryError) {
        if limit.map({ $0 < 0 }) == true || tail.map({ $0 < 0 }) == true {
            throw .badArgument("--limit and --tail must not be negative")
        }
        if limit != nil, tail != nil { throw .badArgument("use either --limit or --tail, not both") }
        if context.map({ $0 < 0 }) == true { throw .badArgument("--context must not be negative") }
        if context != nil, follow { throw .badArgument("use either --context or --follow, not both") }
        let now = Timestamp.now()
        var filter = LogFilter()
        filter.nodes = node
        filter.sources = source
        (filter.since, filter.until) = try range.range(now: now)
        filter.grep = grep
        filter.match = match
        filter.limit = limit
        filter.tail = tail
        let printer = LogPrinter(search: LogSearch(store: try store.location.openHistory()), format: output.format, colors: output.colors)
        var out = BufferedOutput()
        try printer.print(filter, context: context, follow: follow, to: &out)
    }
}

/// Parses an optional time option the one way every subcommand does.
func parseTime(_ text: String?, now: Int64) throws(QueryError) -> Int64? {
    try text.map { text throws(QueryError) in try TimeExpression.parse(text, now: now) }
}

/// Prints a table in the format and colours `--format` and `--color` ask for.
func printTable(_ table: Table, _ output: OutputOptions) {
    printLines(table.render(output.format, colors: output.colors))
}

struct Members: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "Who was in the cluster at an instant (default: now): name, address, role, status, since.",
        discussion: "Times accept the same forms as 'logq logs --since', including timestamps as printed.")

    @OptionGroup var store: StoreOptions

    @Option(name: .long, parsing: .unconditional, help: "The instant (default: now).")
    var at: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.withHistory { history, now throws(QueryError) in
            printTable(try history.members(at: try parseTime(at, now: now) ?? now), output)
        }
    }
}

struct Nodes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "Every node, docker-ps style: name, address, role, state, since, services, image.")

    @OptionGroup var store: StoreOptions

    @Option(name: .long, parsing: .unconditional, help: "The instant (default: now).")
    var at: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.withHistory { history, now throws(QueryError) in
            printTable(try history.nodes(at: try parseTime(at, now: now) ?? now), output)
        }
    }
}

struct Timeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Joins, leaves, failures and updates in order, with the node that observed each.")

    @OptionGroup var store: StoreOptions

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .long, help: "Only these members (repeatable).")
    var member: [String] = []

    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.withHistory { history, now throws(QueryError) in
            let (since, until) = try range.range(now: now)
            printTable(try history.timeline(since: since, until: until, members: member), output)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "What a node reported itself to be (addresses, role, image, s6 services), as JSON.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "The node's name.")
    var node: String

    @Option(name: .long, parsing: .unconditional, help: "The instant (default: now).")
    var at: String?

    func run() throws {
        try store.withHistory { history, now throws(QueryError) in
            guard let body = try history.inventory(of: node, at: try parseTime(at, now: now) ?? now) else {
                throw .badArgument("no inventory from node '\(node)' (is its agent's 'inventory' section configured?)")
            }
            // The body is JSON as the agent sent it: controls it may hold escaped the JSON way.
            print(DisplayText.escapingControls(body, keepingLineFeeds: true, notation: .json))
        }
    }
}

struct Configs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configs",
        abstract: "The load balancer's configuration history: every render and apply.",
        subcommands: [List.self, Show.self, Diff.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Versions with time, method (runtime API or reload), outcome, servers and what triggered them.")

        @OptionGroup var store: StoreOptions
        @Option(name: .long, help: "Only this load balancer node.") var node: String?
        @OptionGroup var output: OutputOptions

        func run() throws {
            try store.withHistory { history, _ throws(QueryError) in printTable(try history.configs(node: node), output) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the haproxy.cfg of one version.")

        @OptionGroup var store: StoreOptions
        @Argument(help: "The version number.") var version: Int
        @Option(name: .long, help: "The load balancer node, when there are several.") var node: String?

        func run() throws {
            try store.withHistory { history, _ throws(QueryError) in
                printLines([DisplayText.escapingControls(try history.configText(version: version, node: node), keepingLineFeeds: true)])
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "diff", abstract: "What changed between two versions.")

        @OptionGroup var store: StoreOptions
        @Argument(help: "The older version.") var from: Int
        @Argument(help: "The newer version.") var to: Int
        @Option(name: .long, help: "The load balancer node, when there are several.") var node: String?

        func run() throws {
            try store.withHistory { history, _ throws(QueryError) in
                let diff = ConfigDiff.unified(
                    from: try history.configText(version: from, node: node), to: try history.configText(version: to, node: node),
                    fromLabel: "version \(from)", toLabel: "version \(to)")
                printLines([diff.isEmpty ? "(versions \(from) and \(to) are identical)" : DisplayText.escapingControls(diff, keepingLineFeeds: true)])
            }
        }
    }
}

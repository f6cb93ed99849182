import ArgumentParser
import Foundation
import LogQuery

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page: timeline, request rate per server, config diffs, nodes, tasks.",
        discussion: """
            The page has inline CSS and SVG only (no script, nothing fetched), so it can be \
            attached to a lab report as it is. Without --since/--until it covers the whole \
            history; --mark NAME covers one task (from the mark to the next one). The same store \
            and arguments give the same file.
            """)

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "The HTML file to write.")
    var out: String

    @OptionGroup var range: TimeRangeOptions

    @Option(name: .long, help: "Only this task: from the mark to the next one (not with --since/--until).")
    var mark: String?

    func run() throws {
        try store.withHistory { history, now throws(QueryError) in
            let (since, until) = try range.range(now: now)
            let scope = ReportScope(since: since, until: until, mark: mark)
            let summary = try ClusterReport(store: history.store).write(scope, to: out)
            print(summary.line(path: out))
        }
    }
}

import ArgumentParser
import Foundation
import LogQuery
import MusterStore
import MusterStoreSQLite
import MusterWire

struct MarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mark",
        abstract: "Mark the start of a task (e.g. task-2): the collector records the instant.",
        discussion: """
            A task lasts until the next mark; 'logq export' writes one folder per task. The mark \
            goes through the collector (the store's only writer): set --collector-url and \
            --token-file, or MUSTER_COLLECTOR_URL and MUSTER_TOKEN_FILE (or MUSTER_TOKEN), as \
            'images/cluster env' prints them. An https collector with its own CA needs --ca-file \
            or MUSTER_CA_FILE.
            """)

    @Argument(help: "The task's name: letters, digits, '.', '_', '-' (it becomes a folder name).")
    var name: String

    @Option(name: .long, help: "One line saying what the task is.")
    var note: String = ""

    @Option(name: .long, help: "The collector's URL (env MUSTER_COLLECTOR_URL).")
    var collectorURL: String?

    @Option(name: .long, help: "A file holding the ingest token (env MUSTER_TOKEN_FILE; or MUSTER_TOKEN).")
    var tokenFile: String?

    @Option(name: .long, help: "PEM CA bundle an https collector is verified against, instead of the system store (env MUSTER_CA_FILE).")
    var caFile: String?

    @Option(name: .long, help: "Output: text or json.")
    var format: OutputFormat = .text

    func run() async throws {
        do {
            let environment = ProcessInfo.processInfo.environment
            guard let url = collectorURL ?? environment["MUSTER_COLLECTOR_URL"] else {
                throw QueryError.badArgument("no collector: set --collector-url or MUSTER_COLLECTOR_URL (e.g. eval \"$(images/cluster env)\")")
            }
            let token = try Self.token(file: tokenFile ?? environment["MUSTER_TOKEN_FILE"], fallback: environment["MUSTER_TOKEN"])
            let ca = (caFile ?? environment["MUSTER_CA_FILE"]).flatMap { $0.isEmpty ? nil : $0 }
            let mark = try await MarkClient(collectorURL: url, token: token, caFile: ca).mark(name: name, note: note)
            switch format {
            case .json:
                print("{\"id\":\(mark.id),\"name\":\(JSONText.quoted(mark.name)),\"time\":\(JSONText.quoted(mark.time)),\"t\":\(mark.t),\"event\":\(mark.event)}")
            default:
                print(DisplayText.escapingControls("marked \(mark.name) at \(mark.time) (event \(mark.event))", keepingLineFeeds: false))
            }
        } catch let error as QueryError {
            throw fail(error)
        }
    }

    static func token(file: String?, fallback: String?) throws(QueryError) -> String {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw .badArgument("cannot read the token file \(file)")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw .badArgument("the token file \(file) is empty") }
            return token
        }
        guard let fallback, !fallback.isEmpty else {
            throw .badArgument("no token: set --token-file, MUSTER_TOKEN_FILE or MUSTER_TOKEN")
        }
        return fallback
    }
}

struct Marks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "marks", abstract: "The marks (tasks) in order: name, time, note.")

    @OptionGroup var store: StoreOptions

    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.withHistory { history, _ throws(QueryError) in printTable(try history.marks(), output) }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the evidence of each task to a folder: node logs, membership, configs, node tables, inventory.",
        discussion: """
            One folder per mark (DIR/task-2/…; 'all' when there are no marks). Exporting the same \
            history twice gives identical files. DIR must be new, empty, or an earlier export. \
            Names from the store become file names of letters, digits, '.', '_' and '-' only, at \
            most 100 bytes (a longer one ends in '~' and a hash). A file that cannot be written \
            is reported and the export goes on; then it ends with exit 73.
            """)

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "The folder to write.")
    var out: String

    @Option(name: .long, help: "Only this task (repeatable).")
    var mark: [String] = []

    func run() throws {
        try store.withHistory { history, _ throws(QueryError) in
            let result = try EvidenceExport(database: history.database).export(to: out, tasks: mark)
            var table = Table(columns: ["task", "nodes", "lines", "changes", "configs"])
            table.rows = result.summaries.map { summary in
                [.text("\(out)/\(summary.folder)"), .text(summary.nodes.joined(separator: ",")), .integer(Int64(summary.lines)),
                 .integer(Int64(summary.changes)), .integer(Int64(summary.configs))]
            }
            printLines(table.render(.text))
            // Each file that failed on its own line, then the summary that sets the exit code.
            for failure in result.failures { _ = fail(failure) }
            if !result.failures.isEmpty { throw .exportIncomplete(directory: out, failed: result.failures.count) }
        }
    }
}

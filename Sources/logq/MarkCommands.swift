import ArgumentParser
import Foundation
import LogQuery

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
            let token = try MarkClient.token(file: tokenFile ?? environment["MUSTER_TOKEN_FILE"], fallback: environment["MUSTER_TOKEN"])
            let ca = (caFile ?? environment["MUSTER_CA_FILE"]).flatMap { $0.isEmpty ? nil : $0 }
            let mark = try await MarkClient(collectorURL: url, token: token, caFile: ca).mark(name: name, note: note)
            print(mark.line(format))
        } catch let error as QueryError {
            throw fail(error)
        }
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
            let result = try EvidenceExport(store: history.store).export(to: out, tasks: mark)
            printLines(result.table(directory: out).render(.text))
            // Each file that failed on its own line, then the summary that sets the exit code.
            for failure in result.failures { _ = fail(failure) }
            if !result.failures.isEmpty { throw .exportIncomplete(directory: out, failed: result.failures.count) }
        }
    }
}

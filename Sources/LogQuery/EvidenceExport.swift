import Foundation
import MusterStore
import MusterWire

/// `logq export --out DIR`: the evidence people used to collect by hand (`docker logs` per
/// container, `cat haproxy.cfg` after each step, `docker ps`, `docker inspect`), one folder
/// per task. A task starts at its mark and lasts until the next one; the last lasts to the
/// end of the history. Without marks the whole history is one task, `all`.
///
/// ```
/// DIR/index.log                 the tasks: from, until, nodes, lines, changes, configs
/// DIR/task-2/mark.json          name, from, until, note
///           /ha.log, s1.log …   each node's lines in the task (as `logq logs` prints them)
///           /membership.log     the membership changes (as `logq timeline`)
///           /events.log         every stream event: changes, user events, configs, marks
///           /configs.log        the configuration renders and applies (as `logq configs`)
///           /1_haproxy.cfg …    each configuration version of the task, numbered in order
///           /nodes.log          the node table at the start and after each change
///           /inspect/s1.json    each node's inventory at the end of the task
/// ```
///
/// Files hold only stored data, in a defined order, so exporting the same history twice gives
/// identical files. A task folder is replaced as a whole, and only inside a folder this
/// command made (it holds `.logq-export`), so stale files never linger and nothing else is
/// ever overwritten. Every file and folder name taken from stored data (tasks, nodes, load
/// balancers) goes through `SafeFileNames`. A file that cannot be written is a failure of its
/// own: the export goes on with the others and `index.log`, and the result lists it.
public struct EvidenceExport {
    public let store: any HistoryStore

    public init(store: any HistoryStore) {
        self.store = store
    }

    /// A stretch of history: [since, until), either end open.
    public struct Task: Sendable, Equatable {
        public var name: String
        public var since: Int64?
        public var until: Int64?
        public var note: String
    }

    /// What one task folder received.
    public struct Summary: Sendable, Equatable {
        public var task: Task
        /// The task's folder under DIR: its name made safe (`SafeFileNames`).
        public var folder: String
        public var nodes: [String]
        public var lines: Int
        public var changes: Int
        public var configs: Int
    }

    static let markerFile = ".logq-export"
    /// The journal's lines are exported as membership and events, not as a node's log.
    static let journalSource = JournalEntry.sourceID

    /// The tasks the marks define (all of them, or those named), oldest first.
    public func tasks(named names: [String] = []) throws(QueryError) -> [Task] {
        var tasks = try ClusterHistory(store: store).tasks().map { task in
            Task(name: task.mark.name, since: task.since, until: task.until, note: task.mark.note)
        }
        if tasks.isEmpty { tasks = [Task(name: "all", since: nil, until: nil, note: "the whole history (no marks)")] }
        for name in names where !tasks.contains(where: { $0.name == name }) {
            throw .unknownMark(name, known: tasks.map(\.name))
        }
        return names.isEmpty ? tasks : tasks.filter { names.contains($0.name) }
    }

    /// What an export wrote, and each file it could not write (with the reason).
    public struct Result: Sendable, Equatable {
        public var summaries: [Summary]
        public var failures: [QueryError]

        /// What `logq export --out directory` prints: each task folder written, with its counts.
        public func table(directory: String) -> Table {
            var table = Table(columns: ["task", "nodes", "lines", "changes", "configs"])
            table.rows = summaries.map { summary in
                [.text("\(directory)/\(summary.folder)"), .text(summary.nodes.joined(separator: ",")), .integer(Int64(summary.lines)),
                 .integer(Int64(summary.changes)), .integer(Int64(summary.configs))]
            }
            return table
        }
    }

    /// Throws when nothing can be exported (unknown task, DIR unusable, the store unreadable);
    /// a file or task folder that cannot be written is one of the result's `failures`.
    public func export(to directory: String, tasks names: [String] = []) throws(QueryError) -> Result {
        let chosen = Set(try tasks(named: names).map(\.name))
        // Folder names come from all tasks, so exporting one task names its folder as a full export does.
        var folders = SafeFileNames(reserved: ["index.log"])
        let tasks = try tasks().map { (task: $0, folder: folders.name(for: $0.name)) }.filter { chosen.contains($0.task.name) }
        let root = URL(fileURLWithPath: directory)
        try prepare(root)
        var summaries: [Summary] = []
        var failures = Failures()
        for (task, folder) in tasks {
            if let summary = try export(task, into: root.appendingPathComponent(folder), folder: folder, failures: &failures) {
                summaries.append(summary)
            }
        }
        if names.isEmpty {
            var index = Table(columns: ["task", "from", "until", "nodes", "lines", "changes", "configs", "note"])
            index.rows = summaries.map { summary in
                [.text(summary.task.name), summary.task.since.map { .text(Timestamp.format($0)) } ?? .text("-"),
                 summary.task.until.map { .text(Timestamp.format($0)) } ?? .text("-"), .text(summary.nodes.joined(separator: ",")),
                 .integer(Int64(summary.lines)), .integer(Int64(summary.changes)), .integer(Int64(summary.configs)),
                 .text(summary.task.note)]
            }
            failures.attempt { () throws(QueryError) in try write(index.render(.text), to: root.appendingPathComponent("index.log")) }
        }
        return Result(summaries: summaries, failures: failures.errors)
    }

    /// The files an export could not write; each attempt's error is noted and the export goes on.
    struct Failures {
        private(set) var errors: [QueryError] = []

        mutating func attempt(_ body: () throws(QueryError) -> Void) {
            do {
                try body()
            } catch {
                note(error)
            }
        }

        mutating func note(_ error: QueryError) {
            errors.append(error)
        }
    }

    /// Creates DIR, or accepts it when empty or made by an earlier export.
    private func prepare(_ root: URL) throws(QueryError) {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: root.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw .cannotWrite(path: root.path, detail: "exists and is not a directory") }
            let entries = (try? manager.contentsOfDirectory(atPath: root.path)) ?? []
            guard entries.isEmpty || entries.contains(Self.markerFile) else {
                throw .cannotWrite(
                    path: root.path,
                    detail: "the directory is not empty and was not made by logq export (no \(Self.markerFile)); choose a new or empty one")
            }
        }
        do {
            try manager.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw .cannotWrite(path: root.path, detail: "\(error.localizedDescription)")
        }
        try write(["logq export: each folder is replaced by the next export"], to: root.appendingPathComponent(Self.markerFile))
    }

    /// One task's folder; nil when the folder itself cannot be made (a failure noted). Only a
    /// store that cannot be read throws.
    private func export(_ task: Task, into folder: URL, folder name: String, failures: inout Failures) throws(QueryError) -> Summary? {
        let manager = FileManager.default
        do {
            if manager.fileExists(atPath: folder.path) { try manager.removeItem(at: folder) }
            try manager.createDirectory(at: folder.appendingPathComponent("inspect"), withIntermediateDirectories: true)
        } catch {
            failures.note(.cannotWrite(path: folder.path, detail: "\(error.localizedDescription)"))
            return nil
        }
        let history = ClusterHistory(store: store)
        let end = task.until ?? Int64.max
        func write(_ lines: [String], to file: URL, newline: Bool = true) {
            failures.attempt { () throws(QueryError) in try self.write(lines, to: file, newline: newline) }
        }

        write(
            [CanonicalJSON.string(MarkFile(name: task.name, from: task.since.map(Timestamp.format), until: task.until.map(Timestamp.format), note: task.note))],
            to: folder.appendingPathComponent("mark.json"))

        // Each node's lines: one pass over the task in time order, each line to its node's file.
        let search = LogSearch(store: store)
        var filter = LogFilter()
        filter.since = task.since
        filter.until = task.until
        var sinks: [String: FileSink] = [:]
        /// Nodes whose file failed: their further lines are skipped, the failure noted once.
        var failed: Set<String> = []
        var files = SafeFileNames(reserved: Self.ownFiles)
        var lines = 0
        defer { for sink in sinks.values { try? sink.close() } }
        try search.scan(filter) { line in
            guard line.source != Self.journalSource, !failed.contains(line.node) else { return }
            do throws(QueryError) {
                let sink: FileSink
                if let open = sinks[line.node] {
                    sink = open
                } else {
                    sink = try FileSink(folder.appendingPathComponent("\(files.name(for: line.node)).log"))
                    sinks[line.node] = sink
                }
                try sink.write(OutputFormat.text.render(line))
                lines += 1
            } catch {
                sinks[line.node] = nil
                failed.insert(line.node)
                failures.note(error)
            }
        }
        for node in sinks.keys.sorted() { failures.attempt { () throws(QueryError) in try sinks[node]!.close() } }
        sinks = [:]
        let nodes = files.names.keys.sorted()

        // Membership, events, configurations.
        let changes = try history.changes(since: task.since, until: task.until)
        write(ClusterHistory.timeline(changes).render(.text), to: folder.appendingPathComponent("membership.log"))
        let events = try QueryError.asking { () throws(StoreError) in try store.events(since: task.since, until: task.until) }
        var eventTable = Table(columns: ["time", "id", "kind", "body"])
        eventTable.rows = events.map { [.text(Timestamp.format($0.t)), .integer($0.id), .text($0.kind), .json($0.body)] }
        write(eventTable.render(.text), to: folder.appendingPathComponent("events.log"))

        let configs = try history.configRecords(since: task.since, until: task.until, withText: true)
        write(ClusterHistory.configs(configs).render(.text), to: folder.appendingPathComponent("configs.log"))
        let severalBalancers = Set(configs.map(\.node)).count > 1
        for (number, config) in configs.enumerated() {
            // The load balancer's name as its log file has it (the same node, the same name).
            let name = severalBalancers ? "\(number + 1)_\(files.name(for: config.node))_haproxy.cfg" : "\(number + 1)_haproxy.cfg"
            write([config.text ?? ""], to: folder.appendingPathComponent(name), newline: false)
        }

        // The node table at the start and after each change (the `docker ps` of each step).
        var steps: [(Int64, String)] = []
        if let since = task.since { steps.append((since, "at the start of \(task.name)")) }
        steps += changes.map { ($0.t, "after \($0.member) \($0.change.rawValue)") }
        if steps.isEmpty { steps.append((end, "at the end")) }
        var nodeLines: [String] = []
        for (t, title) in steps {
            if !nodeLines.isEmpty { nodeLines.append("") }
            nodeLines.append("## \(Timestamp.format(t)) \(title)")
            nodeLines += try history.nodes(at: t).render(.text)
        }
        write(nodeLines, to: folder.appendingPathComponent("nodes.log"))

        // Each node's inventory at the task's end (its last instant, not the next task's
        // first): nodes with lines, and members at the end or changed during the task.
        let last = task.until.map { $0 - 1 } ?? end
        let members = try QueryError.asking { () throws(StoreError) in try store.members(at: last).map(\.member) }
        for node in Set(nodes).union(members).union(changes.map(\.member)).sorted() {
            if let body = try history.inventory(of: node, at: last) {
                write([body], to: folder.appendingPathComponent("inspect").appendingPathComponent("\(files.name(for: node)).json"))
            }
        }
        return Summary(task: task, folder: name, nodes: nodes, lines: lines, changes: changes.count, configs: configs.count)
    }

    /// The stems of a task folder's own files, which no node's file may take.
    static let ownFiles: Set<String> = ["membership", "events", "configs", "nodes", "index", "mark"]

    private struct MarkFile: Encodable {
        var name: String
        var from: String?
        var until: String?
        var note: String
    }

    private func write(_ lines: [String], to url: URL, newline: Bool = true) throws(QueryError) {
        let sink = try FileSink(url)
        for line in lines { try sink.write(line, newline: newline) }
        try sink.close()
    }
}

/// A file written through a 64 KiB buffer.
final class FileSink {
    private let url: URL
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(_ url: URL) throws(QueryError) {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw .cannotWrite(path: url.path, detail: String(cString: strerror(errno))) }
        self.url = url
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        buffer.reserveCapacity(1 << 16)
    }

    func write(_ line: String, newline: Bool = true) throws(QueryError) {
        buffer.append(contentsOf: line.utf8)
        if newline { buffer.append(UInt8(ascii: "\n")) }
        if buffer.count >= 1 << 16 { try flush() }
    }

    func close() throws(QueryError) {
        try flush()
        do {
            try handle.close()
        } catch {
            throw .cannotWrite(path: url.path, detail: "\(error.localizedDescription)")
        }
    }

    private func flush() throws(QueryError) {
        guard !buffer.isEmpty else { return }
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw .cannotWrite(path: url.path, detail: "\(error.localizedDescription)")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

import Foundation
import MusterStore
import MusterWire

/// `logq report --out FILE`: one self-contained HTML page of a stretch of the cluster's
/// history — a timeline of membership changes with configuration versions and marks, the
/// request rate of each backend server from HAProxy's samples, every configuration diff, the
/// node table at the end, and a section per task. It replaces the stats-page screenshots
/// people pasted into lab reports.
///
/// The page has inline CSS and inline SVG only (no script, nothing fetched), escapes everything
/// that came from agents, and holds nothing but stored data, so the same store and arguments
/// give the same file.
public struct ClusterReport {
    public let store: any HistoryStore

    public init(store: any HistoryStore) {
        self.store = store
    }

    /// What a report holds, for the command's one-line answer.
    public struct Summary: Sendable, Equatable {
        public var start: Int64
        public var end: Int64
        public var changes: Int
        public var configs: Int
        public var marks: Int
        public var samples: Int
        public var servers: Int
        public var bytes: Int

        /// What `logq report --out path` prints once the page is written.
        public func line(path: String) -> String {
            "wrote \(path): \(Timestamp.format(start)) to \(Timestamp.format(end)), \(changes) changes, "
                + "\(configs) config versions, \(marks) marks, \(samples) HAProxy samples (\(servers) servers), \(bytes) bytes"
        }
    }

    /// The page for `scope`, and what it holds.
    public func render(_ scope: ReportScope) throws(QueryError) -> (html: String, summary: Summary) {
        if scope.mark != nil, scope.since != nil || scope.until != nil {
            throw .badArgument("use either --mark or --since/--until, not both (a mark's task has its own range)")
        }
        if let since = scope.since, let until = scope.until, since >= until {
            throw .badArgument("--since (\(Timestamp.format(since))) must be before --until (\(Timestamp.format(until)))")
        }
        let data = try ReportData.load(store, scope: scope)
        let html = ReportPage(data: data).html()
        let summary = Summary(
            start: data.range.start, end: data.range.end, changes: data.changes.count, configs: data.configs.count,
            marks: data.marks.count, samples: data.sampleCount, servers: data.rates.filter { !$0.isTotal }.count,
            bytes: html.utf8.count)
        return (html, summary)
    }

    /// Renders and writes the page to `path` (a temporary file renamed into place, so a reader
    /// never sees half a page).
    @discardableResult
    public func write(_ scope: ReportScope, to path: String) throws(QueryError) -> Summary {
        let (html, summary) = try render(scope)
        try Self.writeFile(html, to: path)
        return summary
    }

    static func writeFile(_ text: String, to path: String) throws(QueryError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .cannotWrite(path: path, detail: "it is a directory; name the HTML file to write")
        }
        let temporary = path + ".tmp-\(getpid())"
        do {
            let sink = try FileSink(URL(fileURLWithPath: temporary))
            try sink.write(text, newline: false)
            try sink.close()
        } catch {
            unlink(temporary)
            // Named after the page asked for, not the temporary file it is written through.
            if case .cannotWrite(_, let detail) = error { throw .cannotWrite(path: path, detail: detail) }
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .cannotWrite(path: path, detail: reason)
        }
    }
}

import Foundation
import MusterStore
import MusterWire

/// `logq logs`: the lines a filter selects, printed in one of the three formats, with their
/// context (`--context`), then, when following, the lines stored after them as they come.
public struct LogPrinter {
    public let search: LogSearch
    public let format: OutputFormat
    public let colors: NodeColors?
    /// How long following waits before asking again when no new line came.
    public var pollInterval: Duration = .milliseconds(250)

    public init(search: LogSearch, format: OutputFormat, colors: NodeColors?) {
        self.search = search
        self.format = format
        self.colors = colors
    }

    /// Prints `filter`'s lines to `output`, their notes (`LogSearch.notes`) to stderr. With
    /// `follow` it goes on until `following` says stop (never, for `logq logs -f`).
    public func print(
        _ filter: LogFilter, context: Int? = nil, follow: Bool = false, to output: inout BufferedOutput,
        following: () -> Bool = { true }
    ) throws(QueryError) {
        for note in try search.notes(filter) { FileHandle.standardError.write(Data("logq: note: \(note)\n".utf8)) }
        let startID = try search.newestID()
        // Lines already stored above where following starts (on a store that starts it below
        // its newest lines, up to its settling time of them) are history, not new: the listing
        // prints those it selects, following none of them.
        var history: Set<LineKey> = []
        if follow {
            var stored = filter
            stored.limit = nil
            stored.tail = nil
            stored.afterID = startID
            stored.throughID = .max
            try search.scan(stored) { history.insert(LineKey($0)) }
        }
        if let header = format.header() { output.write(header) }
        if let context {
            let items = try search.linesWithContext(filter, context: context)
            let width = items.reduce(0) { if case .line(let line, _) = $1 { max($0, Self.shownWidth(line.node)) } else { $0 } }
            for item in items {
                switch item {
                case .separator: if format == .text { output.write("--") }
                case .line(let line, let match): output.write(format.render(line, nodeWidth: width, colors: colors, context: !match))
                }
            }
            return output.flush()
        }
        let lines = try search.lines(filter)
        let width = lines.reduce(0) { max($0, Self.shownWidth($1.node)) }
        for line in lines { output.write(format.render(line, nodeWidth: width, colors: colors)) }
        output.flush()
        guard follow else { return }
        // New rows in arrival order, from where the store said every later line would be
        // above, but not the history that was already there (nor what the listing printed,
        // should a line have come in between).
        try self.follow(
            filter, after: startID, skipping: history.union(lines.lazy.filter { $0.id > startID }.map(LineKey.init)),
            nodeWidth: width, to: &output, while: following)
    }

    /// A line however its copies are numbered: its file (stream) and offset.
    struct LineKey: Hashable {
        var stream: Int64
        var offset: Int64

        init(_ line: LogLine) {
            stream = line.stream
            offset = line.offset
        }
    }

    /// Prints each line stored after `lastID`, in arrival order, as it comes, but not those in
    /// `skipping`.
    func follow(
        _ filter: LogFilter, after lastID: Int64, skipping: Set<LineKey> = [], nodeWidth: Int, to output: inout BufferedOutput,
        while following: () -> Bool
    ) throws(QueryError) {
        var filter = filter
        var lastID = lastID
        var skipping = skipping
        filter.limit = nil
        filter.tail = nil
        while following() {
            filter.afterID = lastID
            let fresh = try search.lines(filter)
            for line in fresh where skipping.remove(LineKey(line)) == nil {
                output.write(format.render(line, nodeWidth: nodeWidth, colors: colors))
            }
            output.flush()
            lastID = fresh.last?.id ?? lastID
            if fresh.isEmpty { Thread.sleep(forTimeInterval: Self.seconds(pollInterval)) }
        }
    }

    /// A node's name as text prints it (controls shown as `\xNN`), for the column's width.
    private static func shownWidth(_ node: String) -> Int {
        DisplayText.escapingControls(node, keepingLineFeeds: false).count
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

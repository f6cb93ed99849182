import Foundation
import MusterStore
import MusterWire

/// `logq hist`: lines (or error lines, `ErrorRule`) per interval per node.
public struct Histogram: Sendable, Equatable {
    /// The interval's length in nanoseconds.
    public var interval: Int64
    public var nodes: [String]
    /// Every interval from the first to the last, empty ones included, oldest first.
    public var buckets: [Bucket]
    public var errorsOnly: Bool

    public struct Bucket: Sendable, Equatable {
        /// Start of the interval (a multiple of the interval since the Unix epoch).
        public var start: Int64
        /// Lines per node, in the order of `nodes`.
        public var counts: [Int64]
        public var total: Int64 { counts.reduce(0, +) }
    }

    /// At most this many intervals in one histogram.
    public static let maxBuckets: Int64 = 10_000

    /// `30s`, `1m`, `5m`, `1h`, `1h30m`, `500ms`, `1d`.
    public static func parseInterval(_ text: String) throws(QueryError) -> Int64 {
        switch TimeExpression.parseDuration(text.trimmingCharacters(in: .whitespaces).lowercased()) {
        case .nanos(let nanos)? where nanos > 0: return nanos
        case .tooLong?: throw .badArgument("interval '\(text)' is too long to count in nanoseconds: use e.g. 1h, 1d, 1w")
        default: throw .badArgument("cannot read interval '\(text)': use e.g. 30s, 1m, 5m, 1h")
        }
    }

    /// Counts lines of `nodes` (all when empty) in [since, until) per interval. Without
    /// `since` the histogram starts at the first line, without `until` it ends at the last
    /// line (or at `now` when `since` was given).
    public static func build(
        store: any AggregateReader, interval: Int64, since: Int64?, until: Int64?, nodes: [String] = [], errorsOnly: Bool = false,
        now: Int64 = Timestamp.now()
    ) throws(QueryError) -> Histogram {
        // Times from the command line are in the supported range already, a caller's need not
        // be; stored times are clamped into it by the store. So every bucket lies in the range,
        // and the arithmetic below (differences, a bucket plus an interval) cannot overflow.
        let since = since.map(Timestamp.clamped)
        let until = until.map(Timestamp.clamped)
        // An open end with --since is now: lines stamped later (a clock far ahead) are left
        // out rather than stretching the histogram to them.
        let end = until ?? (since != nil ? Timestamp.clamped(now) + 1 : nil)
        let request = LineCountRequest(interval: interval, nodes: nodes, since: since, until: end, errorsOnly: errorsOnly)
        let rows = try QueryError.asking { () throws(StoreError) in try store.lineCounts(request) }
        let names = nodes.isEmpty ? Array(Set(rows.map(\.node))).sorted() : nodes
        var histogram = Histogram(interval: interval, nodes: names, buckets: [], errorsOnly: errorsOnly)
        guard let first = since.map({ $0 - Self.modulo($0, interval) }) ?? rows.first?.bucket,
            let last = end.map({ ($0 - 1) - Self.modulo($0 - 1, interval) }) ?? rows.last?.bucket, last >= first
        else { return histogram }
        let count = (last - first) / interval + 1
        guard count <= maxBuckets else {
            throw .badArgument(
                "that is \(count) intervals of \(Self.describe(interval)); choose a longer --by or a shorter --since/--until")
        }
        let column = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        histogram.buckets = (0..<count).map { Bucket(start: first + $0 * interval, counts: Array(repeating: 0, count: names.count)) }
        for row in rows {
            guard let index = column[row.node] else { continue }
            histogram.buckets[Int((row.bucket - first) / interval)].counts[index] += row.count
        }
        return histogram
    }

    /// Non-negative remainder (times before 1970 round down too).
    private static func modulo(_ value: Int64, _ divisor: Int64) -> Int64 {
        let remainder = value % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }

    static func describe(_ interval: Int64) -> String {
        for (unit, scale) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)]
        where interval % scale == 0 {
            return "\(interval / scale)\(unit)"
        }
        return "\(interval)ns"
    }

    /// The numbers, one row per interval and node (zeros included): time, node, lines (or errors).
    public func table() -> Table {
        var table = Table(columns: ["time", "node", errorsOnly ? "errors" : "lines"])
        for bucket in buckets {
            for (index, node) in nodes.enumerated() {
                table.rows.append([.text(Timestamp.format(bucket.start)), .text(node), .integer(bucket.counts[index])])
            }
        }
        return table
    }

    /// Fill characters per node when there is no colour to tell the nodes apart.
    static let glyphs: [Character] = ["█", "▓", "▒", "░", "#", "=", "+", "*"]

    /// The terminal picture: one row per interval with its total, a bar stacked by node (each
    /// node its colour, or its own fill character without colours) and each node's count.
    public func textLines(colors: NodeColors?, barWidth: Int = 40) -> [String] {
        guard !buckets.isEmpty else { return ["(no \(errorsOnly ? "error lines" : "lines") in range)"] }
        let glyph = { (index: Int) -> Character in colors == nil ? Self.glyphs[index % Self.glyphs.count] : "█" }
        let peak = max(1, buckets.map(\.total).max() ?? 1)
        let totalLabel = errorsOnly ? "ERRORS" : "LINES"
        let totalWidth = max(totalLabel.count, String(peak).count)
        let timeWidth = Timestamp.format(buckets[0].start).count
        let headers = nodes.enumerated().map { "\(glyph($0)) \(DisplayText.escapingControls($1, keepingLineFeeds: false))" }
        let widths = nodes.indices.map { index in max(headers[index].count, buckets.map { String($0.counts[index]).count }.max() ?? 1) }
        func paint(_ text: String, _ index: Int) -> String { colors?.paint(text, as: nodes[index]) ?? text }
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return right ? fill + text : text + fill
        }
        let nodeHeader = nodes.indices.map { paint(pad(headers[$0], widths[$0], right: true), $0) }
        func row(_ time: String, _ total: String, _ bar: String, _ nodeCells: [String]) -> String {
            ([pad(time, timeWidth), pad(total, totalWidth, right: true), bar] + nodeCells).joined(separator: "  ")
        }
        var lines = [row("TIME", totalLabel, pad("", barWidth), nodeHeader)]
        for bucket in buckets {
            var bar = ""
            var cumulative: Int64 = 0
            var drawn = 0
            for (index, count) in bucket.counts.enumerated() where count > 0 {
                cumulative += count
                let upTo = Int((Double(cumulative) * Double(barWidth) / Double(peak)).rounded())
                if upTo > drawn { bar += paint(String(repeating: glyph(index), count: upTo - drawn), index) }
                drawn = max(drawn, upTo)
            }
            let counts = nodes.indices.map { pad(String(bucket.counts[$0]), widths[$0], right: true) }
            lines.append(row(Timestamp.format(bucket.start), String(bucket.total), bar + String(repeating: " ", count: barWidth - drawn), counts))
        }
        return lines
    }
}

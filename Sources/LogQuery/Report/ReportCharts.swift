import Foundation
import MusterStore
import MusterWire

/// The report's inline SVG: a time axis shared by the charts, the membership timeline and the
/// request-rate chart. Coordinates are computed here (no script), so the page renders fully
/// in any browser and the same data gives the same markup.
enum ReportChart {
    static let width = 1200.0
    /// Lane labels and the rate chart's y axis live left of this.
    static let plotLeft = 140.0
    static let plotRight = width - 24

    /// Colours of membership changes, shared by the marks, the tables and the legend.
    static func color(of change: MembershipChange.Change) -> String {
        switch change {
        case .joined: "#2f9e44"
        case .left: "#868e96"
        case .failed: "#e03131"
        case .updated: "#1c7ed6"
        case .readdressed: "#9c36b5"
        case .reaped: "#212529"
        case .replaced: "#f08c00"
        }
    }

    /// Config lines: Runtime API changes, reloads, and anything that was not applied.
    static func color(ofConfig config: ConfigRecord) -> String {
        guard config.outcome == .applied else { return "#e03131" }
        switch config.method {
        case "runtime": return "#0c8599"
        case "reload": return "#e8590c"
        default: return "#495057"
        }
    }

    static let markColor = "#6741d9"

    /// One colour per server, in legend order.
    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f", "#ff9da7", "#17becf"]
}

/// Maps instants onto [x0, x1] and chooses round, UTC-aligned ticks.
///
/// The range is clamped to `Timestamp.supportedRange` (a stored time may be anything), so
/// spans and tick steps cannot overflow; an instant outside the range maps to its nearer edge.
struct TimeScale {
    let start: Int64
    let end: Int64
    var x0: Double
    var x1: Double

    init(start: Int64, end: Int64, x0: Double, x1: Double) {
        self.start = Timestamp.clamped(start)
        self.end = max(Timestamp.clamped(end), self.start)
        self.x0 = x0
        self.x1 = x1
    }

    func x(_ t: Int64) -> Double {
        let span = Double(max(end - start, 1))
        let fraction = min(max(Double(Timestamp.clamped(t) - start) / span, 0), 1)
        return x0 + (x1 - x0) * fraction
    }

    private static let steps: [Int64] = {
        let ms: Int64 = 1_000_000
        let s = 1_000 * ms
        return [100 * ms, 200 * ms, 500 * ms, s, 2 * s, 5 * s, 10 * s, 15 * s, 30 * s, 60 * s, 120 * s, 300 * s, 600 * s,
                900 * s, 1_800 * s, 3_600 * s, 7_200 * s, 10_800 * s, 21_600 * s, 43_200 * s, 86_400 * s, 172_800 * s,
                604_800 * s, 1_209_600 * s, 2_592_000 * s]
    }()

    /// Ticks at multiples of a round step, at most one per ~100 px, labelled in UTC.
    func ticks() -> [(t: Int64, label: String)] {
        let span = max(end - start, 1)
        let most = max(Int64((x1 - x0) / 100), 2)
        let step = Self.steps.first { span / $0 <= most } ?? Self.steps.last!
        var first = (start / step) * step
        if first < start { first += step }
        var ticks: [(Int64, String)] = []
        var t = first
        while t <= end {
            ticks.append((t, label(t, step: step, span: span)))
            t += step
        }
        return ticks
    }

    private func label(_ t: Int64, step: Int64, span: Int64) -> String {
        let full = Array(Timestamp.format(t))  // 2026-11-21T20:31:50.123456789Z
        let second = Timestamp.nanosPerSecond
        if span > 86_400 * second { return String(full[5..<10]) + " " + String(full[11..<16]) }
        if step < second { return String(full[11..<21]) }
        if step < 60 * second { return String(full[11..<19]) }
        return String(full[11..<16])
    }

    /// The axis: tick lines across `top...bottom`, labels below `bottom`.
    func axis(top: Double, bottom: Double, title: String) -> String {
        var svg = "<g class=\"axis\">"
        svg += "<line class=\"axis-line\" x1=\"\(n(x0))\" y1=\"\(n(bottom))\" x2=\"\(n(x1))\" y2=\"\(n(bottom))\"/>"
        for tick in ticks() {
            let x = n(self.x(tick.t))
            svg += "<line class=\"grid\" x1=\"\(x)\" y1=\"\(n(top))\" x2=\"\(x)\" y2=\"\(n(bottom))\"/>"
            svg += "<line class=\"tick\" x1=\"\(x)\" y1=\"\(n(bottom))\" x2=\"\(x)\" y2=\"\(n(bottom + 5))\"/>"
            svg += "<text class=\"tick-label\" x=\"\(x)\" y=\"\(n(bottom + 18))\" text-anchor=\"middle\">\(tick.label)</text>"
        }
        svg += "<text class=\"axis-title\" x=\"\(n((x0 + x1) / 2))\" y=\"\(n(bottom + 36))\" text-anchor=\"middle\">"
            + ReportText.escape(title) + "</text>"
        return svg + "</g>"
    }
}

/// Short for `ReportText.number`, the form of every coordinate.
@inline(__always) func n(_ value: Double) -> String { ReportText.number(value) }

/// A vertical line across the lanes with a label above them: a config version or a mark.
struct Guide {
    var t: Int64
    /// The group's attributes (class and data-*), already escaped.
    var attributes: String
    /// The tooltip, plain text.
    var title: String
    /// The label, plain text.
    var label: String
    var labelAttributes: String
    var labelSize = 11.0
    var lineAttributes: String
}

/// Guides with their labels placed in up to `rows` rows without overlap (right of the line, or
/// left of it near the right edge); a label that fits nowhere is left out, its line keeps its
/// tooltip.
struct Guides {
    static let rowHeight = 15.0

    var items: [Guide]
    var x: [Double]
    /// Where each label's text starts (or ends, when anchored at its end), and its row.
    var labels: [(x: Double, anchorEnd: Bool, row: Int?)]
    var rowCount: Int

    init(_ items: [Guide], scale: TimeScale, rows: Int) {
        self.items = items
        x = items.map { scale.x($0.t) }
        var ends = Array(repeating: -Double.infinity, count: rows)
        labels = zip(items, x).map { item, x in
            let width = labelWidth(item.label, size: item.labelSize)
            let anchorEnd = x + 3 + width > ReportChart.width - 4
            let left = anchorEnd ? x - 3 - width : x + 3
            let row = ends.indices.first { left >= ends[$0] + 6 }
            if let row { ends[row] = left + width }
            return (anchorEnd ? x - 3 : x + 3, anchorEnd, row)
        }
        rowCount = (labels.compactMap(\.row).max() ?? -1) + 1
    }

    /// Lines from their label's row (or `linesTop` without one) down to `bottom`.
    func svg(rowsTop: Double, linesTop: Double, bottom: Double) -> String {
        var svg = ""
        for (index, item) in items.enumerated() {
            let label = labels[index]
            let top = label.row.map { rowsTop + Double($0) * Self.rowHeight + 2 } ?? linesTop
            svg += "<g \(item.attributes)><title>\(ReportText.escape(item.title))</title>"
            svg += "<line x1=\"\(n(x[index]))\" y1=\"\(n(top))\" x2=\"\(n(x[index]))\" y2=\"\(n(bottom))\" \(item.lineAttributes)/>"
            if let row = label.row {
                svg += "<text \(item.labelAttributes) x=\"\(n(label.x))\" y=\"\(n(rowsTop + Double(row) * Self.rowHeight + 11))\""
                svg += (label.anchorEnd ? " text-anchor=\"end\"" : "") + ">\(ReportText.escape(item.label))</text>"
            }
            svg += "</g>"
        }
        return svg
    }
}

/// Rough width of a label in the page's 11-12 px sans font: enough to keep labels apart.
func labelWidth(_ text: String, size: Double = 11) -> Double { Double(text.count) * size * 0.62 + 4 }

/// One lane per member with its changes as marks, its state as a band, config applies and
/// marks as vertical lines.
struct TimelineChart {
    struct Lane {
        var member: String
        var initial: MembershipChange?
        var changes: [MembershipChange]
    }

    var start: Int64
    var end: Int64
    var lanes: [Lane]
    var configs: [ConfigRecord]
    var marks: [Mark]
    /// `membership-mark` on the main timeline; task timelines use another class so a count
    /// of `membership-mark` is the number of changes in the report's range.
    var markClass: String
    var laneHeight = 26.0
    var compact = false

    /// Lanes for the members alive at the start, plus every member that changed, in natural order.
    static func lanes(initial: [MembershipChange], changes: [MembershipChange]) -> [Lane] {
        var byMember: [String: Lane] = [:]
        for state in initial where state.status == .alive {
            byMember[state.member] = Lane(member: state.member, initial: state, changes: [])
        }
        for change in changes {
            if byMember[change.member] == nil {
                byMember[change.member] = Lane(member: change.member, initial: initial.first { $0.member == change.member }, changes: [])
            }
            byMember[change.member]!.changes.append(change)
        }
        return byMember.values.sorted { ReportText.naturalOrder($0.member, $1.member) }
    }

    func svg(label: String) -> String {
        let scale = TimeScale(start: start, end: end, x0: ReportChart.plotLeft, x1: ReportChart.plotRight)
        let severalBalancers = Set(configs.map(\.node)).count > 1
        let rows = compact ? 2 : 3
        let markGuides = Guides(
            marks.map { mark in
                Guide(
                    t: mark.t, attributes: "class=\"mark-line\" data-mark=\"\(ReportText.escape(mark.name))\"",
                    title: "mark \(mark.name) at \(Timestamp.format(mark.t))\(mark.note.isEmpty ? "" : ": " + mark.note)",
                    label: ReportText.truncated(mark.name, 24), labelAttributes: "class=\"mark-label\"",
                    lineAttributes: "stroke=\"\(ReportChart.markColor)\" stroke-width=\"1.5\"")
            }, scale: scale, rows: rows)
        let configGuides = Guides(
            configs.map { config in
                let color = ReportChart.color(ofConfig: config)
                return Guide(
                    t: config.t,
                    attributes: "class=\"config-line\" data-node=\"\(ReportText.escape(config.node))\" data-version=\"\(config.version)\" "
                        + "data-method=\"\(ReportText.escape(config.method))\" data-outcome=\"\(ReportText.escape(config.outcome.rawValue))\"",
                    title: configTitle(config),
                    label: severalBalancers ? "\(ReportText.truncated(config.node, 10)) v\(config.version)" : "v\(config.version)",
                    labelAttributes: "class=\"config-label\" fill=\"\(color)\"", labelSize: 10,
                    lineAttributes: "stroke=\"\(color)\" stroke-dasharray=\"\(config.method == "reload" ? "6 3" : "2 3")\"")
            }, scale: scale, rows: rows)
        let marksTop = 6.0
        let configsTop = marksTop + Double(markGuides.rowCount) * Guides.rowHeight
        let lanesTop = configsTop + Double(configGuides.rowCount) * Guides.rowHeight + 6
        let lanesBottom = lanesTop + Double(max(lanes.count, 1)) * laneHeight
        let height = lanesBottom + 46

        var svg = "<svg class=\"timeline\(compact ? " compact" : "")\" viewBox=\"0 0 \(n(ReportChart.width)) \(n(height))\" "
        svg += "width=\"\(n(ReportChart.width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"\(ReportText.escape(label))\" "
        svg += "xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<title>\(ReportText.escape(label))</title>"
        // Lane backgrounds and names.
        svg += "<g class=\"lanes\">"
        for (index, lane) in lanes.enumerated() {
            let top = lanesTop + Double(index) * laneHeight
            svg += "<rect class=\"lane\(index % 2 == 1 ? " odd" : "")\" x=\"0\" y=\"\(n(top))\" width=\"\(n(ReportChart.width))\" height=\"\(n(laneHeight))\"/>"
            svg += "<text class=\"lane-label\" x=\"\(n(ReportChart.plotLeft - 12))\" y=\"\(n(top + laneHeight / 2 + 4))\" text-anchor=\"end\">"
            svg += "<title>\(ReportText.escape(lane.member))</title>\(ReportText.escape(ReportText.truncated(lane.member, 18)))</text>"
        }
        if lanes.isEmpty {
            svg += "<text class=\"empty\" x=\"\(n((ReportChart.plotLeft + ReportChart.plotRight) / 2))\" y=\"\(n(lanesTop + laneHeight / 2 + 4))\" "
            svg += "text-anchor=\"middle\">no members in this range</text>"
        }
        svg += "</g>"
        svg += scale.axis(top: configsTop, bottom: lanesBottom, title: "time (UTC, \(ReportText.date(start)))")
        // State bands: alive and failed stretches of each member.
        svg += "<g class=\"bands\">"
        for (index, lane) in lanes.enumerated() {
            let middle = lanesTop + Double(index) * laneHeight + laneHeight / 2
            var status = lane.initial?.status
            var from = start
            var segments: [(MemberStatus?, Int64, Int64)] = []
            for change in lane.changes {
                segments.append((status, from, change.t))
                status = change.status
                from = change.t
            }
            segments.append((status, from, end))
            for (status, from, to) in segments {
                guard let status, status == .alive || status == .failed, to > from else { continue }
                let x = scale.x(from)
                let width = max(scale.x(to) - x, 1)
                svg += "<rect class=\"band \(status.rawValue)\" x=\"\(n(x))\" y=\"\(n(middle - 4))\" width=\"\(n(width))\" height=\"8\" rx=\"2\">"
                svg += "<title>\(ReportText.escape(lane.member)) \(status.rawValue) from \(ReportText.clock(from)) to \(ReportText.clock(to))</title></rect>"
            }
        }
        svg += "</g>"
        svg += "<g class=\"configs\">" + configGuides.svg(rowsTop: configsTop, linesTop: lanesTop, bottom: lanesBottom) + "</g>"
        svg += "<g class=\"marks\">" + markGuides.svg(rowsTop: marksTop, linesTop: lanesTop, bottom: lanesBottom) + "</g>"
        // Membership changes, on top of everything.
        svg += "<g class=\"changes\">"
        for (index, lane) in lanes.enumerated() {
            let middle = n(lanesTop + Double(index) * laneHeight + laneHeight / 2)
            for change in lane.changes {
                svg += "<circle class=\"\(markClass)\" data-member=\"\(ReportText.escape(change.member))\" data-change=\"\(change.change.rawValue)\" "
                svg += "data-time=\"\(Timestamp.format(change.t))\" cx=\"\(n(scale.x(change.t)))\" cy=\"\(middle)\" r=\"\(compact ? 5 : 6)\" "
                svg += "fill=\"\(ReportChart.color(of: change.change))\">"
                svg += "<title>\(ReportText.escape(changeTitle(change)))</title></circle>"
            }
        }
        svg += "</g></svg>"
        return svg
    }

    private func changeTitle(_ change: MembershipChange) -> String {
        var text = "\(change.member) \(change.change.rawValue) at \(ReportText.clock(change.t)) (\(change.status.rawValue)"
        if !change.address.isEmpty { text += ", \(change.address)" }
        text += "; seen by \(change.observer), \(change.cause))"
        return text
    }

    private func configTitle(_ config: ConfigRecord) -> String {
        var text = "\(config.node) config v\(config.version) at \(ReportText.clock(config.t)): \(config.method), \(config.outcome)"
        if !config.trigger.isEmpty { text += "; trigger: " + config.trigger.joined(separator: ", ") }
        text += "; servers: " + (config.servers.isEmpty ? "none" : config.servers.joined(separator: ", "))
        if let message = config.message, !message.isEmpty { text += "; " + message }
        return text
    }
}

/// Requests per second per backend server: one step line per server (the rate between two
/// samples is flat over that interval), the backend's total dashed, marks as faint lines.
struct RateChart {
    var start: Int64
    var end: Int64
    var series: [RateSeries]
    var marks: [Mark]

    /// At most this many steps per line; denser samples are merged (counted requests over
    /// covered time), so the page stays small over long ranges.
    static let maxSteps = 600

    static func color(_ index: Int, _ series: RateSeries) -> String {
        series.isTotal ? "#343a40" : ReportChart.palette[index % ReportChart.palette.count]
    }

    func svg(label: String) -> String {
        let scale = TimeScale(start: start, end: end, x0: ReportChart.plotLeft, x1: ReportChart.plotRight)
        let top = 16.0
        let bottom = 266.0
        let height = bottom + 46
        let merged = series.map { merge($0.intervals) }
        let peak = merged.flatMap { $0 }.map(\.rate).max() ?? 0
        let (yMax, yStep) = Self.yAxis(peak)
        func y(_ rate: Double) -> Double { bottom - (bottom - top) * min(rate / yMax, 1) }

        var svg = "<svg class=\"rates\" viewBox=\"0 0 \(n(ReportChart.width)) \(n(height))\" width=\"\(n(ReportChart.width))\" "
        svg += "height=\"\(n(height))\" role=\"img\" aria-label=\"\(ReportText.escape(label))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<title>\(ReportText.escape(label))</title>"
        svg += "<g class=\"y-axis\">"
        var value = 0.0
        while value <= yMax + yStep / 2 {
            let at = n(y(value))
            svg += "<line class=\"grid\" x1=\"\(n(ReportChart.plotLeft))\" y1=\"\(at)\" x2=\"\(n(ReportChart.plotRight))\" y2=\"\(at)\"/>"
            svg += "<text class=\"tick-label\" x=\"\(n(ReportChart.plotLeft - 8))\" y=\"\(n(y(value) + 4))\" text-anchor=\"end\">\(ReportText.rate(value))</text>"
            value += yStep
        }
        let middle = n((top + bottom) / 2)
        svg += "<text class=\"axis-title\" x=\"\(n(ReportChart.plotLeft - 58))\" y=\"\(middle)\" text-anchor=\"middle\" "
        svg += "transform=\"rotate(-90 \(n(ReportChart.plotLeft - 58)) \(middle))\">requests/s</text></g>"
        svg += scale.axis(top: top, bottom: bottom, title: "time (UTC, \(ReportText.date(start)))")
        for mark in marks {
            let x = n(scale.x(mark.t))
            svg += "<line class=\"mark-guide\" x1=\"\(x)\" y1=\"\(n(top))\" x2=\"\(x)\" y2=\"\(n(bottom))\"><title>mark \(ReportText.escape(mark.name))</title></line>"
        }
        for (index, line) in series.enumerated() {
            let color = Self.color(index, line)
            svg += "<g class=\"rate-series\" data-server=\"\(ReportText.escape(line.label))\">"
            svg += "<title>\(ReportText.escape(line.label)): \(summary(line))</title>"
            for run in runs(merged[index]) {
                let points = run.flatMap { interval in
                    ["\(n(scale.x(interval.from))),\(n(y(interval.rate)))", "\(n(scale.x(interval.to))),\(n(y(interval.rate)))"]
                }
                svg += "<polyline class=\"rate-line\(line.isTotal ? " total" : "")\" points=\"\(points.joined(separator: " "))\" stroke=\"\(color)\"/>"
            }
            svg += "</g>"
        }
        return svg + "</svg>"
    }

    /// `mean 12.5/s, peak 40/s over 35 s`.
    func summary(_ line: RateSeries) -> String {
        let seconds = line.intervals.reduce(0.0) { $0 + Double($1.to - $1.from) / 1e9 }
        let counted = line.intervals.reduce(0.0) { $0 + $1.rate * Double($1.to - $1.from) / 1e9 }
        let peak = line.intervals.map(\.rate).max() ?? 0
        return "mean \(ReportText.rate(seconds > 0 ? counted / seconds : 0))/s, peak \(ReportText.rate(peak))/s"
    }

    /// Merges intervals into at most `maxSteps` time buckets over the range.
    private func merge(_ intervals: [RateInterval]) -> [RateInterval] {
        guard intervals.count > Self.maxSteps else { return intervals }
        let bucket = max((end - start) / Int64(Self.maxSteps), 1)
        var merged: [RateInterval] = []
        var current: (key: Int64, from: Int64, to: Int64, counted: Double, seconds: Double)?
        for interval in intervals {
            let key = (interval.to - start) / bucket
            let seconds = Double(interval.to - interval.from) / 1e9
            if var open = current, open.key == key, interval.from == open.to {
                open.to = interval.to
                open.counted += interval.rate * seconds
                open.seconds += seconds
                current = open
            } else {
                if let open = current { merged.append(RateInterval(from: open.from, to: open.to, rate: open.counted / max(open.seconds, 1e-9))) }
                current = (key, interval.from, interval.to, interval.rate * seconds, seconds)
            }
        }
        if let open = current { merged.append(RateInterval(from: open.from, to: open.to, rate: open.counted / max(open.seconds, 1e-9))) }
        return merged
    }

    /// Contiguous stretches (a server absent from some samples leaves a gap).
    private func runs(_ intervals: [RateInterval]) -> [[RateInterval]] {
        var runs: [[RateInterval]] = []
        for interval in intervals {
            if let last = runs.last?.last, last.to == interval.from {
                runs[runs.count - 1].append(interval)
            } else {
                runs.append([interval])
            }
        }
        return runs
    }

    /// A round top for the y axis and its tick step (1, 2 or 5 times a power of ten, 4-6 ticks).
    static func yAxis(_ peak: Double) -> (Double, Double) {
        guard peak > 0 else { return (1, 0.25) }
        let rough = peak / 5
        let power = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? 10 * power
        return (ceil(peak / step) * step, step)
    }
}

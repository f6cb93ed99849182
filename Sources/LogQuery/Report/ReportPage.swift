import Foundation
import MusterStore
import MusterWire

/// The report as one HTML document: inline CSS, inline SVG, no script, nothing fetched.
/// Every value from the store goes through `ReportText.escape`.
struct ReportPage {
    var data: ReportData

    private func e(_ text: String) -> String { ReportText.escape(text) }

    func html() -> String {
        let range = data.range
        let title = range.mark.map { "Cluster report: \($0)" } ?? "Cluster report"
        var page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        page += "<meta name=\"generator\" content=\"logq report\">\n"
        page += "<title>\(e(title)) (\(ReportText.dateTime(range.start)) to \(ReportText.dateTime(range.end)))</title>\n"
        page += "<style>\n\(Self.css)</style>\n</head>\n<body>\n"
        page += header(title)
        page += timelineSection()
        page += ratesSection()
        if !data.tasks.isEmpty { page += tasksSection() }
        page += configsSection()
        page += nodesSection()
        page += "<footer>Made by <code>logq report</code> from the collector's store. The same store and arguments give the same page;"
        page += " times are UTC, hover one for its exact RFC 3339 form (which <code>logq --since</code> accepts).</footer>\n"
        page += "</body>\n</html>\n"
        return page
    }

    // MARK: Header

    private func header(_ title: String) -> String {
        let range = data.range
        var html = "<header>\n<h1>\(e(title))</h1>\n<p class=\"range\">"
        html += "\(ReportText.timeElement(range.start, long: true)) → \(ReportText.timeElement(range.end, long: true))"
        html += " <span class=\"muted\">(\(ReportText.duration(range.end - range.start))"
        if range.mark != nil {
            html += range.until == nil ? "; the last task, to the end of the history" : "; until the next mark"
        } else {
            html += range.since == nil ? "; from the start of the history" : "; from --since"
            html += range.until == nil ? " to the end of the history" : " to --until, exclusive"
        }
        html += ")</span></p>\n"
        if let name = range.mark, let task = data.tasks.first(where: { $0.mark.name == name }), !task.mark.note.isEmpty {
            html += "<p class=\"note\">\(e(task.mark.note))</p>\n"
        }
        let cards: [(String, String)] = [
            (ReportText.grouped(Int64(data.changes.count)), "membership changes"),
            (ReportText.grouped(Int64(data.configs.count)), "config versions"),
            (ReportText.grouped(Int64(data.marks.count)), "marks"),
            (ReportText.grouped(Int64(data.sampleCount)), "HAProxy samples"),
            (ReportText.grouped(Int64(data.nodes.rows.count)), "nodes at the end"),
        ]
        html += "<ul class=\"cards\">"
        for (value, label) in cards { html += "<li><b>\(value)</b> \(label)</li>" }
        html += "</ul>\n<nav><a href=\"#timeline\">Timeline</a> · <a href=\"#rates\">Request rates</a>"
        if !data.tasks.isEmpty { html += " · <a href=\"#tasks\">Tasks</a>" }
        html += " · <a href=\"#configs\">Config versions</a> · <a href=\"#nodes\">Nodes</a></nav>\n</header>\n"
        return html
    }

    // MARK: Timeline

    private func timelineSection() -> String {
        let chart = TimelineChart(
            start: data.range.start, end: data.range.end, lanes: TimelineChart.lanes(initial: data.initial, changes: data.changes),
            configs: data.configs, marks: data.marks, markClass: "membership-mark")
        var html = "<section id=\"timeline\">\n<h2>Timeline</h2>\n"
        html += "<p class=\"lead\">One lane per member: a dot for each change of its membership (as <code>logq timeline</code>"
        html += " lists them), its state as a band, the load balancer's configuration versions and the marks as vertical lines."
        html += " Hover anything for details.</p>\n"
        html += "<div class=\"chart\">\(chart.svg(label: "Membership timeline with configuration versions and marks"))</div>\n"
        html += timelineLegend() + "</section>\n"
        return html
    }

    private func timelineLegend() -> String {
        var items: [String] = MembershipChange.Change.allCases.map { change in
            "<li><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><circle cx=\"7\" cy=\"7\" r=\"5.5\" fill=\"\(ReportChart.color(of: change))\"/></svg>\(change.rawValue)</li>"
        }
        items.append("<li><svg width=\"22\" height=\"14\" aria-hidden=\"true\"><rect class=\"band alive\" x=\"1\" y=\"3\" width=\"20\" height=\"8\" rx=\"2\"/></svg>alive</li>")
        items.append("<li><svg width=\"22\" height=\"14\" aria-hidden=\"true\"><rect class=\"band failed\" x=\"1\" y=\"3\" width=\"20\" height=\"8\" rx=\"2\"/></svg>failed</li>")
        let lines: [(String, String, String)] = [
            ("#0c8599", "2 3", "config via Runtime API"), ("#e8590c", "6 3", "config via reload"),
            ("#495057", "2 3", "config, other method"), ("#e03131", "2 3", "config not applied"),
            (ReportChart.markColor, "", "mark (task start)"),
        ]
        for (color, dash, label) in lines {
            items.append(
                "<li><svg width=\"22\" height=\"14\" aria-hidden=\"true\"><line x1=\"2\" y1=\"7\" x2=\"20\" y2=\"7\" stroke=\"\(color)\" stroke-width=\"2\""
                    + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/></svg>\(label)</li>")
        }
        return "<ul class=\"legend\">" + items.joined() + "</ul>\n"
    }

    // MARK: Request rates

    private func ratesSection() -> String {
        var html = "<section id=\"rates\">\n<h2>Requests per backend server</h2>\n"
        html += "<p class=\"lead\">From the load balancer's <code>haproxy-stats</code> samples of <code>show stat</code>: the sessions"
        html += " each server handled between two samples (its cumulative <code>stot</code>), per second, drawn flat over that interval."
        html += " The backend's total is dashed.</p>\n"
        guard !data.rates.isEmpty else {
            html += "<p class=\"empty\">No rates in this range: it holds \(data.sampleCount) <code>haproxy-stats</code> sample"
            html += "\(data.sampleCount == 1 ? "" : "s") (two are needed; the LB controller takes one every <code>stats_interval_ms</code>).</p>\n"
            return html + "</section>\n"
        }
        let chart = RateChart(start: data.range.start, end: data.range.end, series: data.rates, marks: data.marks)
        html += "<div class=\"chart\">\(chart.svg(label: "Requests per second per backend server"))</div>\n<ul class=\"legend\">"
        for (index, series) in data.rates.enumerated() {
            let color = RateChart.color(index, series)
            html += "<li><svg width=\"22\" height=\"14\" aria-hidden=\"true\"><line x1=\"2\" y1=\"7\" x2=\"20\" y2=\"7\" stroke=\"\(color)\" stroke-width=\"2.5\""
            html += series.isTotal ? " stroke-dasharray=\"5 3\"" : ""
            html += "/></svg><b>\(e(series.label))</b>&nbsp;<span class=\"muted\">\(chart.summary(series))</span></li>"
        }
        return html + "</ul>\n</section>\n"
    }

    // MARK: Tasks

    private func tasksSection() -> String {
        var html = "<section id=\"tasks\">\n<h2>Tasks</h2>\n"
        html += "<p class=\"lead\">A task starts at its mark (<code>logq mark NAME</code>) and lasts until the next one.</p>\n"
        for task in data.tasks {
            let until = min(task.until ?? data.range.queryUntil, data.range.queryUntil)
            let shownEnd = task.until.map { min($0, data.range.end) } ?? data.range.end
            let changes = data.changes.filter { $0.t >= task.since && $0.t < until }
            let configs = data.configs.filter { $0.t >= task.since && $0.t < until }
            let initial = ClusterStates.before(task.since, initial: data.initial, changes: data.changes)
            html += "<section class=\"task\" id=\"task-\(e(task.mark.name))\" data-mark=\"\(e(task.mark.name))\">\n"
            html += "<h3>\(e(task.mark.name))</h3>\n"
            if !task.mark.note.isEmpty { html += "<p class=\"note\">\(e(task.mark.note))</p>\n" }
            html += "<p class=\"range\">\(ReportText.timeElement(task.since, long: true)) → "
            html += task.until.map { ReportText.timeElement($0, long: true) } ?? "end of history"
            html += " <span class=\"muted\">(\(ReportText.duration(shownEnd - task.since)); \(changes.count) change"
            html += "\(changes.count == 1 ? "" : "s"), \(configs.count) config version\(configs.count == 1 ? "" : "s"))</span></p>\n"
            let chart = TimelineChart(
                start: task.since, end: max(shownEnd, task.since + Timestamp.nanosPerSecond),
                lanes: TimelineChart.lanes(initial: initial, changes: changes), configs: configs,
                marks: data.marks.filter { $0.t >= task.since && $0.t < until }, markClass: "task-change", laneHeight: 20,
                compact: true)
            html += "<div class=\"chart small\">\(chart.svg(label: "Timeline of \(task.mark.name)"))</div>\n"
            html += "<div class=\"columns\">\n<div>\n<h4>Membership changes</h4>\n\(changesTable(changes))</div>\n"
            html += "<div>\n<h4>Configuration versions</h4>\n\(configsTable(configs))</div>\n</div>\n</section>\n"
        }
        return html + "</section>\n"
    }

    private func changesTable(_ changes: [MembershipChange]) -> String {
        table(
            "changes", ["time", "member", "change", "address", "observer", "cause"],
            changes.map { change in
                [ReportText.timeElement(change.t), e(change.member),
                 "<span class=\"pill\" style=\"background:\(ReportChart.color(of: change.change))\">\(change.change.rawValue)</span>",
                 e(change.address), e(change.observer), e(change.cause)]
            })
    }

    private func configsTable(_ configs: [ConfigRecord]) -> String {
        table(
            "configs", ["version", "time", "method", "outcome", "trigger", "servers"],
            configs.map { config in
                ["<a href=\"#\(configAnchor(config))\">v\(config.version)</a>", ReportText.timeElement(config.t), e(config.method),
                 outcome(config), e(config.trigger.joined(separator: ", ")), e(config.servers.joined(separator: " "))]
            })
    }

    /// A table of cells that are already HTML; "none" when there are no rows.
    private func table(_ kind: String, _ columns: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">none</p>\n" }
        var html = "<table class=\"\(kind)\"><thead><tr>" + columns.map { "<th>\(e($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { html += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        return html + "</tbody></table>\n"
    }

    private func outcome(_ config: ConfigRecord) -> String {
        "<span class=\"outcome \(config.outcome == .applied ? "ok" : "bad")\">\(e(config.outcome.rawValue))</span>"
    }

    private func configAnchor(_ config: ConfigRecord) -> String {
        // Node names are untrusted: keep the anchor to safe characters.
        let node = String(config.node.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : "_" })
        return "config-\(node)-v\(config.version)"
    }

    // MARK: Config versions

    private func configsSection() -> String {
        var html = "<section id=\"configs\">\n<h2>Configuration versions</h2>\n"
        html += "<p class=\"lead\">Every render of the load balancer's configuration in this range, with what triggered it, how it was"
        html += " applied and its diff against the previous applied version (<code>logq configs diff</code>).</p>\n"
        guard !data.configs.isEmpty else { return html + "<p class=\"empty\">No configuration versions in this range.</p>\n</section>\n" }
        for config in data.configs {
            html += "<article class=\"config\" id=\"\(configAnchor(config))\" data-version=\"\(config.version)\">\n"
            html += "<h3>v\(config.version) <span class=\"muted\">on \(e(config.node)) at</span> \(ReportText.timeElement(config.t, long: true))</h3>\n"
            html += "<dl><dt>method</dt><dd>\(e(config.method))</dd><dt>outcome</dt><dd>\(outcome(config))</dd>"
            html += "<dt>took</dt><dd>\(config.durationMilliseconds) ms</dd>"
            html += "<dt>trigger</dt><dd>\(config.trigger.isEmpty ? "—" : e(config.trigger.joined(separator: ", ")))</dd>"
            html += "<dt>servers</dt><dd>\(config.servers.isEmpty ? "none" : e(config.servers.joined(separator: " ")))</dd>"
            if let message = config.message, !message.isEmpty { html += "<dt>message</dt><dd>\(e(message))</dd>" }
            html += "</dl>\n" + diff(config.diff) + "</article>\n"
        }
        return html + "</section>\n"
    }

    /// The unified diff with its lines classed: `+` added, `-` removed, headers and `@@` muted.
    private func diff(_ text: String) -> String {
        guard !text.isEmpty else { return "<p class=\"empty\">no change in the file</p>\n" }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        var body = ""
        for line in lines {
            let kind: String
            if line.hasPrefix("+++") || line.hasPrefix("---") || line.hasPrefix("@@") {
                kind = "meta"
            } else if line.hasPrefix("+") {
                kind = "add"
            } else if line.hasPrefix("-") {
                kind = "del"
            } else {
                kind = "ctx"
            }
            // The newline stays inside the line's block, so copying the diff keeps its lines.
            body += "<span class=\"\(kind)\">\(e(String(line)))\n</span>"
        }
        let summary = "diff: \(lines.filter { $0.hasPrefix("+") && !$0.hasPrefix("+++") }.count) added, "
            + "\(lines.filter { $0.hasPrefix("-") && !$0.hasPrefix("---") }.count) removed"
        return "<details\(lines.count <= 60 ? " open" : "")><summary>\(summary)</summary><pre class=\"diff\">\(body)</pre></details>\n"
    }

    // MARK: Nodes

    private func nodesSection() -> String {
        let at = data.range.until.map { $0 - 1 } ?? data.range.end
        var html = "<section id=\"nodes\">\n<h2>Nodes at \(ReportText.timeElement(at, long: true))</h2>\n"
        html += "<p class=\"lead\">As <code>logq nodes --at</code> prints them at the end of the range (the <code>docker ps</code> of the cluster).</p>\n"
        guard !data.nodes.rows.isEmpty else { return html + "<p class=\"empty\">No nodes known at that instant.</p>\n</section>\n" }
        let stateColumn = data.nodes.columns.firstIndex(of: "state")
        let sinceColumn = data.nodes.columns.firstIndex(of: "since")
        let rows = data.nodes.rows.map { row in
            row.enumerated().map { index, value in
                let text = value.plain
                if index == stateColumn {
                    return "<span class=\"state \(e(text.replacingOccurrences(of: " ", with: "-")))\">\(e(text))</span>"
                }
                if index == sinceColumn, let t = Timestamp.parseRFC3339(text) { return ReportText.timeElement(t, long: true) }
                return e(text)
            }
        }
        return html + table("nodes", data.nodes.columns, rows) + "</section>\n"
    }

    // MARK: Style

    static let css = """
        :root { --ink: #212529; --muted: #6c757d; --line: #dee2e6; --soft: #f8f9fa; --accent: #6741d9; }
        * { box-sizing: border-box; }
        body { margin: 0 auto; max-width: 1280px; padding: 24px 32px 48px; color: var(--ink); background: #fff;
          font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; }
        h1 { font-size: 26px; margin: 0 0 4px; }
        h2 { font-size: 20px; margin: 36px 0 6px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
        h3 { font-size: 16px; margin: 22px 0 4px; }
        h4 { font-size: 13px; margin: 10px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
        code, pre, time { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
        a { color: #1c7ed6; text-decoration: none; }
        .muted { color: var(--muted); }
        .lead { color: #495057; margin: 4px 0 10px; max-width: 980px; }
        .range { margin: 2px 0; }
        .note { margin: 4px 0; font-style: italic; }
        .empty { color: var(--muted); font-style: italic; }
        header nav { margin-top: 10px; }
        .cards { list-style: none; display: flex; flex-wrap: wrap; gap: 10px; padding: 0; margin: 14px 0 4px; }
        .cards li { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px; color: #495057; }
        .cards b { font-size: 18px; color: var(--ink); margin-right: 2px; }
        .chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 4px; background: #fff; overflow-x: auto; }
        .chart svg { display: block; max-width: 100%; height: auto; }
        svg text { font-family: system-ui, "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 11px; fill: #343a40; }
        svg .lane { fill: #fff; }
        svg .lane.odd { fill: #f6f7f9; }
        svg .lane-label { font-size: 12.5px; font-weight: 600; }
        svg .grid { stroke: #e9ecef; stroke-width: 1; }
        svg .axis-line, svg .tick { stroke: #868e96; stroke-width: 1; }
        svg .tick-label { fill: #495057; }
        svg .axis-title { fill: var(--muted); font-size: 11.5px; }
        svg .band.alive { fill: #b2f2bb; }
        svg .band.failed { fill: #ffc9c9; }
        svg circle.membership-mark, svg circle.task-change { stroke: #fff; stroke-width: 1.5; }
        svg .mark-label { fill: var(--accent); font-weight: 600; }
        svg .config-label { font-size: 10px; font-weight: 600; }
        svg .config-line line { stroke-width: 1.5; }
        svg .mark-guide { stroke: var(--accent); stroke-opacity: .35; stroke-width: 1; }
        svg .rate-line { fill: none; stroke-width: 2.2; stroke-linejoin: round; }
        svg .rate-line.total { stroke-dasharray: 6 4; stroke-width: 1.6; }
        svg .empty { fill: var(--muted); font-style: italic; }
        .legend { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 0; margin: 8px 0 0; font-size: 13px; }
        .legend li { display: flex; align-items: center; gap: 5px; }
        .legend .band.alive { fill: #b2f2bb; }
        .legend .band.failed { fill: #ffc9c9; }
        table { border-collapse: collapse; width: 100%; font-size: 13px; }
        th { text-align: left; font-weight: 600; color: #495057; background: var(--soft); border-bottom: 1px solid var(--line); }
        th, td { padding: 4px 8px; vertical-align: top; }
        tbody tr:nth-child(even) { background: #fbfbfc; }
        tbody tr + tr td { border-top: 1px solid #f1f3f5; }
        .pill, .state { display: inline-block; padding: 0 7px; border-radius: 9px; color: #fff; font-size: 12px; }
        .state { background: #adb5bd; }
        .state.alive { background: #2f9e44; }
        .state.failed { background: #e03131; }
        .state.left { background: #868e96; }
        .state.not-in-serf { background: #1c7ed6; }
        .outcome.ok { color: #2f9e44; font-weight: 600; }
        .outcome.bad { color: #e03131; font-weight: 600; }
        .task { border-left: 3px solid var(--accent); padding: 0 0 6px 14px; margin: 18px 0 26px; }
        .task h3 { color: var(--accent); }
        .chart.small { margin-top: 6px; }
        .columns { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
        .config { border: 1px solid var(--line); border-radius: 6px; padding: 2px 14px 10px; margin: 12px 0; }
        .config dl { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 4px 0 8px; }
        .config dt { color: var(--muted); }
        .config dd { margin: 0; }
        summary { cursor: pointer; color: #495057; }
        pre.diff { margin: 6px 0 0; padding: 6px 0; background: var(--soft); border-radius: 4px; overflow-x: auto; line-height: 1.35; }
        pre.diff span { display: block; padding: 0 10px; white-space: pre; }
        pre.diff .add { background: #d3f9d8; color: #2b8a3e; }
        pre.diff .del { background: #ffe3e3; color: #c92a2a; }
        pre.diff .meta { color: var(--muted); }
        footer { margin-top: 40px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
        @media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
        @media print { body { padding: 0; } .chart { border: none; } details > pre { display: block; } }

        """
}

/// Members' states at an instant inside the report's range, from the states before the range
/// and the changes in it (so a task's timeline needs no query of its own).
enum ClusterStates {
    static func before(_ t: Int64, initial: [MembershipChange], changes: [MembershipChange]) -> [MembershipChange] {
        var latest: [String: MembershipChange] = [:]
        for state in initial { latest[state.member] = state }
        for change in changes where change.t < t { latest[change.member] = change }
        return latest.values.filter { $0.status != .reaped }.sorted { ReportText.naturalOrder($0.member, $1.member) }
    }
}

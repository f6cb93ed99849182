import Foundation
import MusterStore
import MusterWire

/// Everything one report shows, read from the store in a handful of calls: the membership
/// changes, configuration versions and marks of the range, the HAProxy samples
/// (`AggregateReader.haproxySamples`), and the node table at the end.
struct ReportData {
    /// The chosen range: [since, until) when given, otherwise the range the data covers.
    var range: ReportRange
    /// Members' states just before the range (alive ones get a lane even if nothing happens).
    var initial: [MembershipChange]
    var changes: [MembershipChange]
    var configs: [ConfigRecord]
    /// The tasks whose marks lie in the range, oldest first.
    var tasks: [MarkedTask]
    /// Every mark in the range (drawn on the timelines).
    var marks: [Mark]
    var rates: [RateSeries]
    var sampleCount: Int
    var nodes: Table
}

/// The time range of a report. `start`/`end` are what the axes show; `since`/`until` what was asked.
struct ReportRange: Equatable {
    var start: Int64
    var end: Int64
    var since: Int64?
    var until: Int64?
    /// `task-6`, or nil for a --since/--until (or whole history) report.
    var mark: String?

    /// The end bound of queries: exclusive `until`, or everything.
    var queryUntil: Int64 { until ?? Int64.max }
}

/// The request rate of one HAProxy server (or a backend's total) over time.
struct RateSeries: Equatable {
    /// `nodes/s1`, with the observer in front when several load balancers sampled.
    var label: String
    /// BACKEND rows: the backend's total, drawn dashed.
    var isTotal: Bool
    var intervals: [RateInterval]
}

/// Requests per second over [from, to).
struct RateInterval: Equatable {
    var from: Int64
    var to: Int64
    var rate: Double
}

extension ReportData {
    static func load(_ store: any HistoryStore, scope: ReportScope) throws(QueryError) -> ReportData {
        let history = ClusterHistory(store: store)
        let allTasks = try history.tasks()
        // Every time below is in the supported range (a caller's scope is clamped, the tasks'
        // are, and so are the data's extremes), so ranges, `since - 1` and the charts' spans
        // cannot overflow however far off a stored time is.
        var since = scope.since.map(Timestamp.clamped)
        var until = scope.until.map(Timestamp.clamped)
        if let name = scope.mark {
            guard let task = allTasks.first(where: { $0.mark.name == name }) else {
                throw .unknownMark(name, known: allTasks.map(\.mark.name))
            }
            (since, until) = (task.since, task.until)
        }
        let (lowerBound, upperBound) = (since, until)
        let range = try QueryError.asking { () throws(StoreError) in
            try Self.range(since: lowerBound, until: upperBound, mark: scope.mark, in: store)
        }
        let end = range.queryUntil
        let lower = since ?? Int64.min
        let initial = try since.map { since throws(QueryError) in
            try QueryError.asking { () throws(StoreError) in try store.members(at: since - 1) }
        } ?? []
        let samples = try QueryError.asking { () throws(StoreError) in try store.haproxySamples(since: lower, until: end) }
        let rates = Self.rates(samples)
        let tasks = allTasks.filter { $0.since >= lower && $0.since < end }
        return ReportData(
            range: range, initial: initial, changes: try history.changes(since: since, until: until),
            configs: try history.configRecords(since: since, until: until), tasks: tasks, marks: tasks.map(\.mark), rates: rates,
            sampleCount: samples.count,
            // The node table shows the state at the end of the range: just before `until`, or
            // at the last instant the data covers.
            nodes: try history.nodes(at: range.until.map { $0 - 1 } ?? range.end))
    }

    /// The axes' range: the given ends, and the data's first and last instants for open ones
    /// (`AggregateReader.firstInstant`, `lastInstant`). At least one second wide.
    static func range(since: Int64?, until: Int64?, mark: String?, in store: any AggregateReader) throws(StoreError) -> ReportRange {
        let second = Timestamp.nanosPerSecond
        var start: Int64
        var end: Int64
        switch (since, until) {
        case let (since?, until?):
            start = since
            end = until
        case let (since?, nil):
            start = since
            end = max(try store.lastInstant() ?? since, since)
        case let (nil, until?):
            end = until
            start = min(try store.firstInstant() ?? until - second, until - second)
        case (nil, nil):
            start = try store.firstInstant() ?? 0
            end = try store.lastInstant() ?? start
        }
        if end - start < second {
            if until == nil { end = start + second } else { start = end - second }
        }
        return ReportRange(start: start, end: end, since: since, until: until, mark: mark)
    }

    /// Requests per second per server from the event journal's `haproxy-stats` samples, in time
    /// order (`AggregateReader.haproxySamples`).
    ///
    /// A sample's counters are cumulative: the rate between two samples of the same load
    /// balancer is the difference from the server's counter when last seen (in the previous
    /// sample, or before it was left out of the configuration) over the time between the samples. A counter that
    /// went down was reset (a reload, or the server deleted and added again), and a server never
    /// seen before starts from 0: then its value is what was counted since.
    static func rates(_ samples: [JournalEntry]) -> [RateSeries] {
        let observers = Set(samples.map(\.observer))
        var series: [String: RateSeries] = [:]
        var previous: [String: Int64] = [:]
        /// Each server's counter when last seen, by series label.
        var lastTotal: [String: Int] = [:]
        for sample in samples {
            // The sample's own time and counters come from the journal line: clamped, so the
            // differences below cannot overflow (a negative counter counts as 0).
            let t = Timestamp.clamped(sample.t)
            defer { previous[sample.observer] = t }
            let before = previous[sample.observer].flatMap { $0 < t ? $0 : nil }
            for row in sample.stats ?? [] where row.name != "FRONTEND" {
                let key = row.proxy + "/" + row.name
                let label = observers.count > 1 ? "\(sample.observer): \(key)" : key
                let total = max(row.totalSessions, 0)
                let earlier = lastTotal[label] ?? 0
                lastTotal[label] = total
                guard let before else { continue }
                let counted = total >= earlier ? total - earlier : total
                series[label, default: RateSeries(label: label, isTotal: row.name == "BACKEND", intervals: [])]
                    .intervals.append(RateInterval(from: before, to: t, rate: Double(counted) / (Double(t - before) / 1e9)))
            }
        }
        let ordered = series.values.sorted { a, b in
            a.isTotal != b.isTotal ? !a.isTotal : ReportText.naturalOrder(a.label, b.label)
        }
        return ordered
    }
}

/// What the user asked for: a range, or a mark's task.
public struct ReportScope: Sendable, Equatable {
    public var since: Int64?
    public var until: Int64?
    public var mark: String?

    public init(since: Int64? = nil, until: Int64? = nil, mark: String? = nil) {
        self.since = since
        self.until = until
        self.mark = mark
    }
}

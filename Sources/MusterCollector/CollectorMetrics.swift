import MusterStore
import Prometheus

/// The collector's Prometheus metrics, served at `GET /metrics`.
public final class CollectorMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let requests: Counter
    let rejectedBatches: Counter
    let acceptedRecords: Counter
    let duplicateRecords: Counter
    let commits: Counter
    let commitFailures: Counter
    let commitSeconds: DurationHistogram
    let searchIndexed: Counter
    let searchIndexPending: Gauge
    let openConnections: Gauge
    let connectionLimitReached: Counter
    let bodyTimeouts: Counter
    let inflatedBytesHeld: Gauge

    public init() {
        /// `muster_<subsystem>_<name>_<unit>`
        func name(_ subsystem: String, _ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "muster", subsystem: subsystem, metricName: metric, unitName: unit, helpText: help)
        }
        requests = registry.makeCounter(descriptor: name("ingest", "requests", "total", "Ingest requests received"))
        rejectedBatches = registry.makeCounter(
            descriptor: name(
                "ingest", "rejected_batches", "total", "Batches refused with an error answer (4xx, or 503 when busy)"))
        acceptedRecords = registry.makeCounter(
            descriptor: name("ingest", "records_accepted", "total", "Records newly stored"))
        duplicateRecords = registry.makeCounter(
            descriptor: name("ingest", "records_duplicate", "total", "Records received again and ignored"))
        commits = registry.makeCounter(descriptor: name("store", "commits", "total", "Write transactions committed"))
        commitFailures = registry.makeCounter(
            descriptor: name("store", "commit_failures", "total", "Write transactions that failed"))
        commitSeconds = registry.makeDurationHistogram(
            descriptor: name("store", "commit", "seconds", "Time to commit one group of batches"),
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500), .seconds(2)])
        searchIndexed = registry.makeCounter(
            descriptor: name("search", "indexed_rows", "total", "Rows added to the full-text index"))
        searchIndexPending = registry.makeGauge(
            descriptor: name("search", "index_pending", "rows", "Rows stored but not yet in the full-text index"))
        openConnections = registry.makeGauge(
            descriptor: name("http", "open_connections", "", "Client connections open now"))
        connectionLimitReached = registry.makeCounter(
            descriptor: name("http", "connection_limit_reached", "total", "Times max_connections was reached"))
        bodyTimeouts = registry.makeCounter(
            descriptor: name("http", "body_timeouts", "total", "Requests answered 408 because the body arrived too slowly"))
        inflatedBytesHeld = registry.makeGauge(
            descriptor: name("ingest", "inflated_bytes_held", "bytes", "Inflated batch bytes reserved by requests in progress"))
    }

    func recordCommit(results: [IngestCounts], duration: Duration) {
        commits.increment()
        commitSeconds.record(duration)
        acceptedRecords.increment(by: Int64(results.reduce(0) { $0 + $1.accepted }))
        duplicateRecords.increment(by: Int64(results.reduce(0) { $0 + $1.duplicates }))
    }
}

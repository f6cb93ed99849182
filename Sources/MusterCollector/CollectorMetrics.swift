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

    public init() {
        requests = registry.makeCounter(name: "muster_ingest_requests_total", help: "Ingest requests received")
        rejectedBatches = registry.makeCounter(
            name: "muster_ingest_rejected_batches_total", help: "Batches refused with an error answer (4xx, or 503 when busy)")
        acceptedRecords = registry.makeCounter(
            name: "muster_ingest_records_accepted_total", help: "Records newly stored")
        duplicateRecords = registry.makeCounter(
            name: "muster_ingest_records_duplicate_total", help: "Records received again and ignored")
        commits = registry.makeCounter(name: "muster_store_commits_total", help: "Write transactions committed")
        commitFailures = registry.makeCounter(
            name: "muster_store_commit_failures_total", help: "Write transactions that failed")
        commitSeconds = registry.makeDurationHistogram(
            name: "muster_store_commit_seconds",
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500), .seconds(2)],
            help: "Time to commit one group of batches")
        searchIndexed = registry.makeCounter(
            name: "muster_search_indexed_rows_total", help: "Rows added to the full-text index")
        searchIndexPending = registry.makeGauge(
            name: "muster_search_index_pending_rows", help: "Rows stored but not yet in the full-text index")
    }

    func recordCommit(results: [IngestCounts], duration: Duration) {
        commits.increment()
        commitSeconds.record(duration)
        acceptedRecords.increment(by: Int64(results.reduce(0) { $0 + $1.accepted }))
        duplicateRecords.increment(by: Int64(results.reduce(0) { $0 + $1.duplicates }))
    }
}

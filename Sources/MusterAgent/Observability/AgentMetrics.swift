import Prometheus
import Synchronization

/// The agent's Prometheus metrics, served at `GET /metrics` when `http.listen` is set.
public final class AgentMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let linesRead: Counter
    let bytesRead: Counter
    let batchesSent: Counter
    let batchesAcknowledged: Counter
    let batchesRetried: Counter
    let batchesRefused: Counter
    /// Lines the agent knows it lost. Nothing in the pipeline drops a line: this moves only
    /// when a spool entry is found damaged (disk trouble or a file edited by hand).
    let recordsDropped: Counter
    let spoolBytes: Gauge
    let spoolEntries: Gauge
    let spoolFull: Gauge
    let spoolFullEpisodes: Counter
    let spoolDamagedBytes: Counter
    let filesOpen: Gauge
    let filesFollowed: Gauge
    let orphanedFilesOpen: Gauge
    /// Lines longer than their source's `max_line_bytes`, split or truncated.
    let overlongLines: Counter
    let syslogReceived: Counter
    let syslogMalformed: Counter
    let syslogUnreadableTimes: Counter
    /// Datagrams the kernel dropped because the agent did not read them in time (UDP and unix
    /// datagram senders cannot be paused).
    let syslogKernelDrops: Counter
    /// Times the idle agent handed memory back (`ResidentMemory.release()`).
    let memoryReleases: Counter
    /// `muster_agent_parse_failures_total{parser}`: lines a source's `parse:` could not read,
    /// stored as they are.
    private let parseFailureCounters: [LineParser: Counter]
    /// `muster_agent_parse_unreadable_timestamps_total{parser}`: container log entries whose
    /// runtime time could not be read, stored with their read time.
    private let unreadableEntryTimeCounters: [LineParser: Counter]
    /// `muster_agent_file_lag_bytes{path}`: bytes written to a file and not read yet.
    private let lagGauges = Mutex<[String: Gauge]>([:])

    public init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "muster", subsystem: "agent", metricName: metric, unitName: unit, helpText: help)
        }
        linesRead = registry.makeCounter(descriptor: name("lines_read", "total", "Lines read from files and sockets"))
        bytesRead = registry.makeCounter(descriptor: name("bytes_read", "total", "Bytes read from files and sockets"))
        batchesSent = registry.makeCounter(descriptor: name("batches_sent", "total", "Batch requests sent to the collector"))
        batchesAcknowledged = registry.makeCounter(
            descriptor: name("batches_acknowledged", "total", "Batches the collector acknowledged"))
        batchesRetried = registry.makeCounter(
            descriptor: name("batches_retried", "total", "Sends that failed and will be retried"))
        batchesRefused = registry.makeCounter(
            descriptor: name("batches_refused", "total", "Batches refused for good and kept under state_dir/refused"))
        recordsDropped = registry.makeCounter(
            descriptor: name("records_dropped", "total", "Records known lost (damaged spool entries); 0 in normal operation"))
        spoolBytes = registry.makeGauge(descriptor: name("spool", "bytes", "Bytes in spool segments"))
        spoolEntries = registry.makeGauge(descriptor: name("spool_entries", "batches", "Spooled batches not yet acknowledged"))
        spoolFull = registry.makeGauge(
            descriptor: name("spool_full", "state", "1 while the spool is at its limit and reading is paused"))
        spoolFullEpisodes = registry.makeCounter(
            descriptor: name("spool_full", "total", "Times the spool reached its limit and reading paused"))
        spoolDamagedBytes = registry.makeCounter(
            descriptor: name("spool_damaged", "bytes_total", "Damaged spool bytes found and skipped"))
        filesOpen = registry.makeGauge(descriptor: name("files_open", "files", "Files held open for tailing"))
        filesFollowed = registry.makeGauge(
            descriptor: name("files_followed", "files", "Files tailed, open or closed until they change"))
        overlongLines = registry.makeCounter(
            descriptor: name("overlong_lines", "total", "Lines longer than max_line_bytes, split into parts or truncated"))
        orphanedFilesOpen = registry.makeGauge(
            descriptor: name("orphaned_files_open", "files", "Renamed-away or deleted files still open to be read to their end"))
        syslogReceived = registry.makeCounter(descriptor: name("syslog_received", "total", "Syslog datagrams received"))
        syslogMalformed = registry.makeCounter(
            descriptor: name("syslog_malformed", "total", "Syslog datagrams kept whole because they did not parse"))
        syslogUnreadableTimes = registry.makeCounter(
            descriptor: name(
                "syslog_unreadable_timestamps", "total", "Syslog datagrams whose timestamp names no time kept; stored with their receive time"))
        syslogKernelDrops = registry.makeCounter(
            descriptor: name("syslog_kernel_drops", "total", "Syslog datagrams the kernel dropped before the agent read them"))
        memoryReleases = registry.makeCounter(
            descriptor: name(
                "memory_releases", "total", "Times the idle agent gave memory back to the kernel: free heap, pages of the program and its libraries"))
        var parseFailureCounters: [LineParser: Counter] = [:]
        var unreadableEntryTimeCounters: [LineParser: Counter] = [:]
        for parser in LineParser.allCases {
            parseFailureCounters[parser] = registry.makeCounter(
                name: "muster_agent_parse_failures_total", labels: [("parser", parser.rawValue)],
                help: "Lines a source's parser could not read, stored as they are")
            if parser.joinsEntries {
                unreadableEntryTimeCounters[parser] = registry.makeCounter(
                    name: "muster_agent_parse_unreadable_timestamps_total", labels: [("parser", parser.rawValue)],
                    help: "Container log entries without a readable runtime time, stored with their read time")
            }
        }
        self.parseFailureCounters = parseFailureCounters
        self.unreadableEntryTimeCounters = unreadableEntryTimeCounters
    }

    /// Lines `parser` could not read.
    func parseFailures(_ parser: LineParser) -> Counter { parseFailureCounters[parser]! }

    /// Entries of a container log format (`parser`) whose runtime time could not be read.
    func unreadableEntryTimes(_ parser: LineParser) -> Counter? { unreadableEntryTimeCounters[parser] }

    /// Publishes each tailed file's lag; files no longer tailed disappear from the output.
    func setLag(_ lagByPath: [String: Int64]) {
        lagGauges.withLock { gauges in
            for (path, gauge) in gauges where lagByPath[path] == nil {
                registry.unregisterGauge(gauge)
                gauges[path] = nil
            }
            for (path, lag) in lagByPath {
                let gauge =
                    gauges[path]
                    ?? registry.makeGauge(
                        name: "muster_agent_file_lag_bytes", labels: [("path", path)],
                        help: "Bytes written to a tailed file and not read yet")
                gauges[path] = gauge
                gauge.set(Double(lag))
            }
        }
    }

    func setSpool(bytes: Int64, entries: Int) {
        spoolBytes.set(Double(bytes))
        spoolEntries.set(Double(entries))
    }
}

import AsyncHTTPClient
import Logging
import NIOCore
import MusterWire
import NIOHTTP1
import Synchronization

/// Sends batches to the collector's `POST /v1/ingest`, retrying each until it is either
/// acknowledged or refused for good: a batch is never given up after some number of tries.
///
/// With several collectors (sharing one store), the agent starts at one chosen at random, so
/// a fleet spreads over them, and stays with it while it takes batches; a batch it does not
/// take (no answer, a dropped connection, a 5xx, a refused token) goes on at once to the next,
/// and the agent waits (`backoff`) only once every collector has failed it in turn.
public final class Shipper: Sendable {
    public enum Outcome: Sendable, Equatable {
        case acknowledged
        /// The collector will never take this batch (400/413/415/422): retrying cannot help.
        case refused(status: Int, body: String)
    }

    enum AttemptResult {
        case done(Outcome)
        case retry(String)
    }

    private let client: HTTPClient
    /// Each collector's ingest endpoint.
    private let urls: [String]
    /// The collector batches go to first: the last one that took a batch.
    private let current: Mutex<Int>
    private let authorization: String
    let timeout: TimeAmount
    private let backoff: Backoff
    private let compressor: BatchCompressor
    private let logger: Logger
    private let metrics: AgentMetrics?
    private let status: AgentStatus?

    public init(
        client: HTTPClient, urls: [String], token: String, timeout: Duration, backoff: Backoff,
        compressionLevel: Int, logger: Logger, metrics: AgentMetrics? = nil, status: AgentStatus? = nil
    ) {
        self.client = client
        precondition(!urls.isEmpty, "a shipper needs a collector (AgentConfig.validate refuses none)")
        self.urls = urls.map { $0.hasSuffix("/") ? $0 + "v1/ingest" : $0 + "/v1/ingest" }
        current = Mutex(Int.random(in: 0..<urls.count))
        self.authorization = "Bearer " + token
        // Whole milliseconds count: a 500 ms timeout is 500 ms, not 0 s.
        self.timeout = .nanoseconds(timeout.saturatingNanoseconds)
        self.backoff = backoff
        self.compressor = BatchCompressor(level: compressionLevel)
        self.logger = logger
        self.metrics = metrics
        self.status = status
    }

    /// A batch (or part of one) the collector refused for good.
    public struct Refusal: Sendable {
        public var batch: OutgoingBatch
        public var status: Int
        public var reason: String
    }

    /// Ships `batch`. A batch the collector refuses — as too large (413), or for one bad
    /// line (400) — is cut in halves, each shipped in turn, down to single records: a
    /// collector with lower limits than the agent still gets every line it can take, and only
    /// the lines it cannot take are refused. Returns those (empty when all was accepted).
    public func deliver(_ batch: OutgoingBatch) async throws -> [Refusal] {
        switch try await ship(batch) {
        case .acknowledged:
            return []
        case .refused(let status, let body):
            guard status == 413 || status == 400, let (first, second) = try? batch.split(with: compressor) else {
                return [Refusal(batch: batch, status: status, reason: body)]
            }
            logger.notice(
                "collector refused a batch; sending it in halves",
                metadata: ["status": "\(status)", "records": "\(batch.records)", "bytes": "\(batch.body.readableBytes)"])
            return try await deliver(first) + deliver(second)
        }
    }

    /// Sends until acknowledged or refused; throws only when the task is cancelled (at the end
    /// of a shutdown's grace period). An unacknowledged batch is simply re-read after a restart.
    public func ship(_ batch: OutgoingBatch) async throws -> Outcome {
        var attempt = 0
        var generator = SystemRandomNumberGenerator()
        while true {
            metrics?.batchesSent.increment()
            let collector = current.withLock { $0 }
            switch await attemptOnce(batch, to: urls[collector]) {
            case .done(let outcome):
                if attempt > 0 {
                    logger.info("collector reachable again", metadata: ["attempts": "\(attempt + 1)", "collector": "\(urls[collector])"])
                    status?.update { $0.collectorReachable = true }
                }
                return outcome
            case .retry(let reason):
                metrics?.batchesRetried.increment()
                // The next collector, unless another batch moved on already.
                current.withLock { if $0 == collector { $0 = (collector + 1) % urls.count } }
                attempt += 1
                // Every collector in turn before waiting: a collector that is down costs its
                // batches no delay while another one answers.
                let cycles = attempt / urls.count
                guard attempt % urls.count == 0 else {
                    if urls.count > 1 { logger.notice("batch not delivered; trying the next collector", metadata: ["reason": "\(reason)"]) }
                    try Task.checkCancellation()
                    continue
                }
                status?.update { $0.collectorReachable = false }
                let delay = backoff.delay(attempt: cycles - 1, using: &generator)
                if cycles == 1 || cycles % 10 == 0 {
                    logger.warning(
                        "batch not delivered; retrying",
                        metadata: ["reason": "\(reason)", "attempt": "\(attempt)", "next_in": "\(delay)"])
                }
                try Task.checkCancellation()
                try await Task.sleep(for: delay)
            }
        }
    }

    func attemptOnce(_ batch: OutgoingBatch, to url: String) async -> AttemptResult {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: authorization)
        request.headers.add(name: "Content-Type", value: "application/x-ndjson")
        request.headers.add(name: "Content-Encoding", value: "deflate")
        request.body = .bytes(batch.body)
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 << 10)
            let text = String(buffer: body)
            let status = Int(response.status.code)
            switch status {
            case 200..<300:
                return .done(.acknowledged)
            case 400, 413, 415, 422:
                return .done(.refused(status: status, body: text))
            case 401, 403:
                // A token problem is fixed by an operator; keep the batch and keep asking.
                return .retry("collector refused the token (HTTP \(status)): \(text)")
            default:
                return .retry("HTTP \(status): \(text.prefix(200))")
            }
        } catch {
            return .retry(ConnectionFailure.describe(error: error, url: url))
        }
    }
}

import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import Logging
import MusterWire
import NIOCore
import ServiceLifecycle
import Synchronization

/// The agent's pipeline: tailers → batcher → compressor → shipper → checkpoints.
///
/// Three tasks joined by channels with no buffer: the batcher reads and encodes the next
/// batch while the compressor deflates the one before (zlib is most of the agent's CPU, so
/// this puts the second core to work) and the shipper has up to `maxBatchesInFlight` earlier
/// ones with the collector. When the shipper falls behind, the others stop reading, so memory
/// stays bounded by a handful of batches whatever the collector does.
public final class Agent: Service, Sendable {
    public let config: AgentConfig
    private let logger: Logger
    private let client: HTTPClient
    private let checkpointPath: String
    /// Set when a graceful shutdown begins: the batcher stops reading.
    private let stopping = Mutex(false)
    /// Batches handed on by the batcher and not yet acknowledged (or refused).
    private let batchesInFlight = Mutex(0)
    /// How long a graceful shutdown may spend delivering what was already read; after it,
    /// the pipeline is cancelled. Lines not acknowledged by then are read again at the next start.
    public static let shutdownGrace: Duration = .seconds(5)

    public init(config: AgentConfig, logger: Logger) throws {
        try config.validate()
        self.config = config
        self.logger = logger
        self.checkpointPath = config.stateDirectory + "/checkpoints.json"
        do {
            try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw AgentConfigError.invalid("cannot create state_dir \(config.stateDirectory): \(error.localizedDescription)")
        }
        self.client = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    public func run() async throws {
        let (checkpoints, setAside) = try CheckpointStore.loadOrSetAside(path: checkpointPath)
        if let setAside {
            logger.error(
                "checkpoint file was corrupt; moved aside, files will be read again from their start (the collector drops what it already has)",
                metadata: ["moved_to": "\(setAside)"])
        }
        let resume = checkpoints.positions
        let encoded = AsyncChannel<EncodedBatch>()
        let compressed = AsyncChannel<OutgoingBatch>()
        let shipper = Shipper(
            client: client, url: config.collector.url, token: config.collector.token ?? "",
            timeout: .milliseconds(config.collector.timeoutMilliseconds),
            backoff: Backoff(
                initial: .milliseconds(config.retry.initialMilliseconds), cap: .milliseconds(config.retry.maxMilliseconds)),
            compressionLevel: config.batch.compressionLevel, logger: logger)
        logger.info(
            "agent started",
            metadata: ["node": "\(config.node)", "collector": "\(config.collector.url)", "sources": "\(config.effectiveSources.map(\.id))"])

        enum Finished { case pipeline, observer, graceExpired }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Finished.self) { group in
                group.addTask {
                    let tailers = self.config.effectiveSources.map { source in
                        (FileTailer(sourceID: source.id, patterns: source.paths, format: source.format) { resume[$0] }, source.parse)
                    }
                    await self.batchLoop(tailers: tailers, into: encoded)
                    return .pipeline
                }
                group.addTask {
                    await self.compressLoop(from: encoded, into: compressed)
                    return .pipeline
                }
                group.addTask {
                    await self.shipLoop(from: compressed, shipper: shipper, checkpoints: checkpoints)
                    return .pipeline
                }
                // Observers append to the journal, which the pipeline ships like any file.
                if let journalPath = self.config.journalPath {
                    let journal = EventJournal(path: journalPath)
                    if let membership = self.config.membership {
                        let reconciler = SerfReconciler(
                            rpcAddress: membership.serfRPC, interval: .milliseconds(membership.reconcileIntervalMilliseconds),
                            journal: journal, observer: self.config.node, logger: self.logger)
                        group.addTask {
                            await reconciler.run()
                            return .observer
                        }
                    }
                    if let lb = self.config.loadBalancer {
                        let controller = LBController(
                            config: lb, node: self.config.node, journal: journal,
                            stream: EventStreamClient(
                                baseURL: self.config.collector.url, token: self.config.collector.token ?? "", client: self.client),
                            serfRPC: self.config.membership?.serfRPC, stateDirectory: self.config.stateDirectory,
                            logger: self.logger)
                        group.addTask {
                            await controller.run()
                            return .observer
                        }
                    }
                    if let inventory = self.config.inventory {
                        let reporter = InventoryReporter(config: inventory, node: self.config.node, journal: journal, logger: self.logger)
                        group.addTask {
                            await reporter.run()
                            return .observer
                        }
                    }
                }
                group.addTask {
                    // Returns once a shutdown has lasted the grace period (or when cancelled).
                    try? await gracefulShutdown()
                    try? await Task.sleep(for: Self.shutdownGrace)
                    return .graceExpired
                }
                var running = 3
                for await finished in group {
                    switch finished {
                    case .pipeline: running -= 1
                    case .graceExpired: running = 0
                    case .observer: break
                    }
                    if running == 0 { group.cancelAll() }
                }
            }
        } onGracefulShutdown: {
            self.stopping.withLock { $0 = true }
        }
        try? await client.shutdown()
        logger.info("agent stopped")
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    // MARK: Batching

    /// Each tailer comes with the parser its source's lines go through (none: message only).
    private func batchLoop(tailers: [(FileTailer, LineParser?)], into channel: AsyncChannel<EncodedBatch>) async {
        let maxAge = Duration.milliseconds(config.batch.maxAgeMilliseconds)
        let scanInterval = Duration.seconds(1)
        let idleSleep = Duration.milliseconds(100)
        var builder = BatchBuilder(node: config.node, agent: config.effectiveAgentID)
        var lastScan = ContinuousClock.now - scanInterval
        var opened: ContinuousClock.Instant?

        func flush() async {
            guard builder.count > 0 else { return }
            batchesInFlight.withLock { $0 += 1 }
            await channel.send(builder.close())
            opened = nil
        }

        while !isStopping, !Task.isCancelled {
            if ContinuousClock.now - lastScan >= scanInterval {
                for (tailer, _) in tailers { tailer.scan() }
                lastScan = ContinuousClock.now
            }
            var readBytes = 0
            for (tailer, parser) in tailers {
                while builder.count < config.batch.maxRecords, builder.bytes < config.batch.maxBytes {
                    let budget = max(64 << 10, config.batch.maxBytes - builder.bytes)
                    let count = tailer.read(budget: budget) { line in builder.append(line, source: tailer.sourceID, parser: parser) }
                    readBytes += count
                    if count == 0 { break }
                }
                if builder.count > 0, opened == nil { opened = .now }
                if builder.count >= config.batch.maxRecords || builder.bytes >= config.batch.maxBytes { await flush() }
            }
            if let opened, ContinuousClock.now - opened >= maxAge {
                await flush()
            } else if readBytes == 0, builder.count > 0, batchesInFlight.withLock({ $0 == 0 }) {
                // Caught up with the files and nothing is on its way: waiting for the batch to
                // fill would only add latency.
                await flush()
            }
            if readBytes == 0 {
                try? await Task.sleep(for: idleSleep)
            }
        }
        // Shutting down: what was read goes out now; what was not stays in the files.
        await flush()
        channel.finish()
    }

    // MARK: Compressing

    private func compressLoop(from input: AsyncChannel<EncodedBatch>, into output: AsyncChannel<OutgoingBatch>) async {
        let compressor = BatchCompressor(level: config.batch.compressionLevel)
        for await batch in input {
            do {
                await output.send(try batch.compressed(with: compressor))
            } catch {
                // zlib fails only when memory is exhausted; the lines stay unacknowledged in
                // their files and are read again at the next start.
                logger.critical("cannot compress a batch; stopping", metadata: ["error": "\(error)"])
                break
            }
        }
        output.finish()
    }

    // MARK: Shipping

    /// Batches sent to the collector at once, so that one is on the wire while the collector
    /// decodes another and commits a third (measured in Benchmarks/: 1 → 140k, 2 → ~158k,
    /// 3 → ~168k committed lines/s). Acknowledgements may then come back out of order, and
    /// `AcknowledgementLedger` applies them in order.
    static let maxBatchesInFlight = 3

    private func shipLoop(from channel: AsyncChannel<OutgoingBatch>, shipper: Shipper, checkpoints: CheckpointStore) async {
        let ledger = AcknowledgementLedger(checkpoints: checkpoints) { self.save($0) }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            var sequence = 0
            for await batch in channel {
                if running == Self.maxBatchesInFlight {
                    await group.next()
                    running -= 1
                }
                let number = sequence
                sequence += 1
                running += 1
                group.addTask {
                    do {
                        for refusal in try await shipper.deliver(batch) {
                            self.keepRefused(refusal.batch, status: refusal.status, reason: refusal.reason)
                        }
                        self.batchesInFlight.withLock { $0 -= 1 }
                        ledger.acknowledged(number, positions: batch.positions)
                    } catch {
                        // Cancelled: the shutdown grace ran out with this batch unacknowledged.
                        self.logger.warning(
                            "stopping with a batch not acknowledged; it will be read and sent again at the next start",
                            metadata: ["records": "\(batch.records)"])
                    }
                }
            }
            await group.waitForAll()
        }
        ledger.flush()
    }

    private func save(_ checkpoints: CheckpointStore) {
        do {
            try checkpoints.save()
        } catch {
            // Not fatal: positions stay in memory and the next save retries; a crash before then
            // only makes the agent resend lines the collector already has.
            logger.error("\(error)")
        }
    }

    /// A batch the collector refused for good is kept on disk, never dropped silently.
    private func keepRefused(_ batch: OutgoingBatch, status: Int, reason: String) {
        let directory = config.stateDirectory + "/refused"
        let name = "\(Timestamp.now())-\(status)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + name + ".ndjson.zlib"
        guard FileManager.default.createFile(atPath: path, contents: Data(batch.body.readableBytesView)) else {
            logger.critical(
                "collector refused a batch and it could not be kept on disk; its lines are lost",
                metadata: ["status": "\(status)", "reason": "\(reason)", "path": "\(path)", "records": "\(batch.records)"])
            return
        }
        try? reason.write(toFile: directory + "/" + name + ".reason", atomically: true, encoding: .utf8)
        logger.error(
            "collector refused a batch; kept on disk",
            metadata: ["status": "\(status)", "reason": "\(reason)", "path": "\(path)", "records": "\(batch.records)"])
    }
}

/// Accumulates lines into one batch and remembers how far each file got.
struct BatchBuilder {
    let node: String
    let agent: String
    private var encoder = BatchEncoder()
    private var positions: [FileIdentity: FilePosition] = [:]

    init(node: String, agent: String) {
        self.node = node
        self.agent = agent
    }

    var count: Int { encoder.count }
    var bytes: Int { encoder.bytes.count }

    mutating func append(_ line: TailedLine, source: String, parser: LineParser? = nil) {
        encoder.append(
            time: line.time, node: node,
            origin: Origin(agent: agent, source: source, generation: line.position.name, offset: line.offset),
            message: line.message, fields: parser?.fields(line.message) ?? [:])
        positions[line.identity] = FilePosition(
            identity: line.identity, truncations: line.position.truncations, offset: line.endOffset)
    }

    mutating func close() -> EncodedBatch {
        let batch = EncodedBatch(ndjson: encoder.bytes, records: encoder.count, positions: Array(positions.values))
        encoder = BatchEncoder(capacity: encoder.bytes.count)
        positions = [:]
        return batch
    }
}

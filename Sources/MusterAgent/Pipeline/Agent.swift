import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import Logging
import MusterWire
import NIOCore
import ServiceLifecycle
import Synchronization

/// The agent's pipeline: sources → batcher → compressor → spool → shipper, and the
/// components (membership, inventory, the LB controller) running beside it.
///
/// The batcher reads and encodes the next batch while the compressor deflates the one before
/// (zlib is most of the agent's CPU, so this puts the second core to work). Each compressed
/// batch is appended to the disk spool and fsynced; only then do the checkpoints move past
/// its records. The shipper takes spooled batches oldest first, up to `maxBatchesInFlight`
/// at once, and a batch leaves the spool when the collector acknowledged it. While the
/// collector is away the agent keeps reading into the spool; when the spool is full it stops
/// reading, and the unread lines wait in their files. Memory stays bounded by a handful of
/// batches whatever the collector does.
///
/// Sources and components come from the configuration as `SourceConfig` and
/// `ComponentConfig` values (see `AgentComponents`); nothing here knows their kinds.
public final class Agent: Service, Sendable {
    public let config: AgentConfig
    public let metrics = AgentMetrics()
    public let status = AgentStatus()
    let logger: Logger
    let client: HTTPClient
    private let checkpointPath: String
    /// Set when a graceful shutdown begins: the batcher stops reading.
    let stopping = Mutex(false)
    /// Batches handed on by the batcher and not yet in the spool.
    let batchesOnTheirWay = Mutex(0)
    /// Moves whenever the agent works (a batch read, a batch acknowledged): what tells the
    /// idle memory release (`IdleReleaseSchedule`) that the agent is quiet.
    let activity = Atomic<UInt64>(0)
    /// The agent's own notices (spool full, damage found) are records too, from source
    /// `agent`; this run's generation keeps their origin coordinates unique.
    private let notices: NoticeWriter
    /// Built at init, so that a source that cannot have what it needs (a taken port) stops
    /// the agent at start with a clear message; the batcher takes them when it starts.
    private let sources: SourceHandOff
    /// The sources a reload asks for (the latest reload's), until the batcher applies them.
    let pendingSources = Mutex<[any SourceConfig]?>(nil)
    /// What the sources were built with at start; a reload builds with it too (one descriptor
    /// budget for all file sources), in a run generation of its own.
    let sourceContext: SourceContext
    /// The checkpoints: loaded when the pipeline starts, moved by the spool loop, read by the
    /// sources to resume (also those a reload builds).
    let resumePositions = ResumePositions()

    public init(config: AgentConfig, logger: Logger) throws {
        try config.validate()
        self.config = config
        self.logger = logger
        self.checkpointPath = config.stateDirectory + "/checkpoints.json"
        try Self.prepareStateDirectory(config.stateDirectory)
        let runGeneration = SourceContext.newRunGeneration()
        self.notices = NoticeWriter(
            node: config.node, agent: config.effectiveAgentID, generation: runGeneration,
            compressionLevel: config.batch.compressionLevel)
        let context = SourceContext(
            agentID: config.effectiveAgentID, stateDirectory: config.stateDirectory, logger: logger,
            runGeneration: runGeneration, positions: resumePositions, tailing: config.files.tailing,
            descriptors: config.files.descriptorBudget(logger: logger))
        self.sourceContext = context
        var built: [RunningSource] = []
        for source in config.effectiveSources {
            do {
                built.append(RunningSource(config: source, source: try source.makeSource(context)))
            } catch {
                for started in built { started.source.stop() }
                throw AgentConfigError.invalid("\(error)")
            }
        }
        // Made last: an HTTPClient must be shut down before it goes, so nothing may throw
        // between making it and `run`.
        do {
            self.client = try CollectorClient.make(for: config.collector)
        } catch {
            for started in built { started.source.stop() }
            throw error
        }
        self.sources = SourceHandOff(built)
    }

    /// Creates the state directory and proves the agent can write there, so that a directory
    /// it may not write to stops it at start with the path and the reason, not at its first
    /// checkpoint.
    static func prepareStateDirectory(_ path: String) throws(AgentConfigError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .invalid("cannot create state_dir \(path): \(Self.reason(error))")
        }
        let probe = path + "/.write-test-\(getpid())"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let code = errno
            let hint = code == EACCES || code == EPERM ? " (the agent runs as uid \(getuid()); give it write permission or choose another state_dir)" : ""
            throw .invalid("cannot write in state_dir \(path): \(String(cString: strerror(code)))\(hint)")
        }
        close(descriptor)
        unlink(probe)
    }

    /// The system's own words for why a file operation failed (`Permission denied`).
    private static func reason(_ error: any Error) -> String {
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return error.localizedDescription
    }

    public func run() async throws {
        let checkpoints: CheckpointStore
        let setAside: String?
        let spool: Spool
        let recovery: Spool.Recovery
        do {
            (checkpoints, setAside) = try CheckpointStore.loadOrSetAside(path: checkpointPath)
            (spool, recovery) = try Spool.open(
                config.spool.settings(stateDirectory: config.stateDirectory), checkpointed: checkpoints.spooledThrough)
        } catch {
            // Stopping here, the client and the sources' sockets must go with the agent.
            for started in sources.take() { started.source.stop() }
            try? await client.shutdown()
            throw error
        }
        resumePositions.load(checkpoints)
        if let setAside {
            logger.error(
                "checkpoint file was corrupt; moved aside, files will be read again from their start (the collector drops what it already has)",
                metadata: ["moved_to": "\(setAside)"])
        }
        let startupNotices = report(recovery, spool: spool, checkpointSetAside: setAside)
        let encoded = AsyncChannel<EncodedBatch>()
        let compressed = AsyncChannel<OutgoingBatch>()
        let shipper = Shipper(
            client: client, urls: config.collector.urls, token: config.collector.token ?? "",
            timeout: .milliseconds(config.collector.timeoutMilliseconds),
            backoff: Backoff(
                initial: .milliseconds(config.retry.initialMilliseconds), cap: .milliseconds(config.retry.maxMilliseconds)),
            compressionLevel: config.batch.compressionLevel, logger: logger, metrics: metrics, status: status)
        logger.info(
            "agent started",
            metadata: ["node": "\(config.node)", "collector": "\(config.collector.urls.joined(separator: ","))", "sources": "\(config.effectiveSources.map(\.id))"])

        enum Finished { case pipeline, observer, graceExpired, failed }
        let failed = await withGracefulShutdownHandler {
            await withTaskGroup(of: Finished.self, returning: Bool.self) { group in
                group.addTask {
                    await self.batchLoop(sources: self.sources.take(), spool: spool, into: encoded)
                    return .pipeline
                }
                group.addTask {
                    await self.compressLoop(from: encoded, into: compressed) ? .pipeline : .failed
                }
                group.addTask {
                    await self.spoolLoop(from: compressed, into: spool, notices: startupNotices)
                    return .pipeline
                }
                group.addTask {
                    await self.shipLoop(from: spool, shipper: shipper)
                    return .pipeline
                }
                group.addTask {
                    await self.idleMemoryLoop()
                    return .observer
                }
                if let listen = self.config.http.listen {
                    let server = AgentHTTPServer(host: listen.host, port: listen.port, metrics: self.metrics, status: self.status)
                    let logger = self.logger
                    group.addTask {
                        do {
                            try await server.application(logger: logger) { port in
                                logger.info("metrics and health served", metadata: ["address": "\(listen.host):\(port)"])
                            }.run()
                        } catch {
                            logger.error("cannot serve /metrics and /healthz on \(listen.host):\(listen.port): \(error)")
                        }
                        return .observer
                    }
                }
                // Components run beside the pipeline; what they append to the journal, the
                // pipeline ships like any file.
                let context = ComponentContext(
                    config: self.config, journal: self.config.journalPath.map(EventJournal.init(path:)), client: self.client,
                    logger: self.logger)
                for component in self.config.components {
                    group.addTask {
                        await component.run(context)
                        return .observer
                    }
                }
                group.addTask {
                    // Returns once a shutdown has lasted the grace period (or when cancelled).
                    try? await gracefulShutdown()
                    try? await Task.sleep(for: .milliseconds(self.config.shutdownGraceMilliseconds))
                    return .graceExpired
                }
                var running = 4
                var failed = false
                for await finished in group {
                    switch finished {
                    case .pipeline: running -= 1
                    case .graceExpired: running = 0
                    case .failed:
                        running = 0
                        failed = true
                    case .observer: break
                    }
                    if running == 0 { group.cancelAll() }
                }
                return failed
            }
        } onGracefulShutdown: {
            self.stopping.withLock { $0 = true }
        }
        spool.close()
        let left = spool.entries
        if left > 0 {
            logger.notice("stopped with batches still spooled; they are sent at the next start", metadata: ["batches": "\(left)"])
        }
        try? await client.shutdown()
        if failed { throw AgentError.compressionFailed }
        logger.info("agent stopped")
    }

    var isStopping: Bool { stopping.withLock { $0 } }

    /// Logs what the spool held from the previous run, and turns damage into notices for the
    /// collector (lines lost must be visible where people look for lines).
    private func report(_ recovery: Spool.Recovery, spool: Spool, checkpointSetAside: String?) -> [OutgoingBatch] {
        var notices: [OutgoingBatch] = []
        if recovery.entries > 0 {
            logger.info(
                "spool holds batches from before the restart; sending them first",
                metadata: ["batches": "\(recovery.entries)", "records": "\(recovery.records)", "bytes": "\(recovery.bytes)"])
        }
        if let cut = recovery.unfinishedAppend {
            logger.warning(
                "spool: cut off an append the previous run did not finish; its lines were not checkpointed and are read again from their files",
                metadata: ["where": "\(cut)"])
        }
        for damage in recovery.damaged {
            metrics.spoolDamagedBytes.increment(by: Int64(damage.bytes))
            logger.error(
                "spool segment damaged; skipped the damaged bytes and kept every whole batch around them. The lines in those bytes were already checkpointed and are lost",
                metadata: ["segment": "\(damage.path)", "offset": "\(damage.offset)", "bytes": "\(damage.bytes)"])
            notices.append(contentsOf: notice(
                "spool damage: skipped \(damage.bytes) bytes at offset \(damage.offset) of \(damage.path); the lines in them are lost",
                fields: ["event": "spool_damaged", "bytes": "\(damage.bytes)"]))
        }
        if let checkpointSetAside {
            notices.append(contentsOf: notice(
                "checkpoint file was corrupt and moved to \(checkpointSetAside); files are read again from their start",
                fields: ["event": "checkpoint_corrupt"]))
        }
        return notices
    }

    private func notice(_ message: String, fields: [String: String]) -> [OutgoingBatch] {
        do {
            return [try notices.batch(message, fields: fields)]
        } catch {
            logger.error("cannot encode a notice for the collector: \(error)")
            return []
        }
    }

    // MARK: Compressing

    /// False when a batch could not be compressed: the agent then stops with an error.
    private func compressLoop(from input: AsyncChannel<EncodedBatch>, into output: AsyncChannel<OutgoingBatch>) async -> Bool {
        let compressor = BatchCompressor(level: config.batch.compressionLevel)
        defer { output.finish() }
        for await batch in input {
            do {
                await output.send(try batch.compressed(with: compressor))
            } catch {
                // zlib fails only when memory is exhausted; the lines are not checkpointed yet,
                // so they are read again at the next start.
                logger.critical("cannot compress a batch; stopping", metadata: ["error": "\(error)"])
                return false
            }
        }
        return true
    }

    // MARK: Spooling

    /// Appends each batch to the spool, then moves the checkpoints (kept in `resumePositions`,
    /// where sources built later find them) past its lines, and only then counts the batch as
    /// arrived: a batcher that waits for `batchesOnTheirWay` to reach 0 finds the checkpoints
    /// past everything it handed on. A crash between the append and the next save only makes
    /// the agent read and spool those lines again; the collector recognises them by their
    /// origin coordinates.
    private func spoolLoop(from channel: AsyncChannel<OutgoingBatch>, into spool: Spool, notices: [OutgoingBatch]) async {
        var dirty = false
        var lastSave = ContinuousClock.now
        let saveInterval = Duration.milliseconds(200)
        for notice in notices { await append(notice, to: spool) }
        for await batch in channel {
            if spool.isFull, !(await waitForRoom(in: spool)) { break }
            guard let mark = await append(batch, to: spool) else { break }
            resumePositions.advance(batch.positions, spooledThrough: mark)
            batchesOnTheirWay.withLock { $0 -= 1 }
            dirty = true
            if ContinuousClock.now - lastSave >= saveInterval {
                saveCheckpoints()
                dirty = false
                lastSave = .now
            }
        }
        if dirty { saveCheckpoints() }
        spool.finish()
    }

    /// Appends durably, retrying while the disk refuses (full, read-only): reading is paused
    /// meanwhile, and `/healthz` says why. Nil only when cancelled first.
    @discardableResult
    private func append(_ batch: OutgoingBatch, to spool: Spool) async -> Spool.Mark? {
        let appended = await retryingEverySecond(
            { _ in true }, { () throws(SpoolError) in try spool.append(batch) },
            onFailure: { error in self.status.update { $0.spoolError = error.description } },
            onRecovery: { failures in
                self.logger.notice("spool writable again", metadata: ["failed_attempts": "\(failures)"])
                self.status.update { $0.spoolError = nil }
            })
        guard case .success(let mark) = appended else { return nil }
        metrics.setSpool(bytes: spool.bytes, entries: spool.entries)
        status.update { $0.spoolBytes = spool.bytes }
        return mark
    }

    /// Disk trouble may pass (a full or read-only disk, out of descriptors, EIO): `attempt` is
    /// tried once a second for as long as `retryable` says its error may pass, logging the
    /// first failure and every 30th. The value, or the error not worth retrying; nil when
    /// cancelled first.
    private func retryingEverySecond<Value>(
        _ retryable: (SpoolError) -> Bool, _ attempt: () throws(SpoolError) -> Value,
        onFailure: (SpoolError) -> Void = { _ in }, onRecovery: (_ failures: Int) -> Void = { _ in }
    ) async -> Result<Value, SpoolError>? {
        var failures = 0
        while !Task.isCancelled {
            do {
                let value = try attempt()
                if failures > 0 { onRecovery(failures) }
                return .success(value)
            } catch where retryable(error) {
                if failures % 30 == 0 { logger.error("\(error); retrying every second") }
                failures += 1
                onFailure(error)
                try? await Task.sleep(for: .seconds(1))
            } catch {
                return .failure(error)
            }
        }
        return nil
    }

    /// The spool is at its limit: stop reading until the shipper frees a segment. Says so in
    /// the log, in /metrics and in a record for the collector. False when cancelled first.
    private func waitForRoom(in spool: Spool) async -> Bool {
        let started = ContinuousClock.now
        let limit = spool.settings.maxBytes
        metrics.spoolFull.set(1.0)
        metrics.spoolFullEpisodes.increment()
        status.update { $0.spoolFull = true }
        logger.warning(
            "spool full: reading paused until the collector takes some batches; nothing is dropped, unread lines wait in their files",
            metadata: ["limit_bytes": "\(limit)", "spool_bytes": "\(spool.bytes)"])
        for notice in notice(
            "spool reached its limit of \(limit) bytes; reading paused, nothing dropped", fields: ["event": "spool_full"])
        {
            await append(notice, to: spool)
        }
        await spool.waitForSpace()
        metrics.spoolFull.set(0.0)
        status.update { $0.spoolFull = false }
        guard !Task.isCancelled else { return false }
        let paused = ContinuousClock.now - started
        logger.notice("spool has room again; reading resumed", metadata: ["paused": "\(paused)"])
        for notice in notice(
            "spool has room again after \(paused); reading resumed", fields: ["event": "spool_resumed"])
        {
            await append(notice, to: spool)
        }
        return true
    }

    private func saveCheckpoints() {
        do {
            try resumePositions.current()?.save()
        } catch {
            // Not fatal: positions stay in memory and the next save retries; a crash before then
            // only makes the agent spool and send lines the collector already has.
            logger.error("\(error)")
        }
    }

    // MARK: Shipping

    /// Batches sent to the collector at once, so that one is on the wire while the collector
    /// decodes another and commits a third (measured in Benchmarks/: 1 → 140k, 2 → ~158k,
    /// 3 → ~168k committed lines/s). Acknowledgements may come back out of order; the spool
    /// frees a segment once all of its batches are acknowledged.
    static let maxBatchesInFlight = 3

    private func shipLoop(from spool: Spool, shipper: Shipper) async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while let entry = await spool.next() {
                if running == Self.maxBatchesInFlight {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { await self.ship(entry, from: spool, with: shipper) }
            }
            await group.waitForAll()
        }
    }

    private func ship(_ entry: Spool.Entry, from spool: Spool, with shipper: Shipper) async {
        guard let batch = await read(entry, from: spool) else { return }
        do {
            for refusal in try await shipper.deliver(batch) {
                metrics.batchesRefused.increment()
                keepRefused(refusal.batch, status: refusal.status, reason: refusal.reason)
            }
            spool.acknowledge(entry)
            metrics.batchesAcknowledged.increment()
            activity.add(1, ordering: .relaxed)
            metrics.setSpool(bytes: spool.bytes, entries: spool.entries)
            let now = Int64(Date().timeIntervalSince1970)
            status.update {
                $0.lastAcknowledged = now
                $0.spoolBytes = spool.bytes
            }
        } catch {
            // Cancelled: the shutdown grace ran out with this batch unacknowledged.
            logger.notice(
                "stopping with a spooled batch not acknowledged; it is sent at the next start",
                metadata: ["records": "\(entry.records)"])
        }
    }

    /// Reads a spooled batch back. Damage (a checksum that no longer matches, a cut or deleted
    /// file) is skipped rather than looped on; a failure to read at all may pass, so it is
    /// retried. Nil when the entry was skipped or the task cancelled.
    private func read(_ entry: Spool.Entry, from spool: Spool) async -> OutgoingBatch? {
        let read = await retryingEverySecond(
            { if case .readFailed = $0 { true } else { false } }, { () throws(SpoolError) in try spool.read(entry) })
        switch read {
        case .success(let batch): return batch
        case .failure(let damage):
            logger.error("\(damage)", metadata: ["records": "\(entry.records)"])
            metrics.spoolDamagedBytes.increment(by: Int64(entry.length))
            metrics.recordsDropped.increment(by: Int64(entry.records))
            spool.acknowledge(entry)
            return nil
        case nil: return nil
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
            metrics.recordsDropped.increment(by: Int64(batch.records))
            return
        }
        try? reason.write(toFile: directory + "/" + name + ".reason", atomically: true, encoding: .utf8)
        logger.error(
            "collector refused a batch; kept on disk",
            metadata: ["status": "\(status)", "reason": "\(reason)", "path": "\(path)", "records": "\(batch.records)"])
    }
}

public enum AgentError: Error, CustomStringConvertible {
    case compressionFailed

    public var description: String {
        "a batch could not be compressed (zlib out of memory?); the agent stopped, and its unspooled lines are read again at the next start"
    }
}

import AsyncAlgorithms
import Synchronization

extension Agent {
    /// Reads the sources into batches until the agent stops, then stops them. From here on the
    /// sources are this task's alone (see `LogSource`).
    ///
    /// Sources whose input waits in files take turns, a batch's worth each per round, so that
    /// a busy one cannot hold the others back; sources whose input does not wait (datagrams)
    /// are drained every round, after the others, and once more when they have stopped.
    ///
    /// A reload's sources (see `reload`) are applied between two rounds: a source whose
    /// configuration is unchanged keeps running as it is (its files open, its positions); one
    /// no longer configured is stopped, and what it handed to the batch goes on as usual; a new
    /// one is built, and a changed one stopped and then built again (a socket is closed before
    /// its successor binds). A source built now resumes its files at the checkpoints, so the
    /// batch is first flushed and the checkpoints allowed to move past everything handed on.
    func batchLoop(sources started: [RunningSource], spool: Spool, into channel: AsyncChannel<EncodedBatch>) async {
        func inTurnOrder(_ running: [RunningSource]) -> [RunningSource] {
            running.filter(\.source.inputWaits) + running.filter { !$0.source.inputWaits }
        }
        var running = inTurnOrder(started)
        let maxAge = Duration.milliseconds(config.batch.maxAgeMilliseconds)
        let scanInterval = Duration.seconds(1)
        let idleSleep = Duration.milliseconds(100)
        // A batch closes once it reaches max_bytes, after a read of up to the room left in raw
        // bytes, which grow by ~10% as NDJSON (HAProxy lines): a quarter more room usually keeps
        // its array from being copied into one of twice the size (and malloc from holding
        // blocks of both sizes). Reserved for every batch, even one closed by age after three
        // lines, so no more than 8 MiB up front: larger batches grow as they fill.
        let batchCapacity = min(config.batch.maxBytes + config.batch.maxBytes / 4, 8 << 20)
        var builder = BatchBuilder(node: config.node, agent: config.effectiveAgentID, capacity: batchCapacity)
        var lastScan = ContinuousClock.now - scanInterval
        var opened: ContinuousClock.Instant?
        var isFull: Bool { builder.count >= config.batch.maxRecords || builder.bytes >= config.batch.maxBytes }
        var budget: Int { max(64 << 10, config.batch.maxBytes - builder.bytes) }

        func flush() async {
            guard builder.count > 0 else { return }
            batchesOnTheirWay.withLock { $0 += 1 }
            metrics.linesRead.increment(by: Int64(builder.count))
            activity.add(1, ordering: .relaxed)
            await channel.send(builder.close())
            opened = nil
        }

        /// Reads `source` into the batch: while the batch has room (its turn; what is left waits
        /// for the next round), or everything it holds, into as many batches as it takes.
        func read(_ source: any LogSource, all: Bool) async -> Int {
            var total = 0
            while true {
                if isFull {
                    guard all else { break }
                    await flush()
                }
                let count = source.read(budget: budget, into: &builder)
                total += count
                if builder.count > 0, opened == nil { opened = .now }
                if count == 0 { break }
            }
            if isFull { await flush() }
            return total
        }

        /// Applies a reload's sources (see the function's comment); `wanted` in the file's order.
        func apply(_ wanted: [any SourceConfig]) async {
            let changes = SourceChanges(running: running.map(\.config), wanted: wanted)
            let leaving = changes.leaving
            let previous = Dictionary(running.map { ($0.config.id, $0.config) }, uniquingKeysWith: { first, _ in first })
            for entry in running where leaving.contains(entry.config.id) {
                entry.source.stop()
                if !entry.source.inputWaits { _ = await read(entry.source, all: true) }
            }
            // Released here: a file source closes its files and saves its state as it goes,
            // before a successor of the same id loads that state.
            running.removeAll { leaving.contains($0.config.id) }
            var built: [String: RunningSource] = [:]
            let building = changes.added + changes.changed
            if !building.isEmpty {
                await flush()
                guard await waitUntilSpooled() else {
                    logger.notice("reload left unfinished: the agent is stopping", metadata: ["not_started": "\(building.map(\.id))"])
                    return
                }
                let context = reloadContext()
                for config in building {
                    do {
                        built[config.id] = RunningSource(config: config, source: try config.makeSource(context))
                    } catch {
                        built[config.id] = restart(previous[config.id], failed: config, error: error, context: context)
                    }
                }
            }
            let kept = Dictionary(running.map { ($0.config.id, $0) }, uniquingKeysWith: { first, _ in first })
            running = inTurnOrder(wanted.compactMap { built[$0.id] ?? kept[$0.id] })
            logger.info(
                changes.isEmpty ? "configuration reloaded; sources unchanged" : "configuration reloaded; sources updated",
                metadata: [
                    "added": "\(changes.added.map(\.id))", "removed": "\(changes.removed)",
                    "changed": "\(changes.changed.map(\.id))", "kept": "\(changes.kept)",
                ])
            lastScan = ContinuousClock.now - scanInterval
        }

        while !isStopping, !Task.isCancelled {
            if let wanted = pendingSources.withLock({ $0.take() }) {
                await apply(wanted)
                continue
            }
            if ContinuousClock.now - lastScan >= scanInterval {
                for entry in running { entry.source.scan() }
                publishMetrics(of: running.map(\.source))
                lastScan = ContinuousClock.now
            }
            var readBytes = 0
            for entry in running {
                readBytes += await read(entry.source, all: !entry.source.inputWaits)
            }
            metrics.bytesRead.increment(by: Int64(readBytes))
            if let opened, ContinuousClock.now - opened >= maxAge {
                await flush()
            } else if readBytes == 0, builder.count > 0, batchesOnTheirWay.withLock({ $0 == 0 }), !spool.hasUnsent {
                // Caught up with the sources, and the spool and shipper keep up: waiting for the
                // batch to fill would only add latency. While the collector is away, batches
                // wait for `max_age_ms`, so the spool does not fill with tiny entries.
                await flush()
            }
            if readBytes == 0 {
                try? await Task.sleep(for: idleSleep)
            }
        }
        // Shutting down: what was read goes to the spool now; what was not stays in the files.
        // Datagrams have nowhere to wait: stop receiving, then take what was received.
        for entry in running {
            entry.source.stop()
            if !entry.source.inputWaits { _ = await read(entry.source, all: true) }
        }
        await flush()
        channel.finish()
    }

    /// A source that a reload changed and whose new configuration could not be built (a port
    /// taken): said in the log, and the previous configuration built again, so that a typo does
    /// not silently stop a source. Nil when that fails too (or the source is new): the source
    /// stays stopped until a reload that works.
    private func restart(
        _ previous: (any SourceConfig)?, failed config: any SourceConfig, error: any Error, context: SourceContext
    ) -> RunningSource? {
        guard let previous else {
            logger.error("reload: cannot start source '\(config.id)': \(error)")
            return nil
        }
        do {
            let source = try previous.makeSource(context)
            logger.error("reload: cannot start source '\(config.id)' as changed; it runs on as before: \(error)")
            return RunningSource(config: previous, source: source)
        } catch let again {
            logger.error("reload: cannot start source '\(config.id)' as changed (\(error)), nor as before (\(again)); it stays stopped until the next reload")
            return nil
        }
    }

    private func publishMetrics(of sources: [any LogSource]) {
        var report = SourceReport()
        for source in sources { source.report(into: &report, metrics: metrics) }
        metrics.filesOpen.set(Double(report.filesOpen))
        metrics.filesFollowed.set(Double(report.filesFollowed))
        metrics.orphanedFilesOpen.set(Double(report.orphanedFilesOpen))
        metrics.setLag(report.lagBytes)
    }
}

/// Hands the sources built at start to the batcher task, once: they are moved, never shared.
final class SourceHandOff: Sendable {
    private let sources: Mutex<[RunningSource]>

    init(_ sources: sending [RunningSource]) {
        self.sources = Mutex(sources)
    }

    /// The sources, the first time; nothing after.
    func take() -> sending [RunningSource] {
        sources.withLock { sources in
            let taken = sources
            sources = []
            return taken
        }
    }
}

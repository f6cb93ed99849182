import AsyncAlgorithms
import Synchronization

extension Agent {
    /// Reads the sources into batches until the agent stops, then stops them. From here on the
    /// sources are this task's alone (see `LogSource`).
    ///
    /// Sources whose input waits in files take turns, a batch's worth each per round, so that
    /// a busy one cannot hold the others back; sources whose input does not wait (datagrams)
    /// are drained every round, after the others, and once more when they have stopped.
    func batchLoop(sources: [any LogSource], spool: Spool, into channel: AsyncChannel<EncodedBatch>) async {
        let sources = sources.filter(\.inputWaits) + sources.filter { !$0.inputWaits }
        let maxAge = Duration.milliseconds(config.batch.maxAgeMilliseconds)
        let scanInterval = Duration.seconds(1)
        let idleSleep = Duration.milliseconds(100)
        var builder = BatchBuilder(node: config.node, agent: config.effectiveAgentID)
        var lastScan = ContinuousClock.now - scanInterval
        var opened: ContinuousClock.Instant?
        var isFull: Bool { builder.count >= config.batch.maxRecords || builder.bytes >= config.batch.maxBytes }
        var budget: Int { max(64 << 10, config.batch.maxBytes - builder.bytes) }

        func flush() async {
            guard builder.count > 0 else { return }
            batchesOnTheirWay.withLock { $0 += 1 }
            metrics.linesRead.increment(by: Int64(builder.count))
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

        while !isStopping, !Task.isCancelled {
            if ContinuousClock.now - lastScan >= scanInterval {
                for source in sources { source.scan() }
                publishMetrics(of: sources)
                lastScan = ContinuousClock.now
            }
            var readBytes = 0
            for source in sources {
                readBytes += await read(source, all: !source.inputWaits)
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
        for source in sources {
            source.stop()
            if !source.inputWaits { _ = await read(source, all: true) }
        }
        await flush()
        channel.finish()
    }

    private func publishMetrics(of sources: [any LogSource]) {
        var report = SourceReport()
        for source in sources { source.report(into: &report, metrics: metrics) }
        metrics.filesOpen.set(Double(report.filesOpen))
        metrics.orphanedFilesOpen.set(Double(report.orphanedFilesOpen))
        metrics.setLag(report.lagBytes)
    }
}

/// Hands the sources built at start to the batcher task, once: they are moved, never shared.
final class SourceHandOff: Sendable {
    private let sources: Mutex<[any LogSource]>

    init(_ sources: sending [any LogSource]) {
        self.sources = Mutex(sources)
    }

    /// The sources, the first time; nothing after.
    func take() -> sending [any LogSource] {
        sources.withLock { sources in
            let taken = sources
            sources = []
            return taken
        }
    }
}

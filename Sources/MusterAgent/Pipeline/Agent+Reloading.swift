import Logging

/// A source the batcher runs, with the configuration it was built from: a reload compares
/// that with the new configuration to know whether the source stays as it is.
struct RunningSource {
    let config: any SourceConfig
    let source: any LogSource
}

extension Agent {
    /// Checks `config` as far as it can be checked without starting anything: what `validate`
    /// checks, and that the collector's CA file is a usable bundle. Binds no socket and writes
    /// no state; the errors are those the agent stops with at start.
    public static func check(_ config: AgentConfig) throws(AgentConfigError) {
        try config.validate()
        _ = try CollectorClient.tlsConfiguration(for: config.collector)
    }

    /// Takes on `new`, the configuration re-read from `file` (after SIGHUP) and checked with
    /// `check`. Its sources go to the batcher, which applies them between two rounds (see
    /// `batchLoop`); the event journal stays as it is. Every other setting takes effect at the
    /// next restart: the keys that differ from the running ones are logged, nothing of them is
    /// applied (an agent half on the old collector and half on the new one would be worse than
    /// either).
    public func reload(_ new: AgentConfig, file: String) {
        let pending = config.keysDiffering(from: new)
        if !pending.isEmpty {
            logger.notice(
                "reload: settings outside 'sources' changed; they take effect at the next restart",
                metadata: ["file": "\(file)", "keys": "\(pending.joined(separator: ", "))"])
        }
        var applied = config
        applied.sources = new.sources
        let wanted = applied.effectiveSources
        pendingSources.withLock { $0 = wanted }
    }

    /// The context a reload builds sources with: the one of the start, in a new run generation,
    /// so that records of sources that cannot be read again never share origin coordinates with
    /// an earlier instance's.
    func reloadContext() -> SourceContext {
        var context = sourceContext
        context.runGeneration = SourceContext.newRunGeneration()
        return context
    }

    /// Waits until every batch handed on is in the spool and the checkpoints are past it. False
    /// when the agent stops first.
    func waitUntilSpooled() async -> Bool {
        while batchesOnTheirWay.withLock({ $0 > 0 }) {
            guard !isStopping, !Task.isCancelled else { return false }
            // A reload is rare and the spool loop takes a few milliseconds per batch: polling
            // costs less than a notification on every batch would.
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}

/// How a new list of source configurations changes the running one, by id: sources whose
/// configuration compares equal are kept as they run; a source whose configuration differs is
/// changed (stopped and built again).
struct SourceChanges {
    /// In the new list's order.
    var added: [any SourceConfig] = []
    /// The new configurations, in the new list's order.
    var changed: [any SourceConfig] = []
    var removed: [String] = []
    var kept: [String] = []

    init(running: [any SourceConfig], wanted: [any SourceConfig]) {
        let runningByID = Dictionary(running.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let wantedIDs = Set(wanted.map(\.id))
        for config in wanted {
            guard let current = runningByID[config.id] else {
                added.append(config)
                continue
            }
            if sameConfiguration(current, config) {
                kept.append(config.id)
            } else {
                changed.append(config)
            }
        }
        removed = running.map(\.id).filter { !wantedIDs.contains($0) }
    }

    var isEmpty: Bool { added.isEmpty && changed.isEmpty && removed.isEmpty }

    /// The ids of the sources to stop: removed and changed.
    var leaving: Set<String> { Set(removed).union(changed.map(\.id)) }
}

/// Whether two configurations of any types are of the same type and equal.
func sameConfiguration<Config: Equatable>(_ first: Config, _ second: Any) -> Bool {
    (second as? Config) == first
}

extension AgentConfig {
    /// The keys outside `sources:` whose values differ in `other`, as the file names them (a
    /// component by its section). Values are not given: one of them is the token.
    func keysDiffering(from other: AgentConfig) -> [String] {
        var keys: [String] = []
        func compare<Value: Equatable>(_ key: String, _ value: (AgentConfig) -> Value) {
            if value(self) != value(other) { keys.append(key) }
        }
        compare("node") { $0.node }
        compare("agent_id") { $0.agentID }
        compare("collector.urls") { $0.collector.urls }
        compare("collector.token") { $0.collector.token }
        compare("collector.timeout_ms") { $0.collector.timeoutMilliseconds }
        compare("collector.ca_file") { $0.collector.caFile }
        compare("state_dir") { $0.stateDirectory }
        compare("batch.max_records") { $0.batch.maxRecords }
        compare("batch.max_bytes") { $0.batch.maxBytes }
        compare("batch.max_age_ms") { $0.batch.maxAgeMilliseconds }
        compare("batch.compression_level") { $0.batch.compressionLevel }
        compare("retry.initial_ms") { $0.retry.initialMilliseconds }
        compare("retry.max_ms") { $0.retry.maxMilliseconds }
        compare("spool.max_bytes") { $0.spool.maxBytes }
        compare("spool.segment_bytes") { $0.spool.segmentBytes }
        compare("http.listen") { $0.http.listen }
        compare("files") { $0.files }
        compare("memory.release_when_idle_ms") { $0.memory.releaseWhenIdleMilliseconds }
        compare("shutdown_grace_ms") { $0.shutdownGraceMilliseconds }
        let sections = (components + other.components).map { type(of: $0).key }
        for key in sections where !keys.contains(key) {
            let mine = components.first { type(of: $0).key == key }
            let theirs = other.components.first { type(of: $0).key == key }
            switch (mine, theirs) {
            case (let mine?, let theirs?) where sameConfiguration(mine, theirs): break
            default: keys.append(key)
            }
        }
        return keys
    }
}

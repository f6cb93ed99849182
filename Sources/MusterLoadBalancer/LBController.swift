import AsyncHTTPClient
import Foundation
import Logging
import MusterAgent
import MusterWire
import Synchronization

/// Keeps HAProxy's backend equal to the cluster's live members of one role.
///
/// Follows the collector's event stream from a saved cursor; with several collectors (sharing
/// one store, so one stream with the same ids on each) it moves on to the next with the same
/// cursor when one cannot be reached. When none can, it follows the local Serf
/// (`serf members`) instead, and resumes the stream from its cursor when a collector is back. Changes are debounced; each apply renders the
/// template, validates it with `haproxy -c`, and applies it through the Runtime API when only
/// servers join or leave, or with a master-worker reload otherwise. Every render and apply is
/// journalled (and so shipped to the collector) as a `config` entry.
public final class LBController: Sendable {
    struct State: Codable {
        var cursor: Int64 = 0
        var members: [String: KnownMember] = [:]
        var version = 0
        /// Refusals already recorded, so a hostile member is reported once, not at every apply.
        var reportedRefusals: [String] = []
        /// The sha256 of the version last known to be running in HAProxy (or written while it
        /// was not running, so it starts with it).
        var appliedSha: String?
    }

    private struct Live {
        var state = State()
        /// Set while following Serf because the collector is unreachable.
        var fallback: [String: KnownMember]?
        /// When the stream came back after a fallback: the collector may not have all that
        /// happened meanwhile yet (agents re-ship with backoff), so Serf is followed until the
        /// stream's view agrees with it, or for at most `resumeGrace`.
        var streamResumed: ContinuousClock.Instant?
        var pendingTriggers: [String] = []
        var changes = 0
    }

    let config: AgentConfig.LoadBalancerConfig
    let node: String
    let journal: EventJournal
    /// One per collector, in the agent's order.
    let streams: [EventStreamClient]
    let serfRPC: String?
    let logger: Logger
    let statePath: String
    let haproxy: HAProxyControl
    private let live = Mutex(Live())
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation

    init(
        config: AgentConfig.LoadBalancerConfig, node: String, journal: EventJournal, streams: [EventStreamClient], serfRPC: String?,
        stateDirectory: String, logger: Logger
    ) {
        precondition(!streams.isEmpty, "the LB controller needs a collector (AgentConfig.validate refuses none)")
        self.config = config
        self.node = node
        self.journal = journal
        self.streams = streams
        self.serfRPC = serfRPC
        self.logger = logger
        statePath = stateDirectory + "/lb-state.json"
        haproxy = HAProxyControl(
            executable: config.haproxy, masterSocket: config.masterSocket, runtimeSocket: config.render.runtimeSocket,
            backend: config.backend)
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func run() async {
        if let data = FileManager.default.contents(atPath: statePath), let saved = try? JSONDecoder().decode(State.self, from: data) {
            live.withLock { $0.state = saved }
        }
        let renderer: ConfigRenderer
        do {
            let text = try String(contentsOfFile: config.template, encoding: .utf8)
            renderer = try ConfigRenderer(templateText: text, settings: config.render)
        } catch {
            logger.error("LB controller cannot start: template \(config.template): \(error)")
            record(ConfigApply(
                version: 0, sha256: "", text: "", diff: "", trigger: ["start"], method: "none", durationMilliseconds: 0,
                outcome: .invalid, message: "template \(config.template): \(error)", servers: []))
            return
        }
        await apply(renderer: renderer, trigger: ["start"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followStream() }
            group.addTask { await self.applyLoop(renderer: renderer) }
            if config.statsIntervalMilliseconds > 0 { group.addTask { await self.sampleStats() } }
            // A periodic look, without a change, is what notices an HAProxy that started
            // (or restarted) on an older file: see `reloadIfBehind`.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(2))
                    self.wakeContinuation.yield()
                }
            }
            await group.waitForAll()
        }
    }

    // MARK: Following the cluster

    func followStream() async {
        var collectorDown = false
        var index = 0
        // Collectors that failed in a row: once every one has, the stream is down.
        var failedInARow = 0
        while !Task.isCancelled {
            let cursor = live.withLock { $0.state.cursor }
            let stream = streams[index]
            do {
                try await stream.events(since: cursor, kinds: ["membership"], onOpen: {
                    if collectorDown { self.logger.info("event stream back; resuming from cursor \(cursor)", metadata: ["collector": "\(stream.baseURL)"]) }
                    collectorDown = false
                    failedInARow = 0
                    self.leaveFallback()
                }) { event in
                    self.handle(event)
                    return !Task.isCancelled
                }
            } catch {
                index = (index + 1) % streams.count
                failedInARow += 1
                if failedInARow < streams.count {
                    logger.notice("event stream unavailable; trying the next collector", metadata: ["error": "\(error)"])
                    continue
                }
                failedInARow = 0
                if !collectorDown { logger.warning("event stream unavailable, following local Serf", metadata: ["error": "\(error)"]) }
                collectorDown = true
                await followSerf()
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// The stream's cursor and the members it has told of.
    var followed: (cursor: Int64, members: [String: KnownMember]) {
        live.withLock { ($0.state.cursor, $0.state.members) }
    }

    func handle(_ event: StreamEvent) {
        guard let change = try? StreamEventBody<MembershipChangeEvent>(json: event.data).content else { return }
        let known = KnownMember(address: change.address, role: change.role, status: change.status)
        live.withLock { live in
            live.state.members[change.member] = known
            live.state.cursor = max(live.state.cursor, event.id)
            live.pendingTriggers.append("\(change.member) \(change.change.rawValue)")
            live.changes += 1
        }
        saveState()
        wakeContinuation.yield()
    }

    private func followSerf() async {
        guard let serfRPC, let members = try? await SerfMembers.fetch(rpcAddress: serfRPC) else { return }
        let view = Self.view(of: members)
        let changed = live.withLock { live -> Bool in
            guard live.fallback != view else { return false }
            live.fallback = view
            live.streamResumed = nil
            live.pendingTriggers.append("serf fallback (collector unreachable)")
            live.changes += 1
            return true
        }
        if changed { wakeContinuation.yield() }
    }

    private func leaveFallback() {
        live.withLock { live in
            if live.fallback != nil, live.streamResumed == nil { live.streamResumed = .now }
        }
    }

    static let resumeGrace: Duration = .seconds(30)

    /// Back on the stream after a fallback: follow Serf's fresh view until the stream's view
    /// gives the same servers (or the grace runs out), so nothing flaps while agents re-ship.
    private func settleResumedStream() async {
        guard let resumed = live.withLock({ $0.fallback == nil ? nil : $0.streamResumed }) else { return }
        var fresh: [String: KnownMember]?
        if let serfRPC, let members = try? await SerfMembers.fetch(rpcAddress: serfRPC) {
            fresh = Self.view(of: members)
        }
        live.withLock { live in
            if let fresh { live.fallback = fresh }
            let fromStream = MemberValidation.desiredServers(members: live.state.members, role: config.backendRole, allowLoopback: config.allowLoopbackBackends).servers
            let fromSerf = MemberValidation.desiredServers(members: live.fallback ?? [:], role: config.backendRole, allowLoopback: config.allowLoopbackBackends).servers
            if fromStream == fromSerf || ContinuousClock.now - resumed > Self.resumeGrace {
                live.fallback = nil
                live.streamResumed = nil
                live.pendingTriggers.append("event stream resumed")
            }
        }
    }

    static func view(of members: [Member]) -> [String: KnownMember] {
        Dictionary(
            members.map { ($0.name, KnownMember(address: $0.address, role: $0.role, status: $0.status ?? .alive)) },
            uniquingKeysWith: { $1 })
    }

    // MARK: Applying

    func applyLoop(renderer: ConfigRenderer) async {
        for await _ in wake {
            let first = ContinuousClock.now
            var seen = live.withLock { $0.changes }
            while ContinuousClock.now - first < .milliseconds(config.maxWaitMilliseconds) {
                try? await Task.sleep(for: .milliseconds(config.quietMilliseconds))
                let now = live.withLock { $0.changes }
                if now == seen { break }
                seen = now
            }
            await apply(renderer: renderer, trigger: [])
            if Task.isCancelled { return }
        }
    }

    /// `trigger`: what led here besides the changes still pending (which it takes).
    func apply(renderer: ConfigRenderer, trigger: [String]) async {
        let started = ContinuousClock.now
        await settleResumedStream()
        let trigger = trigger + live.withLock { live -> [String] in
            defer { live.pendingTriggers.removeAll() }
            return live.pendingTriggers
        }
        let (members, reported) = live.withLock { ($0.fallback ?? $0.state.members, $0.state.reportedRefusals) }
        let (servers, refused) = MemberValidation.desiredServers(members: members, role: config.backendRole, allowLoopback: config.allowLoopbackBackends)
        let current = try? String(contentsOfFile: config.config, encoding: .utf8)
        let nextVersion = live.withLock { $0.state.version + 1 }
        let text = renderer.render(servers: servers, version: nextVersion, generatedAt: Timestamp.now())
        let unchanged = current.map { ConfigRenderer.comparable($0) == ConfigRenderer.comparable(text) } ?? false
        let newRefusals = refused.filter { !reported.contains($0) }
        if !newRefusals.isEmpty {
            logger.warning(
                "members refused as backends; the other servers are still rendered",
                metadata: ["refused": "\(newRefusals.joined(separator: "; "))"])
        }
        if unchanged, newRefusals.isEmpty {
            if let current { await reloadIfBehind(current) }
            return
        }
        let version = live.withLock { live -> Int in
            live.state.version = nextVersion
            live.state.reportedRefusals = refused
            return nextVersion
        }
        var entry = ConfigApply(
            version: version, sha256: ConfigRenderer.sha256(text), text: text, diff: ConfigDiff.unified(from: current ?? "", to: text),
            trigger: trigger, method: "none", durationMilliseconds: 0, outcome: .applied,
            message: newRefusals.isEmpty ? nil : newRefusals.joined(separator: "; "), servers: servers.map(\.name))
        defer {
            entry.durationMilliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
            record(entry)
            saveState()
        }
        if unchanged {
            // Nothing to apply: only a refusal to report.
            entry.method = "unchanged"
            entry.outcome = .rejected
            return
        }
        let candidate = config.config + ".candidate"
        if let failure = DurableFile.replace(candidate, with: Data(text.utf8)) {
            entry.outcome = .failed
            entry.message = "cannot write \(candidate): \(failure)"
            return
        }
        defer { unlink(candidate) }
        if let problem = await haproxy.check(configFile: candidate) {
            entry.outcome = .invalid
            entry.message = problem
            logger.error("rendered configuration refused by haproxy -c; the last good one keeps serving", metadata: ["message": "\(problem)"])
            return
        }
        let running = await haproxy.isRunning()
        var method = "file"
        // The Runtime API applies the difference from the file HAProxy runs, so it is only
        // right when HAProxy is known to run the current file; otherwise reload.
        let runsCurrent = current.map { ConfigRenderer.sha256($0) } == live.withLock { $0.state.appliedSha }
        if running, runsCurrent, let current, ConfigRenderer.skeleton(current) == ConfigRenderer.skeleton(text) {
            method = "runtime"
            do {
                try await applyThroughRuntimeAPI(from: current, to: text)
            } catch {
                logger.warning("runtime API apply failed, reloading instead", metadata: ["error": "\(error)"])
                method = "reload"
                entry.message = [entry.message, "runtime API: \(error); reloaded instead"].compactMap { $0 }.joined(separator: "; ")
            }
        } else if running {
            method = "reload"
        }
        entry.method = method
        // The file is written for every method, so a later reload or restart agrees.
        if let failure = DurableFile.replace(config.config, with: Data(text.utf8)) {
            entry.outcome = .failed
            entry.message = "cannot replace \(config.config): \(failure)"
            return
        }
        if method == "reload" {
            do {
                try await haproxy.reload()
            } catch {
                entry.outcome = .failed
                entry.message = [entry.message, "\(error)"].compactMap { $0 }.joined(separator: "; ")
            }
        }
        if entry.outcome == .applied, method != "file" { live.withLock { $0.state.appliedSha = entry.sha256 } }
        if !refused.isEmpty, entry.outcome == .applied, !newRefusals.isEmpty { entry.outcome = .appliedWithRejections }
    }

    /// The file can be newer than what HAProxy runs: written while HAProxy was not running
    /// yet (it may have read the previous file as it started), or before a crash of the
    /// agent. `appliedSha` is only set once HAProxy is known to run a version, so a running
    /// HAProxy whose file differs from it is reloaded.
    private func reloadIfBehind(_ current: String) async {
        let sha = ConfigRenderer.sha256(current)
        guard live.withLock({ $0.state.appliedSha }) != sha, await haproxy.isRunning() else { return }
        do {
            try await haproxy.reload()
            live.withLock { $0.state.appliedSha = sha }
            saveState()
            logger.info("reloaded HAProxy: it was not known to run the current \(config.config)")
        } catch {
            logger.error("reload of the current file failed: \(error)")
        }
    }

    private func applyThroughRuntimeAPI(from old: String, to new: String) async throws(LoadBalancerError) {
        let before = ConfigRenderer.serverLines(old)
        let after = ConfigRenderer.serverLines(new)
        for (name, arguments) in before.sorted(by: { $0.key < $1.key }) where after[name] != arguments {
            try await haproxy.removeServer(name, drainTimeout: .milliseconds(config.drainTimeoutMilliseconds))
        }
        for (name, arguments) in after.sorted(by: { $0.key < $1.key }) where before[name] != arguments {
            try await haproxy.addServer(
                name, arguments: arguments, dynamicCookies: new.contains("dynamic-cookie-key"),
                healthy: Self.healthProbe(arguments: arguments, config: new, client: streams[0].client))
        }
    }

    /// A direct probe of the check HAProxy will make (`option httpchk GET PATH` and the
    /// server's address), or nil when the configuration has no HTTP check.
    static func healthProbe(arguments: String, config: String, client: HTTPClient) -> (@Sendable () async -> Bool)? {
        guard let address = arguments.split(separator: " ").first,
            let line = config.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("option httpchk") })
        else { return nil }
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count >= 4, words[2] == "GET", words[3].hasPrefix("/") else { return nil }
        let url = "http://\(address)\(words[3])"
        return {
            guard let response = try? await client.execute(HTTPClientRequest(url: url), timeout: .milliseconds(500)) else { return false }
            _ = try? await response.body.collect(upTo: 1 << 16)
            return response.status == .ok
        }
    }

    // MARK: History and state

    private func record(_ apply: ConfigApply) {
        do {
            try journal.append([JournalEntry(t: Timestamp.now(), event: .config, observer: node, config: apply)])
        } catch {
            logger.error("cannot journal config version \(apply.version): \(error)")
        }
        logger.info(
            "config version \(apply.version): \(apply.outcome) via \(apply.method)",
            metadata: ["trigger": "\(apply.trigger)", "servers": "\(apply.servers)", "message": "\(apply.message ?? "")"])
    }

    private func saveState() {
        let state = live.withLock { $0.state }
        guard let data = try? JSONEncoder().encode(state) else { return }
        if let failure = DurableFile.replace(statePath, with: data) { logger.warning("cannot save LB state: \(failure)") }
    }

    // MARK: Stats

    private func sampleStats() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(config.statsIntervalMilliseconds))
            guard let csv = try? await haproxy.query("show stat") else { continue }
            let rows = StatTable.parse(csv).filter { $0.proxy == config.backend || $0.name == "FRONTEND" }
            guard !rows.isEmpty else { continue }
            try? journal.append([JournalEntry(t: Timestamp.now(), event: .haproxyStats, observer: node, stats: rows)])
        }
    }
}

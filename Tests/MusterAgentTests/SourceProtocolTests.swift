import AsyncAlgorithms
import Foundation
import Logging
import MusterConfigFile
import MusterLoadBalancer
import MusterWire
import NIOCore
import Synchronization
import Testing

@testable import MusterAgent

/// A source type that exists only here: what a new kind of source costs is this file's
/// `CounterSourceConfig` and `CounterSource`, and one `registering` call.
struct CounterSourceConfig: SourceConfig {
    var id: String
    var count: Int = 3
    /// Set by tests to see a failure at build time.
    var unavailable: String?

    static let type = "counter"
    static let keys = ["count"]

    struct Section: Decodable, Sendable {
        var count: Int?
    }

    init(id: String, count: Int = 3, unavailable: String? = nil) {
        self.id = id
        self.count = count
        self.unavailable = unavailable
    }

    init(entry: SourceEntry, section: Section, relativeTo directory: String) throws(AgentConfigError) {
        try entry.refuseKeysOfOtherTypes(takes: "count")
        self.init(id: entry.id, count: section.count ?? 3)
    }

    func checkRanges() throws(YAMLConfigFile.OutOfRange) {
        try YAMLConfigFile.check(count, in: 0...1000, key: "counter source '\(id)': count")
    }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    func makeSource(_ context: SourceContext) throws -> any LogSource {
        if let unavailable { throw Unavailable(description: "counter source '\(id)': \(unavailable)") }
        return CounterSource(id: id, count: count, generation: context.runGeneration)
    }
}

/// Hands out `count` numbered records, one per `read`; its input does not wait.
final class CounterSource: LogSource {
    let id: String
    let generation: String
    var left: Int
    var next: Int64 = 0
    var stops = 0
    var scans = 0
    /// Records that arrive while it stops, as datagrams queued in a socket would.
    var arrivingAtStop = 0

    init(id: String, count: Int, generation: String, arrivingAtStop: Int = 0) {
        self.id = id
        self.left = count
        self.generation = generation
        self.arrivingAtStop = arrivingAtStop
    }

    var inputWaits: Bool { false }
    func scan() { scans += 1 }

    func read(budget: Int, into batch: inout BatchBuilder) -> Int {
        guard left > 0 else { return 0 }
        left -= 1
        let message = "record \(next)"
        batch.append(SourceRecord(time: 1, generation: generation, offset: next, message: message), source: id)
        next += 1
        return message.utf8.count + 1
    }

    func report(into report: inout SourceReport, metrics: AgentMetrics) {}

    func stop() {
        stops += 1
        left += arrivingAtStop
        arrivingAtStop = 0
    }
}

/// A section that exists only here: what a component costs besides its code.
struct WidgetConfig: ComponentConfig {
    var level = 1

    static let key = "widget"

    struct Section: Decodable, Sendable {
        var level: Int?
    }

    init() {}

    init(section: Section, relativeTo directory: String) {
        if let level = section.level { self.level = level }
    }

    func checkRanges() throws(YAMLConfigFile.OutOfRange) {
        try YAMLConfigFile.check(level, in: 1...5, key: "widget.level")
    }

    var writesEventJournal: Bool { false }

    func run(_ context: ComponentContext) async {}
}

/// A section named like one of the agent's own keys.
struct SourcesSection: ComponentConfig {
    static let key = "sources"
    struct Section: Decodable, Sendable {}
    init(section: Section, relativeTo directory: String) {}
    func run(_ context: ComponentContext) async {}
}

@Suite struct SourceRegistrationTests {
    static let withCounter = try! AgentComponents.standard.registering(CounterSourceConfig.self)

    /// Loads `yaml` (a token added) with `components`, validates it; the error's text or nil.
    func problem(_ yaml: String, components: AgentComponents = withCounter) throws -> String? {
        let dir = try ScratchDirectory()
        try dir.append("collector: {token: t}\n" + yaml, to: "agent.yaml")
        do {
            try AgentConfig.load(path: dir.path + "/agent.yaml", components: components).validate()
            return nil
        } catch {
            return "\(error)"
        }
    }

    func load(_ yaml: String, components: AgentComponents = withCounter) throws -> AgentConfig {
        let dir = try ScratchDirectory()
        try dir.append("collector: {token: t}\n" + yaml, to: "agent.yaml")
        return try AgentConfig.load(path: dir.path + "/agent.yaml", components: components)
    }

    @Test func theStandardRegistrationsAreTheOnesTheFileFormatHas() {
        #expect(AgentComponents.musterAgent.sourceTypes == ["file", "syslog"])
        #expect(AgentComponents.musterAgent.sectionKeys == ["membership", "inventory", "lb"])
    }

    @Test func aTypeOrASectionIsRegisteredOnce() {
        #expect(throws: AgentComponents.Conflict(description: "source type 'file' is registered twice")) {
            try AgentComponents.standard.registering(AgentConfig.FileSourceConfig.self)
        }
        #expect(throws: AgentComponents.Conflict(description: "config section 'lb' is registered twice")) {
            try AgentComponents.musterAgent.registering(AgentConfig.LoadBalancerConfig.self)
        }
        #expect(throws: AgentComponents.Conflict.self) { try Self.withCounter.registering(CounterSourceConfig.self) }
    }

    @Test func aRegisteredTypeIsLoadedCheckedAndListed() throws {
        let config = try load("sources:\n  - {id: c, type: counter, count: 7}\n  - {id: f, paths: [/x]}\n")
        #expect(config.sources.map(\.id) == ["c", "f"])
        #expect((config.sources[0] as? CounterSourceConfig)?.count == 7)
        #expect(config.fileSources.map(\.id) == ["f"])
        #expect(try problem("sources: [{id: c, type: counter, count: 1001}]")
            == "invalid agent config: counter source 'c': count: must be between 0 and 1000, not 1001")
        #expect(try problem("sources: [{id: c, type: kounter}]")?.hasSuffix("unknown type 'kounter' (known: file, syslog, counter)") == true)
        // Unregistered, it is a type like any other the agent does not know.
        #expect(try problem("sources: [{id: c, type: counter}]", components: .standard)?
            .hasSuffix("unknown type 'counter' (known: file, syslog)") == true)
    }

    @Test func itsKeysAreKnownToTheTypoCheckAndRefusedOnOtherTypes() throws {
        #expect(try problem("sources: [{id: c, type: counter, cuont: 1}]")?.hasSuffix("unknown key 'cuont' in sources[0] (did you mean 'count'?)") == true)
        #expect(try problem("sources: [{id: f, paths: [/x], count: 1}]")
            == "invalid agent config: source 'f': count is for type: counter; a file source takes paths")
        #expect(try problem("sources: [{id: c, type: counter, listen: [udp://h:1]}]")
            == "invalid agent config: source 'c': listen and buffer_messages are for type: syslog; a counter source takes count")
    }

    /// Ids are the agent's to check, whatever the types: unique, not empty, not reserved.
    @Test func idsAreUniqueAcrossTypes() throws {
        #expect(try problem("sources:\n  - {id: a, type: counter}\n  - {id: a, paths: [/x]}\n")
            == "invalid agent config: source id 'a' is used twice")
        #expect(try problem("sources:\n  - {id: a, type: syslog, listen: [udp://h:1]}\n  - {id: a, type: counter}\n")
            == "invalid agent config: source id 'a' is used twice")
        #expect(try problem("sources: [{id: '', type: counter}]") == "invalid agent config: a counter source has an empty id")
        #expect(try problem("sources: [{id: events, type: counter}]")
            == "invalid agent config: source id 'events' is reserved for the event journal (see 'membership')")
        #expect(try problem("sources: [{id: agent, type: counter}]")
            == "invalid agent config: source id 'agent' is reserved for the agent's own notices")
    }

    @Test func aComponentOwnsItsSection() throws {
        let components = try AgentComponents.standard.registering(WidgetConfig.self)
        let config = try load("sources: [{id: f, paths: [/x]}]\nwidget: {level: 4}\n", components: components)
        #expect(config.component(WidgetConfig.self)?.level == 4)
        // It does not write to the journal, so there is none.
        #expect(config.journalPath == nil && config.effectiveSources.count == 1)
        #expect(try problem("sources: [{id: f, paths: [/x]}]\nwidget: {level: 9}\n", components: components)
            == "invalid agent config: widget.level: must be between 1 and 5, not 9")
        #expect(try problem("sources: [{id: f, paths: [/x]}]\nwidget: {levl: 2}\n", components: components)?
            .hasSuffix("unknown key 'levl' in widget (did you mean 'level'?)") == true)
        #expect(try problem("sources: [{id: f, paths: [/x]}]\nwidget: {}\n", components: .musterAgent)?.hasSuffix(
            "unknown key 'widget' (known: agent_id, batch, collector, files, http, inventory, lb, membership, memory, node, retry, shutdown_grace_ms, sources, spool, state_dir)"
        ) == true)
        #expect(throws: AgentComponents.Conflict(description: "config section 'sources' is one of the agent's own keys")) {
            try AgentComponents.standard.registering(SourcesSection.self)
        }
    }

    /// Every source is built at start; when one cannot be, the agent does not start, says why,
    /// and the sources built before it are stopped (their sockets released).
    @Test func aSourceThatCannotBeBuiltStopsTheAgentAtStart() throws {
        let dir = try ScratchDirectory()
        var config = AgentConfig()
        config.collector.token = "t"
        config.stateDirectory = dir.path + "/state"
        let first = AgentConfig.SyslogSourceConfig(id: "first", listen: ["unix://" + dir.path + "/first.sock"])
        config.sources = [first, CounterSourceConfig(id: "c", unavailable: "the counter is taken")]
        #expect(throws: AgentConfigError.invalid("counter source 'c': the counter is taken")) {
            _ = try Agent(config: config, logger: Logger(label: "test"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/first.sock"), "the socket bound first was released")
    }
}

@Suite struct SourcePositionTests {
    /// A file source built as the agent builds it, keeping its state in `dir`.
    func fileSource(_ config: AgentConfig.FileSourceConfig, in dir: ScratchDirectory) -> FileSource {
        FileSource(
            config: config,
            context: SourceContext(agentID: "a1", stateDirectory: dir.path, logger: Logger(label: "test"), runGeneration: "run-1"))
    }

    /// The records of a closed batch, as the collector decodes them.
    func records(_ batch: EncodedBatch) throws -> [LogRecord] {
        try BatchCodec.decode(ByteBuffer(bytes: batch.ndjson))
    }

    /// A file read to a line cut in the middle: the batch's position is the end of the last
    /// whole line, not where reading stopped, and the rest of the line comes with the next.
    @Test func aFileSourceReportsPositionsOnlyForTheLinesItHandedOver() throws {
        let dir = try ScratchDirectory()
        try dir.append("one\ntwo\npart", to: "app.log")
        let source = fileSource(.init(id: "app", paths: [dir.path + "/app.log"], format: .plain), in: dir)
        var batch = BatchBuilder(node: "n", agent: "a1")
        source.scan()
        #expect(source.read(budget: 1 << 20, into: &batch) == 12, "every byte is read")
        let first = batch.close()
        #expect(first.records == 2)
        #expect(first.positions.map(\.offset) == [8] && first.positions.map(\.source) == ["app"])

        try dir.append("ial\nlast\n", to: "app.log")
        #expect(source.read(budget: 1 << 20, into: &batch) == 9)
        let second = batch.close()
        #expect(try records(second).map(\.message) == ["partial", "last"])
        #expect(second.positions.map(\.offset) == [21])
        #expect(try records(second).map(\.origin.offset) == [8, 16])
        source.stop()
    }

    /// The positions a batch carried, once checkpointed, are where the next run's source starts.
    @Test func aRestartedSourceResumesWhereItsCheckpointsSay() throws {
        let dir = try ScratchDirectory()
        try dir.append("one\ntwo\n", to: "app.log")
        let config = AgentConfig.FileSourceConfig(id: "app", paths: [dir.path + "/app.log"], format: .plain)
        var checkpoints = try CheckpointStore(path: dir.path + "/checkpoints.json")
        do {
            let source = fileSource(config, in: dir)
            var batch = BatchBuilder(node: "n", agent: "a1")
            source.scan()
            _ = source.read(budget: 1 << 20, into: &batch)
            for position in batch.close().positions { checkpoints.advance(position) }
            source.stop()
        }
        try dir.append("three\n", to: "app.log")
        let positions = ResumePositions()
        positions.load(checkpoints)
        let restarted = FileSource(
            config: config,
            context: SourceContext(
                agentID: "a1", stateDirectory: dir.path, logger: Logger(label: "test"), runGeneration: "run-2", positions: positions))
        var batch = BatchBuilder(node: "n", agent: "a1")
        restarted.scan()
        _ = restarted.read(budget: 1 << 20, into: &batch)
        #expect(try records(batch.close()).map(\.message) == ["three"])
    }

    /// With a small budget a read stops after a few lines; the position stops with them.
    @Test func aBudgetStopsTheReadAndThePositionWithIt() throws {
        let dir = try ScratchDirectory()
        let line = String(repeating: "x", count: 99) + "\n"
        try dir.append(String(repeating: line, count: 50), to: "app.log")
        let source = fileSource(.init(id: "app", paths: [dir.path + "/app.log"], format: .plain), in: dir)
        var batch = BatchBuilder(node: "n", agent: "a1")
        source.scan()
        var consumed = 0
        while consumed < 5000 {
            let count = source.read(budget: 250, into: &batch)
            #expect(count == 250)
            consumed += count
            // Reading stops mid-line every other time; the position stops at the line before.
            let closed = batch.close()
            #expect(closed.positions.map(\.offset) == [Int64(consumed / 100 * 100)], "after \(consumed) bytes")
        }
        #expect(source.read(budget: 250, into: &batch) == 0)
    }

    /// A multiline record still open is not handed over, and its lines are not in the position.
    @Test func anOpenMultilineRecordIsNotPositioned() throws {
        let dir = try ScratchDirectory()
        try dir.append("2024 first\n\tat a\n2024 second\n\tat b\n", to: "app.log")
        let config = AgentConfig.FileSourceConfig(
            id: "app", paths: [dir.path + "/app.log"], format: .plain, multiline: MultilineSettings(start: "^2024", timeoutMilliseconds: 60_000))
        let source = fileSource(config, in: dir)
        var batch = BatchBuilder(node: "n", agent: "a1")
        source.scan()
        while source.read(budget: 1 << 20, into: &batch) > 0 {}
        let closed = batch.close()
        #expect(try records(closed).map(\.message) == ["2024 first\n\tat a"])
        #expect(closed.positions.map(\.offset) == [17], "the second record may still grow: the position stays before it")
    }

    /// Datagrams cannot be read again: no positions, and their origin is the run and a sequence.
    @Test func aSyslogSourceReportsNoPositionsAndNumbersItsRecordsInTheRun() throws {
        let source = SyslogSource(
            config: .init(id: "sys", listen: ["udp://127.0.0.1:0"]), agentID: "a1", logger: Logger(label: "test"), runGeneration: "run-7")
        try source.start()
        defer { source.stop() }
        try sendDatagrams(["<13>one", "<13>two", "<13>three"], udpPort: try boundUDPPort(source))
        #expect(waitFor { source.counters.buffered == 3 })
        var batch = BatchBuilder(node: "n", agent: "a1")
        #expect(source.read(budget: 1 << 20, into: &batch) > 0)
        let closed = batch.close()
        #expect(closed.positions.isEmpty)
        let lines = try records(closed)
        #expect(lines.map(\.message) == ["one", "two", "three"])
        #expect(lines.map(\.origin.generation) == ["run-7", "run-7", "run-7"])
        #expect(lines.map(\.origin.offset) == [0, 1, 2])
        #expect(lines.map(\.origin.source) == ["sys", "sys", "sys"])
    }
}

/// The batcher's side of the protocol, with sources that exist only here.
@Suite struct BatcherTests {
    /// An agent whose batcher can be run alone: it never starts the rest of the pipeline.
    func agent(_ dir: ScratchDirectory) throws -> Agent {
        var config = AgentConfig()
        config.collector.token = "t"
        config.stateDirectory = dir.path + "/state"
        config.sources = [CounterSourceConfig(id: "unused", count: 0)]
        config.batch.maxRecords = 4
        return try Agent(config: config, logger: Logger(label: "test"))
    }

    /// A source whose input does not wait is drained every round into as many batches as it
    /// takes; at shutdown it is stopped, then drained of what arrived meanwhile, once.
    @Test func aSourceThatCannotWaitIsDrainedAndDrainedAgainAfterStop() async throws {
        let dir = try ScratchDirectory()
        let agent = try agent(dir)
        let (spool, _) = try Spool.open(agent.config.spool.settings(stateDirectory: agent.config.stateDirectory))
        let channel = AsyncChannel<EncodedBatch>()
        let received = Mutex<[EncodedBatch]>([])
        let batcher = Task {
            let source = CounterSource(id: "c", count: 10, generation: "run-1", arrivingAtStop: 3)
            await agent.batchLoop(
                sources: [RunningSource(config: CounterSourceConfig(id: "c", count: 10), source: source)], spool: spool,
                into: channel)
            return (stops: source.stops, scans: source.scans)
        }
        let collector = Task {
            for await batch in channel {
                received.withLock { $0.append(batch) }
                agent.batchesOnTheirWay.withLock { $0 -= 1 }
                // Every batch but the first: the first ten records came in one round.
                if received.withLock({ $0.reduce(0) { $0 + $1.records } }) >= 10 { agent.stopping.withLock { $0 = true } }
            }
        }
        let source = await batcher.value
        await collector.value
        let batches = received.withLock { $0 }
        #expect(batches.map(\.records).reduce(0, +) == 13, "ten read while running, three taken after stop")
        #expect(batches.allSatisfy { $0.records <= 4 }, "batches close at max_records")
        #expect(source.stops == 1 && source.scans >= 1)
        spool.close()
        try await agent.client.shutdown()
    }
}

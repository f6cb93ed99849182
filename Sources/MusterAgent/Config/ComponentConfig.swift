import AsyncHTTPClient
import Logging
import MusterConfigFile

/// The configuration of a part of the agent that has a top-level section of its own in the
/// config file (`membership:`, `inventory:`, `lb:`) and runs beside the pipeline. It owns its
/// section: decodes it (`Section`), resolves and checks it, and runs the component.
///
/// What a component has to report, it appends to the event journal, which the pipeline ships
/// as source `events`; the agent keeps a journal only while some component writes to it
/// (`writesEventJournal`). Loading and checking never touch the system; only `run` does,
/// in a task of its own that is cancelled when the agent stops.
public protocol ComponentConfig: Sendable, Equatable {
    /// The section as decoded from the file, every key optional.
    associatedtype Section: Decodable & Sendable
    /// The section's key at the top level of the file, e.g. `lb`.
    static var key: String { get }

    /// Resolves the section: defaults filled in, paths made absolute against `directory`.
    init(section: Section, relativeTo directory: String) throws(AgentConfigError)
    /// Checks what a typo would otherwise turn into a confusing failure later.
    func validate() throws(AgentConfigError)
    /// Every numeric setting against its range.
    func checkRanges() throws(YAMLConfigFile.OutOfRange)
    /// Whether it appends to the event journal.
    var writesEventJournal: Bool { get }
    /// Where it wants the journal to be, when it says (the first component that does decides).
    var eventJournalPath: String? { get }
    /// Does the component's work until the task is cancelled (when the agent stops).
    func run(_ context: ComponentContext) async
}

extension ComponentConfig {
    public func validate() throws(AgentConfigError) {}
    public func checkRanges() throws(YAMLConfigFile.OutOfRange) {}
    public var writesEventJournal: Bool { true }
    public var eventJournalPath: String? { nil }
}

/// What a component runs with.
public struct ComponentContext: Sendable {
    /// The whole configuration: a component may read another's section (the LB controller
    /// asks Serf, at the address `membership:` gives).
    public var config: AgentConfig
    /// The journal the agent ships as source `events`; nil when no component writes to it.
    public var journal: EventJournal?
    /// The agent's client for the collector (`config.collector` says where and with which token).
    public var client: HTTPClient
    public var logger: Logger
}

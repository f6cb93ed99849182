import MusterConfigFile
import MusterWire

/// The configuration of one kind of source: an entry of `sources:` in the config file whose
/// `type:` is `Self.type`. It owns its keys there: it decodes them (`Section`), resolves and
/// checks them, and builds the source the pipeline reads.
///
/// The keys every entry has — `id`, `type`, `parse` — are read and checked by the agent
/// (ids unique across all sources, not reserved; `parse` a known parser), and handed over as
/// a `SourceEntry`. Loading and checking never touch the system; only `makeSource` does.
/// Configurations compare equal when they would build the same source.
public protocol SourceConfig: Sendable, Equatable {
    /// The entry's keys this type reads, as decoded from the file, every one optional.
    associatedtype Section: Decodable & Sendable
    /// The `type:` that selects it, e.g. `file`.
    static var type: String { get }
    /// The keys of `Section`, in the order messages list them: an entry of another type that
    /// has one of them is told they are for this type.
    static var keys: [String] { get }
    /// How messages name a source of this type, e.g. `syslog source`.
    static var label: String { get }

    /// Resolves an entry of this type: required keys present, values well-formed, paths made
    /// absolute against `directory` (the config file's). Calls `entry.refuseKeysOfOtherTypes`.
    init(entry: SourceEntry, section: Section, relativeTo directory: String) throws(AgentConfigError)

    var id: String { get }
    /// Checks the configuration however it was made (file, flags, code), after the agent has
    /// checked the id; claims in `claims` what only one source may have (a listen address).
    func validate(claims: inout SourceClaims) throws(AgentConfigError)
    /// Every numeric setting against its range.
    func checkRanges() throws(YAMLConfigFile.OutOfRange)
    /// The source, ready to be scanned and read; what it needs exclusively (a socket) it
    /// acquires now, so that the agent stops at start when it cannot have it. The error says
    /// which source and why.
    func makeSource(_ context: SourceContext) throws -> any LogSource
}

extension SourceConfig {
    public static var label: String { "\(type) source" }
    public func validate(claims: inout SourceClaims) throws(AgentConfigError) {}
    public func checkRanges() throws(YAMLConfigFile.OutOfRange) {}
}

/// The keys every `sources:` entry has, as resolved by the agent, and what a type needs to
/// refuse keys that belong to another type.
public struct SourceEntry: Sendable {
    public var id: String
    /// The entry's `type:` (`file` when it has none).
    public var type: String
    /// `parse:`: lines parsed into fields as they are read (none: the message only).
    public var parse: LineParser?
    /// `message_key:` (only with `parse: json`): the key holding the message.
    public var messageKey: String?
    /// The other types whose keys the entry has, with all their keys.
    var strayKeys: [(type: String, keys: [String])] = []

    /// Throws when the entry has keys of another type (`listen` on a file source): they would
    /// be ignored without a word. `takes` names the key this type needs instead.
    public func refuseKeysOfOtherTypes(takes key: String) throws(AgentConfigError) {
        guard let stray = strayKeys.first else { return }
        let verb = stray.keys.count == 1 ? "is" : "are"
        throw .invalid("source '\(id)': \(Self.list(stray.keys)) \(verb) for type: \(stray.type); a \(type) source takes \(key)")
    }

    /// `a`, `a and b`, `a, b and c`.
    static func list(_ words: [String]) -> String {
        guard words.count > 1 else { return words.first ?? "" }
        return words.dropLast().joined(separator: ", ") + " and " + words.last!
    }
}

/// What the sources configured so far have claimed, for the next one's checks: ids, which must
/// be unique, and resources only one source can have (a listen address).
public struct SourceClaims: Sendable {
    /// Source ids the agent's own records use, and what for.
    static let reserved: [(id: String, purpose: String)] = [
        (JournalEntry.sourceID, "the event journal (see 'membership')"),
        (NoticeWriter.sourceID, "the agent's own notices"),
    ]

    private var ids = Set<String>()
    private var resources = Set<String>()

    init() {}

    /// Checks the id of a source of type `label` and claims it.
    mutating func claim(id: String, label: String) throws(AgentConfigError) {
        guard !id.isEmpty else { throw .invalid("a \(label) has an empty id") }
        if let reserved = Self.reserved.first(where: { $0.id == id }) {
            throw .invalid("source id '\(id)' is reserved for \(reserved.purpose)")
        }
        guard ids.insert(id).inserted else { throw .invalid("source id '\(id)' is used twice") }
    }

    /// Claims `resource` (e.g. `udp://127.0.0.1:514`); false when another source has it.
    public mutating func claim(resource: String) -> Bool {
        resources.insert(resource).inserted
    }
}

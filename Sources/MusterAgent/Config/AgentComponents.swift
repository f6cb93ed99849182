import MusterConfigFile

/// What an agent can be configured with: the source types a `sources:` entry may name, and the
/// components that own a top-level section of the file. The agent knows no kind of source or
/// component by name; it loads, checks, builds and runs whatever is registered here.
///
/// A new source is a folder with its `SourceConfig` and `LogSource`, plus one line in
/// `standard` (or one `registering` call by the program that links it); a component likewise.
/// The order of registration is the order in which sections are decoded and checked, and in
/// which `unknown type` lists the types.
public struct AgentComponents: Sendable {
    /// Registered types, in order.
    public var sourceTypes: [String] { sources.map(\.type) }
    /// Registered sections' keys, in order.
    public var sectionKeys: [String] { sections.map(\.key) }

    private(set) var sources: [SourceType]
    private(set) var sections: [Section]

    /// Everything this module has.
    public static let standard = AgentComponents(
        sources: [SourceType(AgentConfig.FileSourceConfig.self), SourceType(AgentConfig.SyslogSourceConfig.self)],
        sections: [
            Section(AgentConfig.MembershipConfig.self), Section(AgentConfig.InventoryConfig.self),
        ])

    private init(sources: [SourceType], sections: [Section]) {
        self.sources = sources
        self.sections = sections
    }

    /// Two registrations under one name: a mistake in the program, not in a config file.
    public struct Conflict: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// These components and a source type selected by `type: Config.type`.
    public func registering<Config: SourceConfig>(_ config: Config.Type) throws(Conflict) -> AgentComponents {
        guard !sourceTypes.contains(Config.type) else { throw Conflict(description: "source type '\(Config.type)' is registered twice") }
        var registered = self
        registered.sources.append(SourceType(config))
        return registered
    }

    /// These components and one owning the top-level section `Config.key`.
    public func registering<Config: ComponentConfig>(_ config: Config.Type) throws(Conflict) -> AgentComponents {
        guard !AgentConfig.coreKeys.contains(Config.key) else {
            throw Conflict(description: "config section '\(Config.key)' is one of the agent's own keys")
        }
        guard !sectionKeys.contains(Config.key) else { throw Conflict(description: "config section '\(Config.key)' is registered twice") }
        var registered = self
        registered.sections.append(Section(config))
        return registered
    }

    // MARK: Type-erased registrations

    /// A source type, its generic parts captured in closures.
    struct SourceType: Sendable {
        let type: String
        let keys: [String]
        let decode: @Sendable (any Decoder) throws -> any Sendable
        let resolve: @Sendable (SourceEntry, any Sendable, String) throws(AgentConfigError) -> any SourceConfig

        init<Config: SourceConfig>(_: Config.Type) {
            type = Config.type
            keys = Config.keys
            decode = { decoder in try Config.Section(from: decoder) }
            resolve = { entry, section, directory throws(AgentConfigError) in
                try Config(entry: entry, section: section as! Config.Section, relativeTo: directory)
            }
        }
    }

    /// A component's section, its generic parts captured in closures.
    struct Section: Sendable {
        let key: String
        let decode: @Sendable (KeyedDecodingContainer<ConfigKey>) throws -> (any Sendable)?
        let resolve: @Sendable (any Sendable, String) throws(AgentConfigError) -> any ComponentConfig

        init<Config: ComponentConfig>(_: Config.Type) {
            key = Config.key
            decode = { container in try container.decodeIfPresent(Config.Section.self, forKey: ConfigKey(Config.key)) }
            resolve = { section, directory throws(AgentConfigError) in
                try Config(section: section as! Config.Section, relativeTo: directory)
            }
        }
    }

    // MARK: Decoding and resolving

    /// Where `YAMLConfigFile` hands the registrations to the decoder.
    static let userInfoKey = CodingUserInfoKey(rawValue: "muster.agentComponents")!

    static func from(_ decoder: any Decoder) -> AgentComponents {
        decoder.userInfo[userInfoKey] as? AgentComponents ?? .standard
    }

    /// One `sources:` entry as written: the keys every entry has, and every registered type's
    /// section (each asks for its own keys, so a key no type knows is reported as unknown).
    struct RawSource: Decodable, Sendable {
        var id: String
        var type: String?
        var parse: String?
        var messageKey: String?
        /// By registered type, in order; with whether the entry has any of that type's keys.
        var sections: [(section: any Sendable, present: Bool)]

        init(from decoder: any Decoder) throws {
            let components = AgentComponents.from(decoder)
            let container = try decoder.container(keyedBy: ConfigKey.self)
            id = try container.decode(String.self, forKey: "id")
            type = try container.decodeIfPresent(String.self, forKey: "type")
            parse = try container.decodeIfPresent(String.self, forKey: "parse")
            messageKey = try container.decodeIfPresent(String.self, forKey: "message_key")
            sections = try components.sources.map { type in
                (try type.decode(decoder), type.keys.contains { container.contains(ConfigKey($0)) })
            }
        }
    }

    /// The entry as the configuration of its type.
    func resolve(_ raw: RawSource, relativeTo directory: String) throws(AgentConfigError) -> any SourceConfig {
        var parser: LineParser?
        if let name = raw.parse {
            guard let known = LineParser(rawValue: name) else {
                throw .invalid(
                    "source '\(raw.id)': unknown parse '\(name)' (known: \(LineParser.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            parser = known
        }
        if let key = raw.messageKey {
            guard parser == .json else {
                throw .invalid("source '\(raw.id)': message_key: names the message's key of parse: json; this source has \(raw.parse.map { "parse: \($0)" } ?? "no parse:")")
            }
            guard !key.isEmpty else { throw .invalid("source '\(raw.id)': message_key: is empty (leave it out for msg, message or log)") }
        }
        let type = raw.type ?? AgentConfig.FileSourceConfig.type
        guard let index = sources.firstIndex(where: { $0.type == type }) else {
            throw .invalid("source '\(raw.id)': unknown type '\(type)' (known: \(sourceTypes.joined(separator: ", ")))")
        }
        var entry = SourceEntry(id: raw.id, type: type, parse: parser, messageKey: raw.messageKey)
        for (other, (_, present)) in zip(sources, raw.sections) where present && other.type != type {
            entry.strayKeys.append((other.type, other.keys))
        }
        return try sources[index].resolve(entry, raw.sections[index].section, directory)
    }

    /// The registered sections present at the top level of the file, decoded, in order.
    func decodeSections(from container: KeyedDecodingContainer<ConfigKey>) throws -> [(Section, any Sendable)] {
        try sections.compactMap { section in try section.decode(container).map { (section, $0) } }
    }
}

/// Any key of a mapping in the config file.
struct ConfigKey: CodingKey, ExpressibleByStringLiteral {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ key: String) { stringValue = key }
    init(stringValue: String) { self.stringValue = stringValue }
    init(stringLiteral value: String) { stringValue = value }
    init?(intValue: Int) { nil }
}

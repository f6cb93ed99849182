import Foundation
import Yams

/// What the agent's and the collector's YAML config files have in common: reading one,
/// refusing keys nothing reads, reporting its errors without leaking secrets, checking
/// numbers against their ranges, and resolving the paths it names.
public enum YAMLConfigFile {
    public enum Failure: Error, Equatable {
        /// The file could not be read (missing, permissions, not UTF-8).
        case unreadable(detail: String)
        /// The file is not valid YAML for the expected shape; the detail is safe to log.
        case invalid(detail: String)
    }

    /// Decodes the YAML file at `path`. Errors never quote the file's text (see `describe`).
    /// `userInfo` reaches every decoder (e.g. the types a section may hold).
    public static func decode<Value: Decodable>(
        _ type: Value.Type, fromFileAt path: String, userInfo: [CodingUserInfoKey: any Sendable] = [:]
    ) throws(Failure) -> Value {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadable(detail: error.localizedDescription)
        }
        return try decode(type, from: text, userInfo: userInfo)
    }

    /// Decodes YAML text, refusing a key that `Value` does not read (a typo would otherwise
    /// leave the setting at its default without a word): the error names the key, where it
    /// is, and the known key nearest to it.
    public static func decode<Value: Decodable>(
        _ type: Value.Type, from text: String, userInfo: [CodingUserInfoKey: any Sendable] = [:]
    ) throws(Failure) -> Value {
        let keys = KeyUsage()
        let value: Value
        do {
            value = try YAMLDecoder().decode(
                KeyCheckedValue<Value>.self, from: text, userInfo: userInfo.merging([KeyUsage.userInfoKey: keys]) { _, own in own }).value
        } catch {
            throw .invalid(detail: describe(error))
        }
        if let unknown = keys.unknownKeys().first { throw .invalid(detail: unknown.description) }
        return value
    }

    /// A YAML or decoding error without the text of the line it quotes: that line may be
    /// `token: ...`, and this message goes to stderr and from there into logs.
    public static func describe(_ error: any Error) -> String {
        var error = error
        if case DecodingError.dataCorrupted(let context) = error, let underlying = context.underlyingError { error = underlying }
        if let decoding = error as? DecodingError { return describe(decoding) }
        guard let yaml = error as? YamlError else { return "\(error)" }
        switch yaml {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let during = context.map { "\($0.text) at \($0.mark): " } ?? ""
            return "not valid YAML at line \(mark.line), column \(mark.column): \(during)\(problem)"
        case .reader(let problem, let offset, _, _):
            return "not valid YAML at byte \(offset.map(String.init) ?? "?"): \(problem)"
        default:
            return "\(yaml)"
        }
    }

    /// A value of the wrong type, or a required key left out, named by its key path.
    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let context):
            let expected = type is any BinaryInteger.Type ? "a whole number (no exponent, no fraction)" : "a value of type \(type)"
            return "\(keyPath(context.codingPath)): expected \(expected)"
        case .valueNotFound(let type, let context):
            return "\(keyPath(context.codingPath)): expected a value of type \(type), found none"
        case .keyNotFound(let key, let context):
            return "\(keyPath(context.codingPath + [key])): missing"
        case .dataCorrupted(let context):
            return "\(keyPath(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// `limits.max_body_bytes`, `sources[2].paths`.
    static func keyPath(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == "\(index)" {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text.isEmpty ? "the top level" : text
    }

    /// A path named in a config file: relative means next to the file, so a config directory
    /// can be moved whole.
    public static func path(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") || directory.isEmpty ? path : directory + "/" + path
    }

    /// A numeric setting outside the values the program can use.
    public struct OutOfRange: Error, CustomStringConvertible, Equatable {
        /// Its key path, e.g. `limits.max_body_bytes`.
        public var key: String
        /// `must be between 1 and 1073741824, not -1`
        public var requirement: String

        public init<Value: BinaryInteger>(key: String, value: Value, allowed: ClosedRange<Value>, note: String? = nil) {
            self.key = key
            self.requirement = "must be between \(allowed.lowerBound) and \(allowed.upperBound)"
                + (note.map { " (\($0))" } ?? "") + ", not \(value)"
        }

        /// `limits.max_body_bytes: must be between 1 and 1073741824, not -1`
        public var description: String { "\(key): \(requirement)" }
    }

    /// Throws unless `value` is in `allowed`. `note` says what an end of the range means
    /// (`0 turns it off`).
    public static func check<Value: BinaryInteger>(
        _ value: Value, in allowed: ClosedRange<Value>, key: String, note: String? = nil
    ) throws(OutOfRange) {
        guard allowed.contains(value) else { throw OutOfRange(key: key, value: value, allowed: allowed, note: note) }
    }
}

// MARK: Unknown keys

/// A key in the file that the type decoded from it never asked for.
struct UnknownKey: CustomStringConvertible {
    var key: String
    /// Where the mapping holding it is (`limits`, `sources[1]`), or "the top level".
    var location: String
    var known: [String]

    var description: String {
        let place = location == YAMLConfigFile.keyPath([]) ? "" : " in \(location)"
        if let nearest = Self.nearest(to: key, among: known) {
            return "unknown key '\(key)'\(place) (did you mean '\(nearest)'?)"
        }
        return "unknown key '\(key)'\(place) (known: \(known.sorted().joined(separator: ", ")))"
    }

    /// The known key a typo most likely meant: the one with the fewest single-character edits
    /// when they are few for its length, or one that starts with the other (`state_directory`
    /// for `state_dir`, `initial` for `initial_ms`).
    static func nearest(to key: String, among known: [String]) -> String? {
        let scored = known.map { candidate -> (key: String, edits: Int) in
            let edits = editDistance(Array(key.utf8), Array(candidate.utf8))
            let prefixed = min(key.utf8.count, candidate.utf8.count) >= 3 && (key.hasPrefix(candidate) || candidate.hasPrefix(key))
            return (candidate, edits <= max(2, max(key.utf8.count, candidate.utf8.count) / 4) ? edits : prefixed ? 3 : Int.max)
        }
        guard let best = scored.min(by: { $0.edits < $1.edits }), best.edits < Int.max else { return nil }
        return best.key
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// What the decoded types asked for, per mapping in the file: every `Decodable` asks for the
/// keys it knows (`decode`, `decodeIfPresent`, `contains`), so a key in the file that nothing
/// asked for is one nothing reads. Nothing to declare per type, and nothing to keep in step
/// with the `CodingKeys`. A type that asks for `allKeys` (a dictionary) takes any key.
final class KeyUsage: @unchecked Sendable {
    static let userInfoKey = CodingUserInfoKey(rawValue: "muster.keyUsage")!

    struct Mapping {
        var path: [any CodingKey]
        /// In the file's order.
        var present: [String]
        var asked: Set<String> = []
        var takesAnyKey = false
    }

    /// By key path; decoding runs on one thread.
    private var mappings: [String: Mapping] = [:]
    private var order: [String] = []

    func opened(path: [any CodingKey], present: [String]) {
        let id = YAMLConfigFile.keyPath(path)
        if mappings[id] == nil {
            mappings[id] = Mapping(path: path, present: present)
            order.append(id)
        }
    }

    func asked(_ key: String, at path: [any CodingKey]) { mappings[YAMLConfigFile.keyPath(path)]?.asked.insert(key) }

    func tookAnyKey(at path: [any CodingKey]) { mappings[YAMLConfigFile.keyPath(path)]?.takesAnyKey = true }

    /// In the order the mappings were decoded, each mapping's keys in the file's order.
    func unknownKeys() -> [UnknownKey] {
        order.compactMap { mappings[$0] }.filter { !$0.takesAnyKey }.flatMap { mapping in
            mapping.present.filter { !mapping.asked.contains($0) }.map {
                UnknownKey(key: $0, location: YAMLConfigFile.keyPath(mapping.path), known: mapping.asked.sorted())
            }
        }
    }
}

/// The file's top level: decodes `Value` through `KeyCheckingDecoder`.
private struct KeyCheckedValue<Value: Decodable>: Decodable {
    var value: Value

    init(from decoder: any Decoder) throws {
        guard let usage = decoder.userInfo[KeyUsage.userInfoKey] as? KeyUsage else {
            value = try Value(from: decoder)
            return
        }
        value = try Value(from: KeyCheckingDecoder(base: decoder, usage: usage))
    }
}

/// Any string as a key: lists every key of a mapping, known to the type or not.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Yams decodes its scalars (numbers, strings, booleans) itself, from the node; everything
/// else is decoded through `init(from:)`, which must see the checking decoder again.
private func isScalar<T>(_ type: T.Type) -> Bool { type is any ScalarConstructible.Type }

/// Passes everything to Yams' decoder and notes, for each mapping, which keys were asked for.
private struct KeyCheckingDecoder: Decoder {
    let base: any Decoder
    let usage: KeyUsage

    var codingPath: [any CodingKey] { base.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { base.userInfo }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let container = try base.container(keyedBy: type)
        let present = try base.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        usage.opened(path: codingPath, present: present)
        return KeyedDecodingContainer(KeyCheckingKeyedContainer(base: container, decoder: base, usage: usage))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        KeyCheckingUnkeyedContainer(base: try base.unkeyedContainer(), usage: usage)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        KeyCheckingSingleValueContainer(base: try base.singleValueContainer(), decoder: self)
    }
}

private struct KeyCheckingKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let base: KeyedDecodingContainer<Key>
    let decoder: any Decoder
    let usage: KeyUsage

    var codingPath: [any CodingKey] { base.codingPath }
    var allKeys: [Key] {
        usage.tookAnyKey(at: codingPath)
        return base.allKeys
    }

    func contains(_ key: Key) -> Bool {
        usage.asked(key.stringValue, at: codingPath)
        return base.contains(key)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        usage.asked(key.stringValue, at: codingPath)
        return try base.decodeNil(forKey: key)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        usage.asked(key.stringValue, at: codingPath)
        if isScalar(type) { return try base.decode(type, forKey: key) }
        return try T(from: KeyCheckingDecoder(base: try base.superDecoder(forKey: key), usage: usage))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        usage.asked(key.stringValue, at: codingPath)
        return try KeyCheckingDecoder(base: try base.superDecoder(forKey: key), usage: usage).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        usage.asked(key.stringValue, at: codingPath)
        return KeyCheckingUnkeyedContainer(base: try base.nestedUnkeyedContainer(forKey: key), usage: usage)
    }

    func superDecoder() throws -> any Decoder { KeyCheckingDecoder(base: try base.superDecoder(), usage: usage) }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        usage.asked(key.stringValue, at: codingPath)
        return KeyCheckingDecoder(base: try base.superDecoder(forKey: key), usage: usage)
    }
}

private struct KeyCheckingUnkeyedContainer: UnkeyedDecodingContainer {
    var base: any UnkeyedDecodingContainer
    let usage: KeyUsage

    var codingPath: [any CodingKey] { base.codingPath }
    var count: Int? { base.count }
    var isAtEnd: Bool { base.isAtEnd }
    var currentIndex: Int { base.currentIndex }

    mutating func decodeNil() throws -> Bool { try base.decodeNil() }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if isScalar(type) { return try base.decode(type) }
        return try T(from: KeyCheckingDecoder(base: try base.superDecoder(), usage: usage))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try KeyCheckingDecoder(base: try base.superDecoder(), usage: usage).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        KeyCheckingUnkeyedContainer(base: try base.nestedUnkeyedContainer(), usage: usage)
    }

    mutating func superDecoder() throws -> any Decoder { KeyCheckingDecoder(base: try base.superDecoder(), usage: usage) }
}

private struct KeyCheckingSingleValueContainer: SingleValueDecodingContainer {
    let base: any SingleValueDecodingContainer
    let decoder: KeyCheckingDecoder

    var codingPath: [any CodingKey] { base.codingPath }

    func decodeNil() -> Bool { base.decodeNil() }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if isScalar(type) { return try base.decode(type) }
        return try T(from: decoder)
    }
}

import Foundation
import Yams

/// What the agent's and the collector's YAML config files have in common: reading one,
/// reporting its errors without leaking secrets, and resolving the paths it names.
public enum YAMLConfigFile {
    public enum Failure: Error, Equatable {
        /// The file could not be read (missing, permissions, not UTF-8).
        case unreadable(detail: String)
        /// The file is not valid YAML for the expected shape; the detail is safe to log.
        case invalid(detail: String)
    }

    /// Decodes the YAML file at `path`. Errors never quote the file's text (see `describe`).
    public static func decode<Value: Decodable>(_ type: Value.Type, fromFileAt path: String) throws(Failure) -> Value {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadable(detail: error.localizedDescription)
        }
        do {
            return try YAMLDecoder().decode(type, from: text)
        } catch {
            throw .invalid(detail: describe(error))
        }
    }

    /// A YAML or decoding error without the text of the line it quotes: that line may be
    /// `token: ...`, and this message goes to stderr and from there into logs.
    public static func describe(_ error: any Error) -> String {
        var error = error
        if case DecodingError.dataCorrupted(let context) = error, let underlying = context.underlyingError { error = underlying }
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

    /// A path named in a config file: relative means next to the file, so a config directory
    /// can be moved whole.
    public static func path(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") || directory.isEmpty ? path : directory + "/" + path
    }
}

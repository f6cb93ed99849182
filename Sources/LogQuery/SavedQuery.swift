import Foundation
import MusterStore
import MusterWire

/// A query kept as a file, `queries/NAME.sql`, run by `logq run NAME [--param key=value]…`.
///
/// The file starts with a header of `--` comment lines:
///
/// ```
/// -- name: members-at
/// -- description: Who was a member at an instant, with status and address.
/// -- param: at  time  The instant (any logq time: 10m, 14:05, RFC 3339 …)
/// -- param: node text  optional  Only this node
/// ```
///
/// `name` (the file's name without `.sql`) and `description` are required; each `param` is a
/// name, a type (`time`: any logq time, bound as nanoseconds; `int`; `text`), `optional` or
/// not, and a description. The SQL uses them as `:at`, `:node`; an optional one not given is
/// NULL. Other comment lines in the header are free text.
public struct SavedQuery: Sendable, Equatable {
    public var name: String
    public var description: String
    public var parameters: [Parameter]
    /// The whole file: the statement, its header comments included.
    public var statement: String

    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var type: Kind
        public var optional: Bool
        public var description: String

        public enum Kind: String, Sendable, CaseIterable {
            case time, int, text
        }
    }

    /// Reads a query file's header; `path` names the file in errors, `name` is what its header
    /// must say.
    public init(text: String, name: String, path: String) throws(QueryError) {
        func bad(_ detail: String) -> QueryError { .badQueryFile(path: path, detail: detail) }
        var fields: [String: String] = [:]
        var parameters: [Parameter] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard trimmed.hasPrefix("--") else { break }
            let comment = trimmed.dropFirst(2).trimmingCharacters(in: .whitespaces)
            guard let colon = comment.firstIndex(of: ":") else { continue }
            let key = String(comment[..<colon])
            let value = comment[comment.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "name", "description": fields[key] = value
            case "param": parameters.append(try Self.parameter(value, bad))
            default: continue
            }
        }
        guard let declared = fields["name"], let description = fields["description"], !description.isEmpty else {
            throw bad("no header: start the file with '-- name: \(name)' and '-- description: …' lines")
        }
        guard declared == name else { throw bad("its header says '-- name: \(declared)'; the file must be \(declared).sql") }
        let names = parameters.map(\.name)
        if let twice = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw bad("parameter '\(twice)' is declared twice")
        }
        self.name = name
        self.description = description
        self.parameters = parameters
        statement = text
    }

    /// `at  time  [optional]  The instant …`
    private static func parameter(_ text: String, _ bad: (String) -> QueryError) throws(QueryError) -> Parameter {
        var words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard words.count >= 2, let type = Parameter.Kind(rawValue: words[1]) else {
            throw bad("bad '-- param: \(text)': write '-- param: NAME TYPE [optional] DESCRIPTION' with TYPE time, int or text")
        }
        let name = words[0]
        guard name.first?.isLetter == true, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw bad("bad parameter name '\(name)': letters, digits and '_'")
        }
        words.removeFirst(2)
        let optional = words.first == "optional"
        if optional { words.removeFirst() }
        return Parameter(name: name, type: type, optional: optional, description: words.joined(separator: " "))
    }

    /// The values to bind for `given` (`--param key=value` pairs, in order), checked against
    /// the header: every required parameter given, no unknown one, each readable as its type.
    public func bindings(_ given: [(String, String)], now: Int64) throws(QueryError) -> [String: SQLParameter] {
        var values: [String: SQLParameter] = [:]
        for parameter in parameters { values[parameter.name] = .null }
        var seen: Set<String> = []
        for (key, value) in given {
            guard let parameter = parameters.first(where: { $0.name == key }) else {
                throw .unknownParameter(query: name, name: key, known: parameters.map(\.name))
            }
            guard seen.insert(key).inserted else { throw .badArgument("--param \(key) is given twice") }
            switch parameter.type {
            case .time: values[key] = .integer(try TimeExpression.parse(value, now: now))
            case .int:
                guard let number = Int64(value) else { throw .badArgument("--param \(key) wants a whole number, not '\(value)'") }
                values[key] = .integer(number)
            case .text: values[key] = .text(value)
            }
        }
        if let missing = parameters.first(where: { !$0.optional && !seen.contains($0.name) }) {
            throw .missingParameter(query: name, name: missing.name, description: missing.description)
        }
        return values
    }

    /// `key=value` from the command line.
    public static func parseParameter(_ text: String) throws(QueryError) -> (String, String) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw .badArgument("--param wants KEY=VALUE, not '\(text)'")
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }
}

/// The folder of saved queries and what is in it.
public struct QueryLibrary: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Where the queries are: `--queries DIR`, else `$MUSTER_QUERIES`, else `./queries`, else
    /// `share/muster/queries` beside the executable's folder (an installed logq), else a
    /// `queries` folder beside a `Package.swift` in a folder above the executable (logq run
    /// from its build folder, `.build/debug/logq`).
    public static func locate(
        explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath, executable: String? = Self.executablePath()
    ) throws(QueryError) -> QueryLibrary {
        if let given = explicit ?? environment["MUSTER_QUERIES"] {
            guard isDirectory(given) else {
                throw .badArgument("no queries folder at \(given) (from \(explicit != nil ? "--queries" : "MUSTER_QUERIES"))")
            }
            return QueryLibrary(directory: given)
        }
        var candidates = [URL(fileURLWithPath: currentDirectory).appendingPathComponent("queries").path]
        if let executable {
            var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
            candidates.append(folder.appendingPathComponent("../share/muster/queries").standardized.path)
            while folder.path != "/" {
                if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
                    candidates.append(folder.appendingPathComponent("queries").path)
                    break
                }
                folder.deleteLastPathComponent()
            }
        }
        guard let found = candidates.first(where: isDirectory) else {
            throw .badArgument(
                "no queries folder (looked in \(candidates.joined(separator: ", "))); give --queries DIR or set MUSTER_QUERIES")
        }
        return QueryLibrary(directory: found)
    }

    /// This process's executable, symbolic links resolved.
    public static func executablePath() -> String? {
        Bundle.main.executableURL?.resolvingSymlinksInPath().path
    }

    private static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    /// The names of the queries (files `*.sql`), sorted.
    public func names() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".sql") && !$0.hasPrefix(".") }.map { String($0.dropLast(4)) }.sorted()
    }

    public func query(named name: String) throws(QueryError) -> SavedQuery {
        let known = names()
        guard known.contains(name) else { throw .unknownQuery(name, known: known) }
        let path = directory + "/" + name + ".sql"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .badQueryFile(path: path, detail: "cannot be read")
        }
        return try SavedQuery(text: text, name: name, path: path)
    }

    /// `logq run --list`: every query with its description and parameters. A file that cannot
    /// be used is listed with what is wrong with it, so one bad file hides nothing.
    public func list() -> Table {
        var table = Table(columns: ["name", "description", "params"])
        for name in names() {
            do {
                let query = try query(named: name)
                let parameters = query.parameters.map { "\($0.name) (\($0.type.rawValue)\($0.optional ? ", optional" : ""))" }
                table.rows.append([.text(name), .text(query.description), .text(parameters.joined(separator: ", "))])
            } catch {
                table.rows.append([.text(name), .text("(cannot be used: \(error))"), .null])
            }
        }
        return table
    }
}

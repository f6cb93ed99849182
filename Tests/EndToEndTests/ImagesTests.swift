import Foundation
import MusterAgent
import MusterCollector
import MusterLoadBalancer
import Testing
import Yams

#if canImport(FoundationXML)
import FoundationXML
#endif

/// A Dockerfile as Docker reads it: comment lines dropped (also inside a continuation),
/// backslash continuations joined, one instruction per entry.
struct DockerInstruction: Equatable {
    var line: Int
    var keyword: String
    var arguments: String

    /// The arguments split on blanks, or the elements of the JSON form (`["a", "b"]`).
    var words: [String] {
        if arguments.hasPrefix("["), let data = arguments.data(using: .utf8),
            let array = try? JSONSerialization.jsonObject(with: data) as? [String]
        {
            return array
        }
        return arguments.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }
}

/// The checks a Docker build would fail on (or, worse, not fail on), made without a Docker
/// engine: every instruction known, every COPY source in the build context, every
/// `COPY --from` naming an earlier stage, and each role image carrying exactly the services
/// images/cluster runs for that role.
enum ImageLint {
    static let instructions: Set<String> = [
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
        "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    ]
    static let serviceRoot = "/etc/muster/service/"

    static func parse(_ text: String) -> [DockerInstruction] {
        var result: [DockerInstruction] = []
        var pending: (line: Int, text: String)?
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            var piece = raw.trimmingCharacters(in: .whitespaces)
            // Comment lines go, even between the lines of one instruction; so do blank
            // lines inside a continuation.
            if piece.hasPrefix("#") || piece.isEmpty { continue }
            let continues = piece.hasSuffix("\\")
            if continues { piece = String(piece.dropLast()).trimmingCharacters(in: .whitespaces) }
            pending = pending.map { ($0.line, $0.text + " " + piece) } ?? (index + 1, piece)
            if !continues, let (line, whole) = pending {
                result.append(instruction(line, whole))
                pending = nil
            }
        }
        if let (line, whole) = pending { result.append(instruction(line, whole)) }
        return result
    }

    private static func instruction(_ line: Int, _ text: String) -> DockerInstruction {
        let keyword = text.prefix { $0 != " " && $0 != "\t" }
        return DockerInstruction(
            line: line, keyword: keyword.uppercased(),
            arguments: text.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces))
    }

    /// `--name=value` flags at the start of COPY/ADD/FROM, and the words after them.
    static func flags(_ words: [String]) -> (flags: [String: String], rest: [String]) {
        var flags: [String: String] = [:]
        var rest = words[...]
        while let word = rest.first, word.hasPrefix("--") {
            let parts = word.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
            flags[parts[0]] = parts.count > 1 ? parts[1] : ""
            rest = rest.dropFirst()
        }
        return (flags, Array(rest))
    }

    /// Problems of one Dockerfile whose build context is `context` (the repository root).
    static func problems(in text: String, context: String, dockerignore: [String]) -> [String] {
        var problems: [String] = []
        var stages: [String] = []  // names (lower-cased) of the stages so far; "" when unnamed
        for instruction in parse(text) {
            let at = "line \(instruction.line)"
            guard instructions.contains(instruction.keyword) else {
                problems.append("\(at): unknown instruction '\(instruction.keyword)'")
                continue
            }
            if stages.isEmpty, instruction.keyword != "FROM", instruction.keyword != "ARG" {
                problems.append("\(at): \(instruction.keyword) before the first FROM")
            }
            switch instruction.keyword {
            case "FROM":
                let rest = flags(instruction.words).rest
                if rest.count == 3, rest[1].uppercased() == "AS" {
                    stages.append(rest[2].lowercased())
                } else if rest.count == 1 {
                    stages.append("")
                } else {
                    problems.append("\(at): FROM takes IMAGE [AS NAME], got '\(instruction.arguments)'")
                }
            case "COPY", "ADD":
                let (flags, rest) = flags(instruction.words)
                guard rest.count >= 2 else {
                    problems.append("\(at): \(instruction.keyword) needs a source and a destination")
                    continue
                }
                if let from = flags["from"] {
                    // The current stage is the last one: only those before it count.
                    let earlier = stages.dropLast()
                    if !(earlier.contains(from.lowercased()) || Int(from).map { $0 >= 0 && $0 < earlier.count } == true) {
                        problems.append("\(at): COPY --from=\(from) names no earlier stage (stages before it: \(earlier.filter { !$0.isEmpty }))")
                    }
                    continue
                }
                let sources = rest.dropLast().filter { !(instruction.keyword == "ADD" && $0.contains("://")) }
                problems += sourceProblems(Array(sources), at: at, context: context, dockerignore: dockerignore)
            default:
                break
            }
        }
        if stages.isEmpty { problems.append("no FROM") }
        return problems
    }

    /// Where images/build puts what the `prebuilt` stage copies (absent from a checkout).
    static let stagedByBuild = ".build-images/out"

    private static func sourceProblems(_ sources: [String], at: String, context: String, dockerignore: [String]) -> [String] {
        var problems: [String] = []
        var found = 0
        var globs: [String] = []
        for raw in sources {
            var source = raw
            while source.hasPrefix("./") { source.removeFirst(2) }
            if source.contains("$") {
                problems.append("\(at): COPY source '\(raw)' has a variable; this check cannot follow it")
            } else if source.contains(where: { "*?[".contains($0) }) {
                // A wildcard may match nothing (an optional file), as long as something is copied.
                globs.append(raw)
                found += matches(of: source, in: context).filter { !excluded($0, by: dockerignore) }.count
            } else if source.hasPrefix(stagedByBuild) {
                // images/build stages the host's binaries there just before it builds.
                if excluded(source, by: dockerignore) {
                    problems.append("\(at): COPY source '\(raw)' is left out of the build context by .dockerignore")
                }
                found += 1
            } else if !FileManager.default.fileExists(atPath: context + "/" + source) {
                problems.append("\(at): COPY source '\(raw)' does not exist in the build context (\(context))")
            } else if excluded(source, by: dockerignore) {
                problems.append("\(at): COPY source '\(raw)' is left out of the build context by .dockerignore")
            } else {
                found += 1
            }
        }
        if !globs.isEmpty, found == 0 { problems.append("\(at): nothing in the build context matches \(globs)") }
        return problems
    }

    /// Paths (relative to `context`) matching a pattern whose last component may be a glob.
    private static func matches(of pattern: String, in context: String) -> [String] {
        let parent = (pattern as NSString).deletingLastPathComponent
        let name = (pattern as NSString).lastPathComponent
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: context + (parent.isEmpty ? "" : "/" + parent))) ?? []
        return entries.filter { fnmatch(name, $0, 0) == 0 }.map { parent.isEmpty ? $0 : parent + "/" + $0 }
    }

    /// .dockerignore semantics: the last pattern matching the path or one of its parent
    /// directories decides; `!` re-includes; `**` matches any number of directories.
    static func excluded(_ path: String, by patterns: [String]) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        var excluded = false
        for line in patterns {
            var pattern = line.trimmingCharacters(in: .whitespaces)
            if pattern.isEmpty || pattern.hasPrefix("#") { continue }
            let negated = pattern.hasPrefix("!")
            if negated { pattern.removeFirst() }
            let parts = pattern.split(separator: "/").map(String.init)
            if (1...components.count).contains(where: { match(parts[...], components[0..<$0]) }) { excluded = !negated }
        }
        return excluded
    }

    private static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            return (0...path.count).contains { match(pattern.dropFirst(), path.dropFirst($0)) }
        }
        guard let head = path.first, fnmatch(first, head, 0) == 0 else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }

    /// `declare -A ROLE_SERVICES=( [role]="dir dir" ... )` from images/cluster.
    static func roleServices(clusterScript: String) -> [String: [String]] {
        var roles: [String: [String]] = [:]
        var inside = false
        for line in clusterScript.components(separatedBy: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("declare -A ROLE_SERVICES=(") { inside = true; continue }
            guard inside else { continue }
            if text == ")" { break }
            guard text.hasPrefix("["), let close = text.firstIndex(of: "]") else { continue }
            let role = String(text[text.index(after: text.startIndex)..<close])
            let value = text[text.index(after: close)...].drop { $0 == "=" }.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            roles[role] = value.split(separator: " ").map(String.init)
        }
        return roles
    }

    /// Problems of a role image: it sets MUSTER_ROLE, and copies exactly the role's service
    /// directories (from ROLE_SERVICES) to /etc/muster/service/NAME, each with an executable
    /// `run` (and `log/run` when it has a logger).
    static func roleProblems(in text: String, roles: [String: [String]], repository: String) -> [String] {
        let instructions = parse(text)
        var role: String?
        var copied: [String: String] = [:]  // source -> destination
        for instruction in instructions {
            if instruction.keyword == "ENV" {
                for word in instruction.words where word.hasPrefix("MUSTER_ROLE=") { role = String(word.dropFirst("MUSTER_ROLE=".count)) }
            }
            guard instruction.keyword == "COPY" else { continue }
            let (flags, rest) = flags(instruction.words)
            guard flags["from"] == nil, rest.count == 2, rest[1].hasPrefix(serviceRoot) else { continue }
            copied[rest[0]] = rest[1]
        }
        guard let role else { return ["no ENV MUSTER_ROLE=..."] }
        guard let expected = roles[role] else { return ["MUSTER_ROLE=\(role) is not a role of images/cluster's ROLE_SERVICES (\(roles.keys.sorted()))"] }
        var problems: [String] = []
        let missing = Set(expected).subtracting(copied.keys)
        let extra = Set(copied.keys).subtracting(expected)
        if !missing.isEmpty { problems.append("role \(role): ROLE_SERVICES has \(missing.sorted()), which the image does not copy") }
        if !extra.isEmpty { problems.append("role \(role): the image copies \(extra.sorted()), which ROLE_SERVICES does not give it") }
        for (source, destination) in copied.sorted(by: { $0.key < $1.key }) {
            let name = (source as NSString).lastPathComponent
            if destination != serviceRoot + name { problems.append("\(source) goes to \(destination), not \(serviceRoot + name)") }
            let directory = repository + "/" + source
            if !FileManager.default.isExecutableFile(atPath: directory + "/run") {
                problems.append("service \(source) has no executable run")
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/log", isDirectory: &isDirectory), isDirectory.boolValue,
                !FileManager.default.isExecutableFile(atPath: directory + "/log/run")
            {
                problems.append("service \(source) has a log/ without an executable log/run")
            }
        }
        return problems
    }

    /// The services of a Compose file and their build's context and dockerfile, read by
    /// indentation (two spaces a level), which is how images/compose.yaml is written.
    static func composeServices(_ text: String) -> [String: (context: String?, dockerfile: String?, lines: [String])] {
        var services: [String: (context: String?, dockerfile: String?, lines: [String])] = [:]
        var inServices = false
        var current: String?
        for line in text.components(separatedBy: "\n") {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("#") || line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let indent = line.prefix { $0 == " " }.count
            let text = line.trimmingCharacters(in: .whitespaces)
            if indent == 0 {
                inServices = text == "services:"
                current = nil
                continue
            }
            guard inServices else { continue }
            if indent == 2, text.hasSuffix(":") {
                current = String(text.dropLast())
                services[current!] = (nil, nil, [])
                continue
            }
            guard let name = current else { continue }
            services[name]!.lines.append(text)
            func value(_ key: String) -> String? {
                text.hasPrefix(key + ":") ? text.dropFirst(key.count + 1).trimmingCharacters(in: CharacterSet(charactersIn: " \"'")) : nil
            }
            if let context = value("context") { services[name]!.context = context }
            if let dockerfile = value("dockerfile") { services[name]!.dockerfile = dockerfile }
        }
        return services
    }

    /// Problems of images/compose.yaml (in `directory`): the services are base, collector,
    /// ha and webapp; every build's dockerfile exists; webapp can be scaled.
    static func composeProblems(_ text: String, directory: String) -> [String] {
        let services = composeServices(text)
        var problems: [String] = []
        if Set(services.keys) != ["base", "collector", "ha", "webapp"] {
            problems.append("services are \(services.keys.sorted()), not base, collector, ha, webapp")
        }
        for (name, service) in services.sorted(by: { $0.key < $1.key }) {
            guard let dockerfile = service.dockerfile else {
                problems.append("service \(name) has no build dockerfile")
                continue
            }
            let context = URL(fileURLWithPath: directory).appendingPathComponent(service.context ?? ".").standardized.path
            if !FileManager.default.fileExists(atPath: context + "/" + dockerfile) {
                problems.append("service \(name): dockerfile \(dockerfile) does not exist under its context \(context)")
            }
        }
        if let webapp = services["webapp"], webapp.lines.contains(where: { $0.hasPrefix("container_name:") || $0.hasPrefix("ports:") }) {
            problems.append("service webapp has a container_name or fixed ports: it cannot be scaled")
        }
        return problems
    }
}

/// The scale-out Compose file (images/compose.scale-out.yaml) and what it mounts, read as
/// Compose and the servers read them: the YAML with its merge keys resolved (Yams), the
/// ClickHouse files with an XML parser, and (in the tests) each node's configuration with the
/// programs' own parsers.
extension ImageLint {
    /// A Compose file's services and its declared named volumes.
    struct ComposeFile {
        var services: [String: [String: Any]]
        var volumes: Set<String>

        init(_ text: String) throws {
            guard let document = try Yams.load(yaml: text) as? [String: Any] else { throw TestSetupError("not a YAML mapping") }
            guard let services = document["services"] as? [String: Any] else { throw TestSetupError("no services: mapping") }
            self.services = try services.mapValues { value in
                guard let service = value as? [String: Any] else { throw TestSetupError("a service that is not a mapping") }
                return service
            }
            volumes = Set((document["volumes"] as? [String: Any])?.keys.map { $0 } ?? [])
        }

        func hostname(_ service: String) -> String { services[service]?["hostname"] as? String ?? service }

        /// The services running the image whose repository's last component is `name` (`etcd`
        /// for quay.io/coreos/etcd:v3.5.17), sorted.
        func services(ofImage name: String) -> [String] {
            services.keys.filter { (services[$0]?["image"] as? String).map(ImageLint.imageName) == name }.sorted()
        }

        /// The options of a service's command, `--NAME=VALUE` or `--NAME VALUE` (a flag alone
        /// gives ""), by NAME.
        func options(_ service: String) -> [String: String] {
            let command = services[service]?["command"]
            let words = command as? [String] ?? (command as? String)?.split(whereSeparator: \.isWhitespace).map(String.init) ?? []
            var result: [String: String] = [:]
            for (index, word) in words.enumerated() where word.hasPrefix("--") && word.count > 2 {
                let parts = word.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 {
                    result[parts[0]] = parts[1]
                } else {
                    let next = words.indices.contains(index + 1) ? words[index + 1] : "--"
                    result[parts[0]] = next.hasPrefix("--") ? "" : next
                }
            }
            return result
        }

        /// `build.dockerfile`, when the service builds.
        func dockerfile(_ service: String) -> String? { (services[service]?["build"] as? [String: Any])?["dockerfile"] as? String }

        func environment(_ service: String) -> [String: String] {
            if let map = services[service]?["environment"] as? [String: Any] { return map.mapValues { "\($0)" } }
            var result: [String: String] = [:]
            for entry in services[service]?["environment"] as? [String] ?? [] {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                result[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            return result
        }

        /// Each volume as (source, target, read-only); a bind mount's source starts with `.` or `/`.
        func mounts(_ service: String) -> [(source: String, target: String, readOnly: Bool)] {
            (services[service]?["volumes"] as? [Any] ?? []).compactMap { entry in
                if let text = entry as? String {
                    let parts = text.split(separator: ":").map(String.init)
                    guard parts.count >= 2 else { return (text, "", false) }
                    return (parts[0], parts[1], parts.count > 2 && parts[2].split(separator: ",").contains("ro"))
                }
                guard let long = entry as? [String: Any] else { return nil }
                return (long["source"] as? String ?? "", long["target"] as? String ?? "", long["read_only"] as? Bool ?? false)
            }
        }

        /// `depends_on` in either form: service -> condition (`service_started` for the list form).
        func dependencies(_ service: String) -> [String: String] {
            if let list = services[service]?["depends_on"] as? [String] { return Dictionary(uniqueKeysWithValues: list.map { ($0, "service_started") }) }
            return (services[service]?["depends_on"] as? [String: Any] ?? [:]).mapValues {
                ($0 as? [String: Any])?["condition"] as? String ?? "service_started"
            }
        }

        /// The host path of a bind mount, relative to the Compose file's directory.
        static func hostPath(_ source: String, directory: String) -> String {
            source.hasPrefix("/") ? source : URL(fileURLWithPath: directory).appendingPathComponent(source).standardized.path
        }
    }

    /// `NAME:TAG` with a version for a tag (`24.8.14.39`, `v3.5.17`), or a digest: an image that
    /// is the same on every machine and every day, unlike `latest` or no tag.
    static func pinned(_ image: String) -> Bool {
        if image.contains("@sha256:") { return true }
        guard let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") else { return false }
        return image[image.index(after: colon)...].range(of: #"^v?[0-9]+(\.[0-9]+)+"#, options: .regularExpression) != nil
    }

    /// An image reference's repository name without registry, path, tag or digest.
    static func imageName(_ image: String) -> String {
        var name = image.split(separator: "@").first.map(String.init) ?? image
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") { name = String(name[..<colon]) }
        return name.split(separator: "/").last.map(String.init) ?? name
    }

    static let dependencyConditions: Set<String> = ["service_started", "service_healthy", "service_completed_successfully"]

    /// Problems of the scale-out Compose file (in `directory`): each service builds from a
    /// Dockerfile that exists or runs a pinned image; every bind-mounted file exists and is
    /// mounted read-only, every named volume is declared; dependencies name services, and
    /// `service_healthy` ones have a health check; the collectors (built from
    /// images/collector/Dockerfile) wait until every server (a pinned image) is healthy and
    /// are health-checked themselves; MUSTER_STORE_FILE names a file the service mounts.
    static func scaleOutComposeProblems(_ text: String, directory: String) -> [String] {
        let compose: ComposeFile
        do { compose = try ComposeFile(text) } catch { return ["not a Compose file: \(error)"] }
        var problems: [String] = []
        let servers = compose.services.keys.filter { compose.dockerfile($0) == nil }.sorted()
        let collectors = compose.services.keys.filter { compose.dockerfile($0) == "images/collector/Dockerfile" }.sorted()
        if collectors.isEmpty { problems.append("no collector (a service built from images/collector/Dockerfile)") }
        for (name, service) in compose.services.sorted(by: { $0.key < $1.key }) {
            if let build = service["build"] as? [String: Any] {
                let dockerfile = build["dockerfile"] as? String ?? "Dockerfile"
                let context = URL(fileURLWithPath: directory).appendingPathComponent(build["context"] as? String ?? ".").standardized.path
                if !FileManager.default.fileExists(atPath: context + "/" + dockerfile) {
                    problems.append("service \(name): dockerfile \(dockerfile) does not exist under its context \(context)")
                }
            } else if let image = service["image"] as? String {
                if !pinned(image) { problems.append("service \(name): image \(image) is not pinned to a version") }
            } else {
                problems.append("service \(name) has neither a build nor an image")
            }
            for mount in compose.mounts(name) {
                if mount.source.hasPrefix(".") || mount.source.hasPrefix("/") {
                    let path = ComposeFile.hostPath(mount.source, directory: directory)
                    if !FileManager.default.fileExists(atPath: path) { problems.append("service \(name): mounted \(mount.source) does not exist (\(path))") }
                    if !mount.readOnly { problems.append("service \(name): \(mount.source) is mounted writable, not :ro") }
                } else if !compose.volumes.contains(mount.source) {
                    problems.append("service \(name): volume \(mount.source) is not declared under volumes:")
                }
            }
            for (dependency, condition) in compose.dependencies(name).sorted(by: { $0.key < $1.key }) {
                guard compose.services[dependency] != nil else {
                    problems.append("service \(name) depends on \(dependency), which is not a service")
                    continue
                }
                if !dependencyConditions.contains(condition) { problems.append("service \(name): condition \(condition) for \(dependency) is not one Compose knows") }
                if condition == "service_healthy", compose.services[dependency]?["healthcheck"] == nil {
                    problems.append("service \(name) waits for \(dependency) to be healthy, which has no healthcheck")
                }
            }
            if let file = compose.environment(name)["MUSTER_STORE_FILE"], !compose.mounts(name).contains(where: { $0.target == file }) {
                problems.append("service \(name): MUSTER_STORE_FILE=\(file) is not a file it mounts")
            }
        }
        for collector in collectors {
            let waits = compose.dependencies(collector)
            let notWaitedFor = servers.filter { server in waits[server] != "service_healthy" && compose.services[server]?["scale"] == nil }
            if !notWaitedFor.isEmpty { problems.append("collector \(collector) does not wait for \(notWaitedFor) to be healthy") }
            if compose.services[collector]?["healthcheck"] == nil { problems.append("collector \(collector) has no healthcheck") }
        }
        for server in servers where compose.services[server]?["healthcheck"] == nil {
            problems.append("server \(server) has no healthcheck")
        }
        return problems
    }

    /// Follows XMLParser's events: Foundation's parser on Linux returns true from `parse()`
    /// even after an error, and says nothing about a document that just stops, so the error
    /// and the element depth are what tell.
    final class WellFormed: NSObject, XMLParserDelegate {
        var error: String?
        var depth = 0
        var roots = 0
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if depth == 0 { roots += 1 }
            depth += 1
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { depth -= 1 }
        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
            error = error ?? "line \(parser.lineNumber): \(parseError)"
        }
    }

    /// An XML file's root element; throws when the file is not well-formed XML: a parse error,
    /// an element left open, or other than one root element. (XMLDocument alone recovers from
    /// some of these.)
    static func xmlRoot(_ path: String) throws -> XMLElement {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let parser = XMLParser(data: data)
        let events = WellFormed()
        parser.delegate = events
        let finished = parser.parse()
        if let error = events.error ?? parser.parserError.map({ "\($0)" }) { throw TestSetupError(error) }
        guard finished, events.depth == 0, events.roots == 1 else {
            throw TestSetupError("\(events.roots) root element(s), \(events.depth) element(s) left open")
        }
        let document = try XMLDocument(data: data, options: [])
        guard let root = document.rootElement() else { throw TestSetupError("\(path): no root element") }
        return root
    }

    /// The text of the first element at `path` (names separated by `/`) below `element`.
    private static func text(_ element: XMLElement, _ path: String) -> String? {
        var current: XMLElement? = element
        for name in path.split(separator: "/") { current = current?.elements(forName: String(name)).first }
        return current?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Problems of the ClickHouse servers' configuration: `servers` maps each server's host
    /// name to the XML files it mounts into config.d (paths on this machine). Every file is
    /// well-formed with a `<clickhouse>` (or 18.16's `<yandex>`) root; each server has its
    /// macros (shard, replica: its host name) and interserver host; every server has the same
    /// `remote_servers/CLUSTER`, in which each server is exactly one replica, in the shard
    /// its `shard` macro names (01 is the first), with internal_replication; each server's
    /// ZooKeeper nodes are the `zookeepers` (the ZooKeeper services' host names), all of them,
    /// so that its session survives one failing; and the store's shards list the same hosts
    /// in the same order.
    static func clickHouseProblems(servers: [String: [String]], cluster: String, storeShards: [[String]], zookeepers: [String]) -> [String] {
        var problems: [String] = []
        var layouts: [String: [[String]]] = [:]  // server -> the cluster's shards' replica hosts
        var macros: [String: (shard: Int?, replica: String?)] = [:]
        for (server, files) in servers.sorted(by: { $0.key < $1.key }) {
            var roots: [XMLElement] = []
            for file in files {
                do {
                    let root = try xmlRoot(file)
                    if root.name != "clickhouse" && root.name != "yandex" { problems.append("\(file): the root element is <\(root.name ?? "")>, not <clickhouse>") }
                    roots.append(root)
                } catch {
                    problems.append("\(file) is not well-formed XML: \(error)")
                }
            }
            func first(_ path: String) -> String? { roots.lazy.compactMap { text($0, path) }.first }
            let shard = first("macros/shard")
            let replica = first("macros/replica")
            macros[server] = (shard.flatMap { Int($0) }, replica)
            if shard == nil || replica == nil { problems.append("\(server): no macros shard and replica") }
            if let replica, replica != server { problems.append("\(server): macro replica is \(replica), not its host name \(server)") }
            if let host = first("interserver_http_host"), host != server { problems.append("\(server): interserver_http_host is \(host), not \(server)") }
            let nodes = roots.flatMap { $0.elements(forName: "zookeeper") }.flatMap { $0.elements(forName: "node") }.map { text($0, "host") ?? "" }
            for host in nodes where !zookeepers.contains(host) { problems.append("\(server): ZooKeeper host '\(host)' is not a ZooKeeper service") }
            let missing = zookeepers.filter { !nodes.contains($0) }
            if !missing.isEmpty { problems.append("\(server): its ZooKeeper nodes leave out \(missing)") }
            guard let definition = roots.lazy.compactMap({ $0.elements(forName: "remote_servers").first?.elements(forName: cluster).first }).first else {
                problems.append("\(server): no remote_servers/\(cluster)")
                continue
            }
            layouts[server] = definition.elements(forName: "shard").map { shard in
                if text(shard, "internal_replication") != "true" { problems.append("\(server): a shard of \(cluster) without internal_replication true") }
                return shard.elements(forName: "replica").map { text($0, "host") ?? "" }
            }
        }
        let distinct = Set(layouts.values.map { $0.map { $0.joined(separator: ",") }.joined(separator: ";") })
        if distinct.count > 1 { problems.append("the servers' remote_servers/\(cluster) differ: \(layouts.sorted { $0.key < $1.key })") }
        guard let layout = layouts.sorted(by: { $0.key < $1.key }).first?.value else { return problems }
        let listed = layout.flatMap { $0 }
        for server in servers.keys.sorted() where listed.filter({ $0 == server }).count != 1 {
            problems.append("\(server) is listed \(listed.filter { $0 == server }.count) times in remote_servers/\(cluster), not once")
        }
        for (index, replicas) in layout.enumerated() {
            for host in replicas {
                guard let macro = macros[host] else {
                    problems.append("remote_servers/\(cluster) shard \(index + 1) names \(host), which is not a ClickHouse server")
                    continue
                }
                if macro.shard != index + 1 { problems.append("\(host) is in shard \(index + 1) of remote_servers/\(cluster), but its shard macro says \(macro.shard.map(String.init) ?? "nothing")") }
            }
        }
        let storeHosts = storeShards.map { $0.map { URL(string: $0)?.host ?? $0 } }
        if storeHosts != layout { problems.append("the store's shards \(storeHosts) are not remote_servers/\(cluster)'s \(layout), in the same order") }
        for url in storeShards.flatMap({ $0 }) where URL(string: url)?.port != 8123 {
            problems.append("store shard URL \(url) is not the HTTP port 8123")
        }
        return problems
    }

    /// The `store:` section's cross-checks against the Compose file: the ClickHouse servers
    /// (services of the clickhouse/clickhouse-server image) and their mounted config.d files,
    /// with the ZooKeeper services; etcd's endpoints, each one an etcd service's advertised
    /// client URL and every etcd service among them; and each etcd service's `--max-txn-ops`.
    static func scaleOutStoreProblems(compose text: String, store: String, directory: String) -> [String] {
        let compose: ComposeFile
        let settings: [String: Any]
        do {
            compose = try ComposeFile(text)
            guard let section = (try Yams.load(yaml: store) as? [String: Any])?["store"] as? [String: Any] else { return ["the store file has no store: section"] }
            settings = section
        } catch {
            return ["\(error)"]
        }
        let clickhouse = settings["clickhouse"] as? [String: Any] ?? [:]
        let etcd = settings["etcd"] as? [String: Any] ?? [:]
        var servers: [String: [String]] = [:]
        for name in compose.services(ofImage: "clickhouse-server") {
            servers[compose.hostname(name)] = compose.mounts(name).filter { $0.target.hasPrefix("/etc/clickhouse-server/config.d/") }
                .map { ComposeFile.hostPath($0.source, directory: directory) }
        }
        var problems = servers.isEmpty ? ["no ClickHouse server (image clickhouse/clickhouse-server)"] : []
        problems += clickHouseProblems(
            servers: servers, cluster: clickhouse["cluster"] as? String ?? "muster",
            storeShards: clickhouse["shards"] as? [[String]] ?? [], zookeepers: compose.services(ofImage: "zookeeper").map { compose.hostname($0) })
        let etcdServices = compose.services(ofImage: "etcd")
        let endpoints = etcd["endpoints"] as? [String] ?? []
        let endpointHosts = endpoints.map { URL(string: $0)?.host ?? $0 }
        for (endpoint, host) in zip(endpoints, endpointHosts) {
            guard let service = etcdServices.first(where: { compose.hostname($0) == host }) else {
                problems.append("etcd endpoint \(endpoint) is not an etcd service")
                continue
            }
            let advertised = (compose.options(service)["advertise-client-urls"] ?? "").split(separator: ",").map(String.init)
            if !advertised.contains(endpoint) { problems.append("etcd endpoint \(endpoint) is not what \(service) advertises (\(advertised))") }
        }
        for service in etcdServices where !endpointHosts.contains(compose.hostname(service)) {
            problems.append("etcd service \(service) is not among store.etcd.endpoints: a client could not turn to it")
        }
        let maxTxnOps = etcd["max_txn_ops"] as? Int ?? 128
        for service in etcdServices {
            let serverLimit = compose.options(service)["max-txn-ops"].flatMap { Int($0) } ?? 128
            if maxTxnOps > serverLimit { problems.append("store.etcd.max_txn_ops \(maxTxnOps) is above \(service)'s --max-txn-ops \(serverLimit)") }
        }
        return problems
    }

    /// Problems of the ZooKeeper ensemble and the etcd cluster of a Compose file: each has
    /// three members or more, so that one can fail with a majority left. Every ZooKeeper
    /// service's ZOO_SERVERS (`server.ID=HOST:PORT:PORT[;CLIENTPORT]`, space-separated) lists
    /// the same members, which are the ZooKeeper services' host names, and its ZOO_MY_ID is the
    /// ID of its own entry. Every etcd service's `--initial-cluster` (`NAME=PEERURL,...`) names
    /// the same members, which are the etcd services' `--name`s, its own entry being its
    /// `--initial-advertise-peer-urls` on its host name; `--initial-cluster-token` and
    /// `--initial-cluster-state` are set, and the same, on each.
    static func ensembleProblems(_ text: String) -> [String] {
        let compose: ComposeFile
        do { compose = try ComposeFile(text) } catch { return ["not a Compose file: \(error)"] }
        var problems: [String] = []
        let zookeepers = compose.services(ofImage: "zookeeper")
        let zkHosts = zookeepers.map { compose.hostname($0) }.sorted()
        var ensembles: [String: String] = [:]  // service -> its ZOO_SERVERS' members, normalized
        for service in zookeepers {
            let environment = compose.environment(service)
            var members: [Int: String] = [:]  // server ID -> host
            for entry in (environment["ZOO_SERVERS"] ?? "").split(whereSeparator: \.isWhitespace) {
                let parts = entry.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].hasPrefix("server."), let id = Int(parts[0].dropFirst("server.".count)) else {
                    problems.append("\(service): ZOO_SERVERS entry \(entry) is not server.ID=HOST:PORT:PORT")
                    continue
                }
                members[id] = String(parts[1].prefix { $0 != ":" })
            }
            ensembles[service] = members.sorted { $0.key < $1.key }.map { "server.\($0.key)=\($0.value)" }.joined(separator: " ")
            if members.values.sorted() != zkHosts {
                problems.append("\(service): ZOO_SERVERS names \(members.values.sorted()), not the ZooKeeper services \(zkHosts)")
            }
            let myID = environment["ZOO_MY_ID"]
            if myID.flatMap({ Int($0) }).flatMap({ members[$0] }) != compose.hostname(service) {
                problems.append("\(service): ZOO_MY_ID \(myID ?? "(none)") is not the ID of its own entry in ZOO_SERVERS")
            }
        }
        problems += differing("ZooKeeper services' ZOO_SERVERS", ensembles)

        let etcds = compose.services(ofImage: "etcd")
        let names = etcds.map { compose.options($0)["name"] ?? "default" }
        if Set(names).count != names.count { problems.append("the etcd services' --name repeat: \(names)") }
        var clusters: [String: String] = [:]  // service -> its --initial-cluster, normalized
        for service in etcds {
            let options = compose.options(service)
            let name = options["name"] ?? "default"
            var members: [String: String] = [:]  // member name -> peer URL
            for entry in (options["initial-cluster"] ?? "").split(separator: ",") {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                members[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            clusters[service] = members.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            if members.keys.sorted() != names.sorted() {
                problems.append("\(service): --initial-cluster names \(members.keys.sorted()), not the etcd services' --name \(names.sorted())")
            }
            let peer = options["initial-advertise-peer-urls"] ?? ""
            if members[name] != peer {
                problems.append("\(service): --initial-advertise-peer-urls \(peer) is not its --initial-cluster entry \(name)=\(members[name] ?? "(none)")")
            }
            if URL(string: peer)?.host != compose.hostname(service) {
                problems.append("\(service): --initial-advertise-peer-urls \(peer) is not on its host name \(compose.hostname(service))")
            }
        }
        problems += differing("etcd services' --initial-cluster", clusters)
        for option in ["initial-cluster-token", "initial-cluster-state"] {
            let values = Dictionary(uniqueKeysWithValues: etcds.map { ($0, compose.options($0)[option] ?? "") })
            if values.values.contains("") { problems.append("etcd services without --\(option): \(values.filter { $0.value.isEmpty }.keys.sorted())") }
            problems += differing("etcd services' --\(option)", values)
        }
        for (what, count) in [("ZooKeeper", zookeepers.count), ("etcd", etcds.count)] where count < 3 {
            problems.append("\(count) \(what) service(s): one failing with a majority left needs 3 or more")
        }
        return problems
    }

    /// "the WHAT differ" when the services' values are not all the same.
    private static func differing(_ what: String, _ values: [String: String]) -> [String] {
        Set(values.values).count > 1 ? ["the \(what) differ: \(values.sorted { $0.key < $1.key })"] : []
    }

    /// What images/node-config prints for `role` (as muster-init runs it), written to a file
    /// in `directory`.
    static func nodeConfig(
        repository: String, role: String, arguments: [String], environment: [String: String] = [:], directory: String
    ) throws -> String {
        let output = try Cluster.execute(repository + "/images/node-config", [role] + arguments, environment: environment)
        let path = directory + "/\(role)-\(UUID().uuidString).yaml"
        try output.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// The Docker images, checked without a Docker engine (none runs on these machines), and
/// images/cluster's host ports and its `down` after a crash, on real namespaces.
@Suite(.serialized) final class ImagesTests {
    let repository = Cluster.repository

    func read(_ path: String) throws -> String { try String(contentsOfFile: repository + "/" + path, encoding: .utf8) }

    var dockerfiles: [String] {
        let images = (try? FileManager.default.contentsOfDirectory(atPath: repository + "/images")) ?? []
        return images.sorted().map { "images/\($0)/Dockerfile" }.filter { FileManager.default.fileExists(atPath: repository + "/" + $0) }
    }

    var dockerignore: [String] {
        ((try? read(".dockerignore")) ?? "").components(separatedBy: "\n")
    }

    @Test func dockerfilesBuildFromWhatTheRepositoryHasAndCarryEachRolesServices() throws {
        #expect(dockerfiles == ["images/base/Dockerfile", "images/collector/Dockerfile", "images/ha/Dockerfile", "images/webapp/Dockerfile"])
        let roles = ImageLint.roleServices(clusterScript: try read("images/cluster"))
        #expect(Set(roles.keys) == ["collector", "ha", "web"], "ROLE_SERVICES as parsed from images/cluster: \(roles)")
        for path in dockerfiles {
            let text = try read(path)
            #expect(ImageLint.problems(in: text, context: repository, dockerignore: dockerignore) == [], "\(path)")
            if path == "images/base/Dockerfile" {
                let entrypoint = ImageLint.parse(text).last { $0.keyword == "ENTRYPOINT" }
                #expect(entrypoint?.words == ["/usr/local/bin/muster-init"], "\(path): ENTRYPOINT")
                continue
            }
            #expect(ImageLint.roleProblems(in: text, roles: roles, repository: repository) == [], "\(path)")
            // Built on the base image, named by a build argument (Compose passes its own).
            let instructions = ImageLint.parse(text)
            #expect(instructions.first { $0.keyword == "ARG" }?.arguments == "BASE=muster/base:latest", "\(path)")
            #expect(instructions.first { $0.keyword == "FROM" }?.arguments == "${BASE}", "\(path)")
        }
        // The LB controller's template, where muster-init's configuration looks for it.
        let ha = ImageLint.parse(try read("images/ha/Dockerfile"))
        #expect(ha.contains { $0.keyword == "COPY" && $0.words == ["collector/haproxy.cfg.mustache", "/etc/muster/haproxy.cfg.mustache"] })

        let compose = try read("images/compose.yaml")
        #expect(ImageLint.composeProblems(compose, directory: repository + "/images") == [])

        // hadolint, where installed (Debian does not package it).
        let hadolint = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { $0 + "/hadolint" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        if let hadolint {
            for path in dockerfiles {
                do { _ = try Cluster.execute(hadolint, [repository + "/" + path], environment: [:]) } catch { Issue.record("\(error)") }
            }
        } else {
            print("ImagesTests: hadolint is not on PATH (not packaged in Debian); only this suite's own checks ran")
        }
    }

    /// images/containers starts each node with its Compose service's settings through
    /// images/compose-run: every setting the file gives is passed on, the host ports are the
    /// ones asked for, and a variable the file requires is an error that names it.
    @Test func composeRunPassesOnEachServicesComposeSettings() throws {
        let tool = repository + "/images/compose-run"
        let volumes = FileManager.default.temporaryDirectory.appendingPathComponent("compose-run-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: volumes) }
        func options(_ arguments: String...) throws -> [String] {
            try Cluster.execute(tool, arguments, environment: ["MUSTER_TOKEN": "t0ken"]).split(separator: "\n").map(String.init)
        }

        let collector = try options("collector", "--volume-root", volumes)
        for option in ["--env=MUSTER_TOKEN=t0ken", "--env=MUSTER_NODE=collector", "--hostname=collector",
                       "--volume=\(volumes)/collector-data:/var/lib/muster-collector", "--stop-timeout=20",
                       "--restart=unless-stopped"] {
            #expect(collector.contains(option), "collector: \(option) missing from \(collector)")
        }
        #expect(collector.last == "muster/collector:latest", "the image comes last: \(collector)")
        #expect(FileManager.default.fileExists(atPath: volumes + "/collector-data"), "the named volume's folder was not made")

        let ha = try options("ha", "--ports", "18080:80 18081:1936", "--bind", "127.0.0.1")
        #expect(ha.filter { $0.hasPrefix("--publish=") } == ["--publish=127.0.0.1:18080:80", "--publish=127.0.0.1:18081:1936"], "\(ha)")
        #expect(try options("ha").filter { $0.hasPrefix("--publish=") } == ["--publish=80:80", "--publish=1936:1936"])
        #expect(try options("ha", "--ports", "").filter { $0.hasPrefix("--publish=") }.isEmpty)

        let web = try options("webapp")
        #expect(web.contains("--env=MUSTER_SERF_JOIN=ha") && web.last == "muster/webapp:latest", "\(web)")
        #expect(!web.contains { $0.hasPrefix("--hostname=") || $0.hasPrefix("--publish=") }, "a scaled web node has no fixed name or port: \(web)")

        do {
            _ = try Cluster.execute(tool, ["ha"], environment: ["MUSTER_TOKEN": ""])
            Issue.record("compose-run started ha without MUSTER_TOKEN")
        } catch {
            #expect("\(error)".contains("MUSTER_TOKEN is not set"), "\(error)")
        }
        do {
            _ = try Cluster.execute(tool, ["nosuch"], environment: ["MUSTER_TOKEN": "t0ken"])
            Issue.record("compose-run accepted a service the file does not have")
        } catch {
            #expect("\(error)".contains("has no service 'nosuch'"), "\(error)")
        }
        do {
            _ = try Cluster.execute(tool, ["ha", "--ports", "18082:8080"], environment: ["MUSTER_TOKEN": "t0ken"])
            Issue.record("compose-run published a port the service does not publish")
        } catch {
            #expect("\(error)".contains("does not publish container port(s) 8080"), "\(error)")
        }
        // Every service of the file, base too: a setting compose-run does not know is an
        // error, so one added to compose.yaml cannot be dropped on the way to the engine.
        for service in ["base", "collector", "ha", "webapp"] {
            #expect(throws: Never.self, "compose-run \(service)") { _ = try options(service, "--volume-root", volumes) }
        }
        let unknown = volumes + "/compose.yaml"
        try FileManager.default.createDirectory(atPath: volumes, withIntermediateDirectories: true)
        try (try read("images/compose.yaml")).replacingOccurrences(of: "  ha:\n", with: "  ha:\n    init: true\n")
            .write(toFile: unknown, atomically: true, encoding: .utf8)
        do {
            _ = try Cluster.execute(tool, ["ha", "--file", unknown], environment: ["MUSTER_TOKEN": "t0ken"])
            Issue.record("compose-run dropped a setting it does not pass on (init)")
        } catch {
            #expect("\(error)".contains("does not pass on: init"), "\(error)")
        }
    }

    @Test func theLintFindsWhatIsWrong() throws {
        let bad = """
            # syntax=docker/dockerfile:1
            ARG BASE=x
            FROM ${BASE} AS build
            RUN echo a \\
            # a comment inside a continuation

                && echo b
            COPPY a b
            COPY no/such/file /x
            COPY --from=later /a /b
            COPY --from=build /a /b
            FROM debian AS later
            COPY --from=build /a /b
            COPY --from=0 /a /b
            COPY Package.swift Sources /src/
            COPY Benchmarks/README.md /b
            COPY Package.nothin[g] /c
            """
        let instructions = ImageLint.parse(bad)
        #expect(instructions.map(\.keyword) == ["ARG", "FROM", "RUN", "COPPY", "COPY", "COPY", "COPY", "FROM", "COPY", "COPY", "COPY", "COPY", "COPY"])
        #expect(instructions[2] == DockerInstruction(line: 4, keyword: "RUN", arguments: "echo a && echo b"))
        let problems = ImageLint.problems(in: bad, context: repository, dockerignore: dockerignore)
        #expect(problems.count == 6, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("line 8:") && $0.contains("unknown instruction 'COPPY'") })
        #expect(problems.contains { $0.hasPrefix("line 9:") && $0.contains("'no/such/file' does not exist") })
        #expect(problems.contains { $0.hasPrefix("line 10:") && $0.contains("--from=later") })
        #expect(problems.contains { $0.hasPrefix("line 11:") && $0.contains("--from=build") }, "a stage cannot copy from itself")
        #expect(problems.contains { $0.hasPrefix("line 16:") && $0.contains(".dockerignore") })
        #expect(problems.contains { $0.hasPrefix("line 17:") && $0.contains("nothing in the build context matches") })
        #expect(ImageLint.problems(in: "RUN true\n", context: repository, dockerignore: []).contains("line 1: RUN before the first FROM"))

        // .dockerignore: the last matching pattern wins, parents count, ** spans directories.
        let patterns = ["*", "!Sources", "!images/*/service", "**/service/*/supervise"]
        #expect(ImageLint.excluded(".build/debug/x", by: patterns))
        #expect(!ImageLint.excluded("Sources/MusterWire/Record.swift", by: patterns))
        #expect(!ImageLint.excluded("images/ha/service/haproxy/run", by: patterns))
        #expect(ImageLint.excluded("images/ha/service/haproxy/supervise/lock", by: patterns))

        // A role image with the wrong services, and a service without an executable run.
        let roles = ["web": ["images/webapp/service/demo-webapp", "agent/service/serf"]]
        let wrong = """
            FROM base
            ENV MUSTER_ROLE=web
            COPY images/ha/service/haproxy /etc/muster/service/haproxy
            COPY agent/service/serf /etc/muster/service/serf-renamed
            """
        let roleProblems = ImageLint.roleProblems(in: wrong, roles: roles, repository: repository)
        #expect(roleProblems.contains { $0.contains("does not copy") && $0.contains("demo-webapp") }, "\(roleProblems)")
        #expect(roleProblems.contains { $0.contains("does not give it") && $0.contains("images/ha/service/haproxy") }, "\(roleProblems)")
        #expect(roleProblems.contains { $0.contains("/etc/muster/service/serf-renamed") }, "\(roleProblems)")
        #expect(ImageLint.roleProblems(in: "FROM base\nENV MUSTER_ROLE=db\n", roles: roles, repository: repository).first?.contains("not a role") == true)
        let fake = FileManager.default.temporaryDirectory.appendingPathComponent("muster-lint-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try FileManager.default.createDirectory(atPath: fake + "/svc/log", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: fake + "/svc/run", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
        let notExecutable = ImageLint.roleProblems(
            in: "FROM base\nENV MUSTER_ROLE=web\nCOPY svc /etc/muster/service/svc\n", roles: ["web": ["svc"]], repository: fake)
        #expect(notExecutable == ["service svc has no executable run", "service svc has a log/ without an executable log/run"])

        // ROLE_SERVICES parsing.
        let script = """
            declare -A ROLE_SERVICES=(
              [a]="x/one y/two"
              [b]="z/three"
            )
            [c]="not in the table"
            """
        #expect(ImageLint.roleServices(clusterScript: script) == ["a": ["x/one", "y/two"], "b": ["z/three"]])

        // A compose file without webapp, with a dockerfile that is not there, a fixed port.
        let compose = """
            services:
              base:
                build:
                  context: ..
                  dockerfile: images/base/Dockerfile
              ha:
                build:
                  context: ..
                  dockerfile: images/nothing/Dockerfile
              web:
                ports: ["80:80"]
            """
        let composeProblems = ImageLint.composeProblems(compose, directory: repository + "/images")
        #expect(composeProblems.contains { $0.contains("not base, collector, ha, webapp") }, "\(composeProblems)")
        #expect(composeProblems.contains { $0.contains("images/nothing/Dockerfile does not exist") }, "\(composeProblems)")
        #expect(composeProblems.contains { $0.contains("service web has no build dockerfile") }, "\(composeProblems)")
        #expect(
            ImageLint.composeProblems(compose.replacingOccurrences(of: "  web:", with: "  webapp:"), directory: repository + "/images")
                .contains { $0.contains("cannot be scaled") })
    }

    // MARK: - images/compose.scale-out.yaml

    /// The scale-out topology's Compose file, its servers' files and each node's configuration
    /// as muster-init writes it there, read by the collector's and the agent's own parsers.
    @Test func theScaleOutComposeFileIsCheckedLikeTheImages() throws {
        let text = try read("images/compose.scale-out.yaml")
        let directory = repository + "/images"
        #expect(ImageLint.scaleOutComposeProblems(text, directory: directory) == [])
        let compose = try ImageLint.ComposeFile(text)
        #expect(
            Set(compose.services.keys)
                == ["base", "zk1", "zk2", "zk3", "ch1", "ch2", "ch3", "ch4", "etcd1", "etcd2", "etcd3", "c1", "c2", "c3", "ha", "webapp"])
        #expect(ImageLint.ensembleProblems(text) == [])
        let store = try read("images/scale-out/store.yaml")
        #expect(ImageLint.scaleOutStoreProblems(compose: text, store: store, directory: directory) == [])
        // Three of each, one failing (docs/scale-out.md), with etcd's flags as the collectors need them.
        #expect(compose.services(ofImage: "zookeeper") == ["zk1", "zk2", "zk3"])
        #expect(compose.services(ofImage: "etcd") == ["etcd1", "etcd2", "etcd3"])
        for service in compose.services(ofImage: "etcd") {
            #expect(compose.options(service)["max-txn-ops"] == "1024", "\(service)")
            #expect(compose.options(service)["auto-compaction-mode"] == "periodic", "\(service)")
        }

        // The Muster images are the ones compose.yaml builds, from the same Dockerfiles.
        let lab = try ImageLint.ComposeFile(try read("images/compose.yaml"))
        for (service, role) in [("base", "base"), ("c1", "collector"), ("c2", "collector"), ("c3", "collector"), ("ha", "ha"), ("webapp", "webapp")] {
            #expect(compose.dockerfile(service) == lab.dockerfile(role), "\(service)")
            #expect(compose.services[service]?["image"] as? String == lab.services[role]?["image"] as? String, "\(service)")
        }
        #expect(compose.services["base"]?["scale"] as? Int == 0)
        #expect(compose.services["webapp"]?["ports"] == nil && compose.services["webapp"]?["container_name"] == nil, "webapp must scale")

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("muster-scale-out-lint-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let token = scratch + "/token"
        try "t0ken".write(toFile: token, atomically: true, encoding: .utf8)

        // Each collector's collector.yaml, as muster-init writes it with MUSTER_STORE_FILE, read
        // and validated by the collector's own parser (CollectorConfig), store: section included.
        for collector in ["c1", "c2", "c3"] {
            #expect(compose.environment(collector)["MUSTER_STORE_FILE"] == "/etc/muster-scale-out/store.yaml", "\(collector)")
            #expect(compose.mounts(collector).contains { $0.source == "./scale-out/store.yaml" && $0.target == "/etc/muster-scale-out/store.yaml" })
            let path = try ImageLint.nodeConfig(
                repository: repository, role: "collector",
                arguments: ["--written-by", "muster-init (collector)", "--listen-host", "0.0.0.0", "--port", "8088",
                            "--database", "/var/lib/muster-collector/muster.sqlite", "--token-file", token],
                environment: ["MUSTER_STORE_FILE": repository + "/images/scale-out/store.yaml"],
                directory: scratch)
            let config = try CollectorConfig.load(path: path)
            try config.validate()
            #expect(config.tokens == ["t0ken"])
            #expect(config.store?.clickhouse.shards == [["http://ch1:8123", "http://ch2:8123"], ["http://ch3:8123", "http://ch4:8123"]])
            #expect(config.store?.etcd.endpoints == ["http://etcd1:2379", "http://etcd2:2379", "http://etcd3:2379"])
        }

        // ha's and the web nodes' agent.yaml: every collector in collector.urls (the agent's
        // own parser, the LB controller's section included); a single URL passes unchanged.
        for service in ["ha", "webapp"] {
            let urls = try #require(compose.environment(service)["MUSTER_COLLECTOR_URL"], "\(service)")
            #expect(urls == "http://c1:8088,http://c2:8088,http://c3:8088", "\(service)")
            let path = try ImageLint.nodeConfig(
                repository: repository, role: "agent", arguments: agentArguments(node: service, url: urls, lb: service == "ha", token: token, scratch: scratch),
                directory: scratch)
            let config = try AgentConfig.load(path: path, components: try AgentComponents.standard.registering(AgentConfig.LoadBalancerConfig.self))
            try config.validate()
            #expect(config.collector.urls == ["http://c1:8088", "http://c2:8088", "http://c3:8088"], "\(service)")
        }
        let single = agentArguments(node: "c1", url: "http://127.0.0.1:8088", lb: false, token: token, scratch: scratch)
        let one = try Cluster.execute(repository + "/images/node-config", ["agent"] + single, environment: [:])
        #expect(one.contains("\n  url: http://127.0.0.1:8088\n") && !one.contains("urls:"))
    }

    /// images/node-config agent's options as muster-init gives them, with paths in `scratch`.
    func agentArguments(node: String, url: String, lb: Bool, token: String, scratch: String) -> [String] {
        ["--written-by", "muster-init", "--node", node, "--collector-url", url, "--token-file", token,
         "--state-dir", scratch + "/state", "--log-root", scratch + "/log", "--scandir", scratch + "/service", "--services", "serf",
         "--serf", "yes", "--lb", lb ? "yes" : "no", "--journal", scratch + "/state/events.jsonl",
         "--template", repository + "/collector/haproxy.cfg.mustache", "--haproxy-config", scratch + "/haproxy.cfg", "--haproxy-dir", scratch + "/run"]
    }

    /// `text` with the first `old` after the first `marker` replaced by `new`: one service's
    /// line changed where others have the same.
    func replacing(_ old: String, with new: String, after marker: String, in text: String) throws -> String {
        let start = try #require(text.range(of: marker), "\(marker)").upperBound
        let range = try #require(text.range(of: old, range: start..<text.endIndex), "\(old) after \(marker)")
        return text.replacingCharacters(in: range, with: new)
    }

    @Test func theScaleOutLintFindsWhatIsWrong() throws {
        let directory = repository + "/images"
        #expect(ImageLint.pinned("clickhouse/clickhouse-server:24.8.14.39") && ImageLint.pinned("quay.io/coreos/etcd:v3.5.17"))
        #expect(ImageLint.pinned("zookeeper@sha256:0123abcd"))
        for image in ["zookeeper", "zookeeper:latest", "clickhouse/clickhouse-server:lts", "localhost:5000/etcd", "etcd:3"] {
            #expect(!ImageLint.pinned(image), "\(image)")
        }

        // A Compose file with one of each mistake.
        let compose = """
            services:
              db:
                image: clickhouse/clickhouse-server:latest
                volumes:
                  - ./scale-out/nothing.xml:/etc/clickhouse-server/config.d/x.xml:ro
                  - ./scale-out/store.yaml:/etc/x.yaml
                  - undeclared:/var/lib/clickhouse
              zk:
                image: zookeeper
                healthcheck: {test: ["CMD", "true"]}
              c1:
                build: {context: .., dockerfile: images/collector/Dockerfile}
                environment: {MUSTER_STORE_FILE: /etc/muster-scale-out/store.yaml}
                depends_on:
                  zk: {condition: service_healthy}
                  nowhere: {condition: service_started}
              web:
                build: {context: .., dockerfile: images/nothing/Dockerfile}
                depends_on:
                  db: {condition: service_healthy}
                  zk: {condition: when_ready}
            volumes:
              declared: {}
            """
        let problems = ImageLint.scaleOutComposeProblems(compose, directory: directory)
        for expected in [
            "service db: image clickhouse/clickhouse-server:latest is not pinned", "service zk: image zookeeper is not pinned",
            "service db: mounted ./scale-out/nothing.xml does not exist", "service db: ./scale-out/store.yaml is mounted writable",
            "service db: volume undeclared is not declared", "service c1 depends on nowhere, which is not a service",
            "service web waits for db to be healthy, which has no healthcheck", "service web: condition when_ready",
            "collector c1 does not wait for [\"db\"] to be healthy", "collector c1 has no healthcheck", "server db has no healthcheck",
            "service c1: MUSTER_STORE_FILE=/etc/muster-scale-out/store.yaml is not a file it mounts",
            "service web: dockerfile images/nothing/Dockerfile does not exist",
        ] {
            #expect(problems.contains { $0.hasPrefix(expected) }, "\(expected) not in \(problems)")
        }
        #expect(problems.count == 13, "\(problems)")
        #expect(ImageLint.scaleOutComposeProblems("services: [a, b]\n", directory: directory).first?.hasPrefix("not a Compose file") == true)
        #expect(ImageLint.imageName("quay.io/coreos/etcd:v3.5.17") == "etcd" && ImageLint.imageName("localhost:5000/etcd") == "etcd")
        #expect(ImageLint.imageName("zookeeper@sha256:0123abcd") == "zookeeper")
        // ... and a ZooKeeper and no etcd: no majority would be left after one failing.
        let few = ImageLint.ensembleProblems(compose)
        for expected in [
            "1 ZooKeeper service(s): one failing", "0 etcd service(s): one failing", "zk: ZOO_SERVERS names [], not the ZooKeeper services [\"zk\"]",
            "zk: ZOO_MY_ID (none) is not the ID of its own entry",
        ] {
            #expect(few.contains { $0.hasPrefix(expected) }, "\(expected) not in \(few)")
        }

        // ClickHouse files: the repository's, then one wrong in each way.
        let files = repository + "/images/scale-out/clickhouse"
        var servers: [String: [String]] = [:]
        for server in ["ch1", "ch2", "ch3", "ch4"] { servers[server] = [files + "/cluster.xml", files + "/\(server).xml"] }
        let shards = [["http://ch1:8123", "http://ch2:8123"], ["http://ch3:8123", "http://ch4:8123"]]
        let zookeepers = ["zk1", "zk2", "zk3"]
        #expect(ImageLint.clickHouseProblems(servers: servers, cluster: "muster", storeShards: shards, zookeepers: zookeepers) == [])
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("muster-scale-out-lint-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try "<clickhouse><macros><shard>01</shard></clickhouse>\n".write(toFile: scratch + "/broken.xml", atomically: true, encoding: .utf8)
        try "<clickhouse><macros>\n".write(toFile: scratch + "/cut.xml", atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try ImageLint.xmlRoot(scratch + "/cut.xml") }
        #expect(throws: (any Error).self) { try ImageLint.xmlRoot(scratch + "/broken.xml") }
        #expect(try ImageLint.xmlRoot(files + "/users.xml").name == "clickhouse")
        try "<clickhouse><interserver_http_host>ch9</interserver_http_host><macros><shard>02</shard><replica>ch2</replica></macros></clickhouse>\n"
            .write(toFile: scratch + "/ch2.xml", atomically: true, encoding: .utf8)
        try "<yandex><macros><shard>02</shard><replica>chX</replica></macros></yandex>\n".write(toFile: scratch + "/ch3.xml", atomically: true, encoding: .utf8)
        var wrong = servers
        wrong["ch1"] = [files + "/cluster.xml", scratch + "/broken.xml"]
        wrong["ch2"] = [files + "/cluster.xml", scratch + "/ch2.xml"]
        wrong["ch3"] = [files + "/cluster.xml", scratch + "/ch3.xml"]
        wrong["ch4"] = [files + "/ch4.xml"]
        let chProblems = ImageLint.clickHouseProblems(
            servers: wrong, cluster: "muster", storeShards: [shards[1], shards[0]], zookeepers: ["zk1", "zk2", "zk4"])
        for expected in [
            "\(scratch)/broken.xml is not well-formed XML", "ch1: no macros shard and replica",
            "ch2: interserver_http_host is ch9", "ch2 is in shard 1 of remote_servers/muster, but its shard macro says 2",
            "ch3: macro replica is chX", "ch4: no remote_servers/muster", "ch1: ZooKeeper host 'zk3' is not a ZooKeeper service",
            "ch1: its ZooKeeper nodes leave out [\"zk4\"]", "ch4: its ZooKeeper nodes leave out [\"zk1\", \"zk2\", \"zk4\"]",
            "the store's shards [[\"ch3\", \"ch4\"], [\"ch1\", \"ch2\"]] are not",
        ] {
            #expect(chProblems.contains { $0.hasPrefix(expected) }, "\(expected) not in \(chProblems)")
        }
        let unknown = ImageLint.clickHouseProblems(servers: servers, cluster: "other", storeShards: shards, zookeepers: zookeepers)
        #expect(unknown.contains("ch1: no remote_servers/other"), "\(unknown)")

        // The store against the Compose file: an etcd endpoint that is no service, one on a
        // port its member does not advertise, a member no endpoint names, more operations per
        // transaction than etcd allows.
        let scaleOut = try read("images/compose.scale-out.yaml")
        let store = try read("images/scale-out/store.yaml")
        let endpoints = "[http://etcd1:2379, http://etcd2:2379, http://etcd3:2379]"
        #expect(store.contains(endpoints))
        let badStore = store.replacingOccurrences(of: endpoints, with: "[http://etcd1:2379, http://etcd2:2380, http://etcd4:2379]")
            .replacingOccurrences(of: "max_txn_ops: 1024", with: "max_txn_ops: 4096")
        let storeProblems = ImageLint.scaleOutStoreProblems(compose: scaleOut, store: badStore, directory: directory)
        for expected in [
            "etcd endpoint http://etcd4:2379 is not an etcd service", "etcd endpoint http://etcd2:2380 is not what etcd2 advertises",
            "etcd service etcd3 is not among store.etcd.endpoints", "store.etcd.max_txn_ops 4096 is above etcd1's --max-txn-ops 1024",
            "store.etcd.max_txn_ops 4096 is above etcd3's --max-txn-ops 1024",
        ] {
            #expect(storeProblems.contains { $0.hasPrefix(expected) }, "\(expected) not in \(storeProblems)")
        }
        #expect(storeProblems.count == 6, "\(storeProblems)")
        // The ClickHouse servers' ZooKeeper nodes against the ZooKeeper services.
        let zkGone = try replacing("  zk3:\n", with: "  zk9:\n", after: "services:", in: scaleOut)
            .replacingOccurrences(of: "hostname: zk3", with: "hostname: zk9")
        let zkProblems = ImageLint.scaleOutStoreProblems(compose: zkGone, store: store, directory: directory)
        #expect(zkProblems.contains("ch1: ZooKeeper host 'zk3' is not a ZooKeeper service"), "\(zkProblems)")
        #expect(zkProblems.contains("ch4: its ZooKeeper nodes leave out [\"zk9\"]"), "\(zkProblems)")

        // The ensembles: a ZooKeeper member with another's ID, one with its own ZOO_SERVERS;
        // an etcd member renamed, one with another --initial-cluster, one without the token.
        #expect(ImageLint.ensembleProblems("services: [a, b]\n").first?.hasPrefix("not a Compose file") == true)
        var ensembles = try replacing("ZOO_MY_ID: \"3\"", with: "ZOO_MY_ID: \"2\"", after: "  zk3:\n", in: scaleOut)
        ensembles = try replacing(
            "ZOO_MY_ID: \"2\"", with: "ZOO_MY_ID: \"2\"\n      ZOO_SERVERS: server.1=zk1:2888:3888;2181 server.2=zk2:2888:3888;2181",
            after: "  zk2:\n", in: ensembles)
        ensembles = try replacing("--name=etcd3", with: "--name=etcd4", after: "  etcd3:\n", in: ensembles)
        ensembles = try replacing(",etcd3=http://etcd3:2380", with: ",etcd3=http://etcd9:2380", after: "  etcd2:\n", in: ensembles)
        ensembles = try replacing("      - --initial-cluster-token=muster-scale-out\n", with: "", after: "  etcd1:\n", in: ensembles)
        let ensembleProblems = ImageLint.ensembleProblems(ensembles)
        for expected in [
            "zk3: ZOO_MY_ID 2 is not the ID of its own entry", "zk2: ZOO_SERVERS names [\"zk1\", \"zk2\"], not the ZooKeeper services",
            "the ZooKeeper services' ZOO_SERVERS differ",
            "etcd1: --initial-cluster names [\"etcd1\", \"etcd2\", \"etcd3\"], not the etcd services' --name [\"etcd1\", \"etcd2\", \"etcd4\"]",
            "etcd3: --initial-advertise-peer-urls http://etcd3:2380 is not its --initial-cluster entry etcd4=(none)",
            "the etcd services' --initial-cluster differ", "etcd services without --initial-cluster-token: [\"etcd1\"]",
            "the etcd services' --initial-cluster-token differ",
        ] {
            #expect(ensembleProblems.contains { $0.hasPrefix(expected) }, "\(expected) not in \(ensembleProblems)")
        }
        // A member's peer URL on another host, with its --initial-cluster entry to match.
        let moved = scaleOut.replacingOccurrences(of: "etcd2=http://etcd2:2380", with: "etcd2=http://etcd9:2380")
            .replacingOccurrences(of: "--initial-advertise-peer-urls=http://etcd2:2380", with: "--initial-advertise-peer-urls=http://etcd9:2380")
        #expect(ImageLint.ensembleProblems(moved) == ["etcd2: --initial-advertise-peer-urls http://etcd9:2380 is not on its host name etcd2"])
        let swapped = store.replacingOccurrences(of: "[http://ch1:8123, http://ch2:8123]", with: "[http://ch2:8123, http://ch1:8123]")
        #expect(ImageLint.scaleOutStoreProblems(compose: scaleOut, store: swapped, directory: directory).contains { $0.hasPrefix("the store's shards") })

        // The collector's parser refuses a store: section out of range or with a misspelled key,
        // naming the key; node-config refuses a collector URL that is not one.
        let token = scratch + "/token"
        try "t0ken".write(toFile: token, atomically: true, encoding: .utf8)
        for (change, key) in [("timeout_ms: 60000", "timeout_ms: 5"), ("namespace:", "namespaec:")] {
            let file = scratch + "/store-\(UUID().uuidString).yaml"
            try store.replacingOccurrences(of: change, with: key).write(toFile: file, atomically: true, encoding: .utf8)
            let path = try ImageLint.nodeConfig(
                repository: repository, role: "collector", arguments: ["--token-file", token], environment: ["MUSTER_STORE_FILE": file],
                directory: scratch)
            do {
                try CollectorConfig.load(path: path).validate()
                Issue.record("the collector accepted a store: section with \(key)")
            } catch {
                #expect("\(error)".contains(key == "namespaec:" ? "namespaec" : "store.clickhouse.timeout_ms"), "\(error)")
            }
        }
        #expect(throws: (any Error).self) {
            try ImageLint.nodeConfig(
                repository: self.repository, role: "agent",
                arguments: self.agentArguments(node: "w", url: "http://c1:8088,c2 8088", lb: false, token: token, scratch: scratch), directory: scratch)
        }
    }

    // MARK: - images/cluster on namespaces

    /// `images/cluster ARGS…` with the cluster's environment and `extra`.
    @discardableResult
    func cluster(_ cluster: Cluster, _ extra: [String: String], _ arguments: String...) throws -> String {
        try Cluster.execute(repository + "/images/cluster", arguments, environment: cluster.environment.merging(extra) { $1 })
    }

    /// Two host ports for this run (below the ephemeral range, apart from the other tests').
    func hostPorts() -> (http: Int, stats: Int) {
        (18_000 + Int(getpid() % 6000), 24_000 + Int(getpid() % 6000))
    }

    func listeners(_ port: Int) throws -> String {
        try Cluster.execute("/usr/bin/ss", ["-Hltn", "sport = :\(port)"], environment: [:]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func curl(_ url: String) -> String? {
        try? Cluster.execute("/usr/bin/curl", ["-fsS", "--noproxy", "*", "--max-time", "2", url], environment: [:])
    }

    @Test func hostPortsReachHAProxyFromTheRootNamespaceLikeDockerRunP() throws {
        let cluster = try Cluster(tag: "hp\(getpid() % 10000)", subnet: "10.83.\(getpid() % 200 + 20)")
        let (http, stats) = hostPorts()
        let ports = ["MUSTER_CLUSTER_PORTS": "\(http):80 \(stats):1936"]

        // A port that is taken fails `up`, saying so.
        let squatter = try RunningProcess(
            "/usr/bin/python3",
            ["-c", "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', \(http))); s.listen(); print('listening', flush=True); time.sleep(120)"],
            logPath: cluster.state + "-squatter.log")
        #expect(waitUntil(timeout: 10) { squatter.log().contains("listening") })
        let refused = #expect(throws: (any Error).self) { try self.cluster(cluster, ports, "up") }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("host port 127.0.0.1:\(http): socat did not start listening"))
        #expect("\(refused.map { "\($0)" } ?? "")".contains("is the port taken?"))
        squatter.stop()
        try? FileManager.default.removeItem(atPath: cluster.state + "-squatter.log")

        let summary = try self.cluster(cluster, ports, "up")
        #expect(summary.contains("http:      http://127.0.0.1:\(http)"), "\(summary)")
        try cluster.run("add", "s1")
        let environment = try cluster.run("env")
        #expect(environment.contains("MUSTER_HTTP_URL=http://127.0.0.1:\(http)\n"), "\(environment)")
        #expect(environment.contains("MUSTER_STATS_URL=http://127.0.0.1:\(stats)\n"), "\(environment)")
        let ps = try cluster.run("ps")
        let haRow = ps.split(separator: "\n").first { $0.hasPrefix("ha ") }.map(String.init) ?? ""
        #expect(haRow.hasSuffix("127.0.0.1:\(http)->80/tcp,127.0.0.1:\(stats)->1936/tcp"), "\(ps)")

        // Requests from the root namespace reach HAProxy and through it the web node.
        var answer = ""
        let routed = waitUntil(timeout: 30, interval: 0.3) {
            answer = curl("http://127.0.0.1:\(http)/") ?? ""
            return (try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])?["host"] as? String == "s1"
        }
        try #require(routed, "no answer from s1 through 127.0.0.1:\(http); last: \(answer)\n\(ps)")
        let csv = curl("http://127.0.0.1:\(stats)/;csv") ?? ""
        #expect(csv.split(separator: "\n").contains { $0.hasPrefix("nodes,s1,") }, "stats page: \(csv)")

        // `up` again leaves the running forwarders alone.
        let recorded = try String(contentsOfFile: cluster.state + "/forward/\(http)", encoding: .utf8)
        let again = try self.cluster(cluster, ports, "up")
        #expect(again.contains("host port 127.0.0.1:\(http) already forwarded"), "\(again)")
        #expect(try String(contentsOfFile: cluster.state + "/forward/\(http)", encoding: .utf8) == recorded)

        try cluster.run("down")
        #expect(try listeners(http) == "")
        #expect(try listeners(stats) == "")
        #expect(curl("http://127.0.0.1:\(http)/") == nil)
    }

    /// What a cluster named `name` has on this machine, listed from the system itself:
    /// namespaces, interfaces, processes carrying its marker, forwarders of `ports`.
    func leftovers(of name: String, ports: [Int]) throws -> [String] {
        var found: [String] = []
        for line in try Cluster.execute("/usr/sbin/ip", ["netns", "list"], environment: [:]).split(separator: "\n") {
            if let namespace = line.split(separator: " ").first, namespace.hasPrefix("\(name)-") { found.append("namespace \(namespace)") }
        }
        for line in try Cluster.execute("/usr/sbin/ip", ["-o", "link", "show"], environment: [:]).split(separator: "\n") {
            let fields = line.components(separatedBy: ": ")
            guard fields.count > 1 else { continue }
            let interface = fields[1].split(separator: "@").first.map(String.init) ?? fields[1]
            if interface.hasPrefix("\(name)-") || interface.hasPrefix("\(name)_") { found.append("interface \(interface)") }
        }
        for process in processes() {
            if process.environment.contains("MUSTER_CLUSTER_MEMBER_OF=\(name)") {
                found.append("process \(process.pid) (\(process.comm)) with the cluster's marker")
            }
            if process.comm == "socat", ports.contains(where: { port in process.command.contains { $0.hasPrefix("TCP-LISTEN:\(port),") } }) {
                found.append("forwarder \(process.pid): \(process.command.joined(separator: " "))")
            }
        }
        for port in ports {
            if try !listeners(port).isEmpty { found.append("a listener on port \(port)") }
        }
        return found
    }

    /// Every process: its program name, command line and environment, from /proc.
    func processes() -> [(pid: Int32, comm: String, command: [String], environment: [String])] {
        func strings(_ path: String) -> [String] {
            ((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return pids.map { pid in
            let comm = ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
            return (pid, comm, strings("/proc/\(pid)/cmdline"), strings("/proc/\(pid)/environ"))
        }
    }

    /// `down` removes the state directory, never the directory it sits in: by default that is
    /// /var/tmp, which an earlier `down` removed whenever it was otherwise empty.
    @Test func downLeavesTheStateDirectorysParentInPlace() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("muster-down-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let environment = ["MUSTER_CLUSTER": "dp\(getpid() % 10000)", "MUSTER_CLUSTER_STATE": parent + "/state"]
        _ = try Cluster.execute(repository + "/images/cluster", ["down"], environment: environment)
        #expect(FileManager.default.fileExists(atPath: parent), "images/cluster down removed \(parent)")
    }

    @Test func downRemovesEverythingAfterTheToolIsKilledMidAddAndItsStateIsGone() throws {
        let cluster = try Cluster(tag: "dk\(getpid() % 10000)", subnet: "10.84.\(getpid() % 200 + 20)")
        let (http, stats) = hostPorts()
        let ports = ["MUSTER_CLUSTER_PORTS": "\(http + 1):80 \(stats + 1):1936"]
        try self.cluster(cluster, ports, "up")
        try cluster.run("add", "s1")

        // `add s2`, SIGKILLed as soon as it has launched s6-svscan in s2's namespace.
        let add = Process()
        add.executableURL = URL(fileURLWithPath: repository + "/images/cluster")
        add.arguments = ["add", "s2"]
        add.environment = ProcessInfo.processInfo.environment.merging(cluster.environment) { $1 }
        add.standardOutput = FileHandle.nullDevice
        add.standardError = FileHandle.nullDevice
        add.standardInput = FileHandle.nullDevice
        try add.run()
        let launched = waitUntil(timeout: 30, interval: 0.005) {
            FileManager.default.fileExists(atPath: cluster.nodeDirectory("s2") + "/svscan.log")
        }
        kill(add.processIdentifier, SIGKILL)
        add.waitUntilExit()
        try #require(launched, "images/cluster add s2 never launched s6-svscan")

        // The tool's memory goes too, as if its machine state were lost: every s6-svscan of
        // the cluster SIGKILLed (the services live on under orphaned s6-supervise), the state
        // directory deleted.
        for process in processes() where process.comm == "s6-svscan" && process.environment.contains("MUSTER_CLUSTER_MEMBER_OF=\(cluster.name)") {
            kill(process.pid, SIGKILL)
        }
        // Moved away in one rename, not deleted: the orphaned services still write their logs
        // under it, and a recursive delete racing with them fails now and then.
        let lost = cluster.state + ".lost"
        try FileManager.default.moveItem(atPath: cluster.state, toPath: lost)
        defer { try? FileManager.default.removeItem(atPath: lost) }

        let before = try leftovers(of: cluster.name, ports: [http + 1, stats + 1])
        for expected in ["namespace \(cluster.name)-s2", "interface \(cluster.name)-br", "forwarder"] {
            #expect(before.contains { $0.hasPrefix(expected) }, "before down: \(before)")
        }
        try cluster.run("down")
        let after = try leftovers(of: cluster.name, ports: [http + 1, stats + 1])
        #expect(after == [], "left behind by down")
    }
}

import Foundation
import Testing

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

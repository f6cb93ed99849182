import Foundation
import Testing

/// `scripts/install` into a scratch prefix, with the debug binaries the other tests run (CI
/// builds once, in debug): the files land where their tools look for them. `man -l` formats
/// logq's page, bash completes `logq <TAB>`, the installed logq finds its saved queries, and
/// the Debian package installs into a scratch root.
@Suite(.serialized) final class InstallTests {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("install-\(getpid())-\(UUID().uuidString.prefix(8))").path
    var prefix: String { scratch + "/prefix" }

    deinit {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    static let programs = ["muster-agent", "muster-collector", "logq", "demo-webapp"]

    /// The debug build directory, with the manual generator the installer runs.
    func binaries() throws -> String {
        let directory = Binaries.directory.path
        guard FileManager.default.isExecutableFile(atPath: directory + "/generate-manual") else {
            throw TestSetupError(
                "\(directory)/generate-manual not found: scripts/test builds it; by hand: swift build --product generate-manual")
        }
        return directory
    }

    func install(_ arguments: String...) throws -> String {
        try Cluster.execute(Cluster.repository + "/scripts/install", ["--bin-dir", try binaries()] + arguments, environment: [:])
    }

    /// Runs `script` with bash in `directory`, MUSTER_QUERIES unset (it would decide for logq).
    func bash(_ script: String, in directory: String = "/", environment: [String: String] = [:]) throws -> String {
        try Cluster.execute("/usr/bin/env", ["-u", "MUSTER_QUERIES", "/bin/bash", "-c", "cd \"$0\" && \(script)", directory], environment: environment)
    }

    func isExecutable(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

    func nonEmpty(_ path: String) -> Bool {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int ?? 0) > 0
    }

    @Test func theInstallerPutsEachFileWhereItsToolLooks() throws {
        let transcript = try install("--prefix", prefix)
        #expect(transcript.contains("installed"), "\(transcript)")

        // The programs, a page each, completions for three shells.
        for program in Self.programs {
            #expect(isExecutable("\(prefix)/bin/\(program)"), "bin/\(program)")
            #expect(nonEmpty("\(prefix)/share/man/man1/\(program).1"), "man1/\(program).1")
            #expect(nonEmpty("\(prefix)/share/bash-completion/completions/\(program)"), "bash completion of \(program)")
            #expect(nonEmpty("\(prefix)/share/zsh/site-functions/_\(program)"), "zsh completion of \(program)")
            #expect(nonEmpty("\(prefix)/share/fish/vendor_completions.d/\(program).fish"), "fish completion of \(program)")
        }
        // The s6 service directories, example configurations, saved queries and documents.
        for service in ["muster-agent", "muster-collector", "serf", "haproxy", "demo-webapp"] {
            #expect(isExecutable("\(prefix)/share/muster/service/\(service)/run"), "service/\(service)/run")
            #expect(isExecutable("\(prefix)/share/muster/service/\(service)/log/run"), "service/\(service)/log/run")
        }
        #expect(try String(contentsOfFile: "\(prefix)/share/muster/service/serf/down-signal", encoding: .utf8) == "SIGINT\n")
        for example in ["agent.example.yaml", "collector.example.yaml", "haproxy.cfg.mustache"] {
            #expect(nonEmpty("\(prefix)/share/muster/examples/\(example)"), "examples/\(example)")
        }
        let queries = try FileManager.default.contentsOfDirectory(atPath: Cluster.repository + "/queries").filter { $0.hasSuffix(".sql") }
        #expect(!queries.isEmpty)
        for query in queries {
            #expect(nonEmpty("\(prefix)/share/muster/queries/\(query)"), "queries/\(query)")
        }
        #expect(nonEmpty("\(prefix)/share/doc/muster/README.md"))

        // logq --help from the installed program, and its examples of times and exit codes.
        let help = try bash("\"$LOGQ\" --help", environment: ["LOGQ": "\(prefix)/bin/logq"])
        #expect(help.contains("USAGE: logq <subcommand>"), "\(help)")
        #expect(help.contains("Exit codes:"), "\(help)")
        #expect(help.contains("members"), "\(help)")

        // The installed logq finds the installed queries from any folder: neither ./queries nor
        // a source tree is there, only PREFIX/share/muster/queries beside PREFIX/bin.
        let list = try bash("\"$LOGQ\" run --list", environment: ["LOGQ": "\(prefix)/bin/logq"])
        for name in ["members-at", "slowest-requests", "errors-per-minute"] {
            #expect(list.contains(name), "logq run --list: \(list)")
        }

        // man formats the page; with PREFIX/bin on PATH, `man logq` finds it (man-db maps
        // PATH entries to their ../share/man).
        let page = try bash("MANWIDTH=100 man -l \"$PAGE\" 2>/dev/null", environment: ["PAGE": "\(prefix)/share/man/man1/logq.1"])
        #expect(page.contains("SYNOPSIS"), "\(page.prefix(2000))")
        #expect(page.contains("logq —") || page.contains("logq -"), "\(page.prefix(2000))")
        for subcommand in ["members", "timeline", "export", "report"] {
            #expect(page.contains(subcommand), "man page without \(subcommand)")
        }
        let found = try bash("man -w logq", environment: ["PATH": "\(prefix)/bin:/usr/bin:/bin", "MANPATH": ""])
        #expect(found.trimmingCharacters(in: .whitespacesAndNewlines) == "\(prefix)/share/man/man1/logq.1", "\(found)")

        // bash completes `logq <TAB>` with the subcommands, and `logq logs --fo<TAB>`.
        let completion = """
            source "$SCRIPT"
            function=$(complete -p logq | sed 's/.* -F \\([^ ]*\\) .*/\\1/')
            COMP_WORDS=(logq ""); COMP_CWORD=1; COMP_LINE="logq "; COMP_POINT=${#COMP_LINE}
            "$function" logq "" logq; echo "words: ${COMPREPLY[*]}"
            COMPREPLY=(); COMP_WORDS=(logq logs --fo); COMP_CWORD=2; COMP_LINE="logq logs --fo"; COMP_POINT=${#COMP_LINE}
            "$function" logq --fo logs; echo "options: ${COMPREPLY[*]}"
            """
        let completed = try bash(completion, environment: ["SCRIPT": "\(prefix)/share/bash-completion/completions/logq"])
        for word in ["logs", "members", "nodes", "timeline", "export", "report", "sql", "run"] {
            #expect(completed.contains(" \(word) ") || completed.contains(" \(word)\n"), "logq <TAB>: \(completed)")
        }
        #expect(completed.contains("options: --follow --format\n"), "logq logs --fo<TAB>: \(completed)")
        #expect(try String(contentsOfFile: "\(prefix)/share/zsh/site-functions/_logq", encoding: .utf8).hasPrefix("#compdef logq"))
        #expect(try String(contentsOfFile: "\(prefix)/share/fish/vendor_completions.d/logq.fish", encoding: .utf8).contains("complete -c 'logq'"))

        // Installing again over the same prefix is fine (an upgrade).
        _ = try install("--prefix", prefix)
        #expect(isExecutable("\(prefix)/bin/logq"))
    }

    @Test func aMistakeIsOneLineThatSaysWhatToDo() throws {
        let unknown = #expect(throws: (any Error).self) { try self.install("--prefx", self.prefix) }
        #expect("\(unknown.map { "\($0)" } ?? "")".contains("unknown argument '--prefx'"))
        let missing = #expect(throws: (any Error).self) {
            try Cluster.execute(Cluster.repository + "/scripts/install", ["--bin-dir", self.scratch + "/nothing", "--prefix", self.prefix], environment: [:])
        }
        #expect("\(missing.map { "\($0)" } ?? "")".contains("not found: build it first"))
    }

    @Test func theDebianPackageInstallsIntoAScratchRoot() throws {
        let output = scratch + "/deb"
        let transcript = try install("--deb", output)
        let packages = try FileManager.default.contentsOfDirectory(atPath: output).filter { $0.hasPrefix("muster_") && $0.hasSuffix(".deb") }
        try #require(packages.count == 1, "\(transcript)")
        let deb = output + "/" + packages[0]

        let info = try Cluster.execute("/usr/bin/dpkg-deb", ["--field", deb, "Package", "Version", "Depends"], environment: [:])
        #expect(info.contains("Package: muster"), "\(info)")
        #expect(info.contains("libsqlite3-0"), "\(info)")
        #expect(info.contains("libdeflate0"), "\(info)")
        // Release binaries carry packed relative relocations (scripts/build-release), which
        // glibc loads from 2.36 on.
        #expect(info.contains("libc6 (>= 2.36)"), "\(info)")

        // A scratch root with an empty dpkg database: dpkg installs the package there as it
        // would on a machine (dependencies are the machine's business, not the scratch root's).
        let root = scratch + "/root"
        for directory in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(directory)", withIntermediateDirectories: true)
        }
        for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
            FileManager.default.createFile(atPath: "\(root)/\(file)", contents: Data())
        }
        _ = try Cluster.execute("/usr/bin/dpkg", ["--root=\(root)", "--force-depends", "--log=/dev/null", "-i", deb], environment: [:])
        let status = try Cluster.execute("/usr/bin/dpkg", ["--root=\(root)", "-s", "muster"], environment: [:])
        #expect(status.contains("Status: install ok installed"), "\(status)")
        for program in Self.programs {
            #expect(isExecutable("\(root)/usr/bin/\(program)"), "usr/bin/\(program)")
            #expect(nonEmpty("\(root)/usr/share/man/man1/\(program).1"), "man1/\(program).1")
        }
        let list = try bash("\"$LOGQ\" run --list", environment: ["LOGQ": "\(root)/usr/bin/logq"])
        #expect(list.contains("members-at"), "\(list)")

        // apt accepts it on this machine (a simulation: nothing is installed).
        let apt = try Cluster.execute("/usr/bin/apt-get", ["install", "--simulate", "--no-install-recommends", deb], environment: [:])
        #expect(apt.contains("Inst muster"), "\(apt)")
    }
}

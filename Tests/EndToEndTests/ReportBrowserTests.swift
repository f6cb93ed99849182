import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

/// `logq report` as people use it: the real binary writes the page, real headless Chromium
/// (Debian's `chromium`) renders it; the rendered DOM has one membership mark per change and
/// the screenshot is a real picture.
@Suite struct ReportBrowserTests {
    struct Finished {
        var status: Int32
        var output: String
    }

    /// Runs a program to its end (killed after `timeout`), stdout and stderr together.
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> Finished {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TZ": "UTC"]) { $1 }
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("muster-run-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestSetupError("\((executable as NSString).lastPathComponent) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        try output.close()
        return Finished(status: process.terminationStatus, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// Debian's Chromium, or a failure that says how to get it.
    static func chromium() throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for directory in directories {
            let path = "\(directory)/chromium"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestSetupError("chromium not found on PATH: install chromium: scripts/install-deps (Debian package 'chromium')")
    }

    /// A cluster's afternoon: eight web nodes join one by one, some leave, some fail, a few
    /// come back; a configuration per change; samples every second; a mark every ten changes.
    static func makeStore(at path: String) throws -> Int {
        let pool = try Schema.openForWriting(path: path, synchronous: .normal)
        let start: Int64 = 1_800_000_000_000_000_000
        let second = Timestamp.nanosPerSecond
        var entries: [JournalEntry] = []
        var alive: [String] = []
        var version = 0
        for step in 0..<32 {
            let t = start + Int64(step) * 3 * second + second
            let name = "web\(step % 8 + 1)"
            let event: JournalEvent
            if !alive.contains(name) {
                event = .memberJoin
                alive.append(name)
            } else {
                event = step % 3 == 0 ? .memberFailed : .memberLeave
                alive.removeAll { $0 == name }
            }
            entries.append(JournalEntry(
                t: t, event: event, observer: "lb", member: Member(name: name, address: "10.1.0.\(step % 8 + 1)", role: "web")))
            version += 1
            let servers = alive.sorted()
            entries.append(JournalEntry(
                t: t + second / 2, event: .config, observer: "lb",
                config: ConfigApply(
                    version: version, sha256: String(repeating: "a", count: 64), text: servers.joined(separator: "\n"),
                    diff: "--- previous\n+++ new\n@@\n\(event == .memberJoin ? "+" : "-")    server \(name) 10.1.0.\(step % 8 + 1):80\n",
                    trigger: ["\(name) \(event == .memberJoin ? "joined" : "left")"], method: version == 1 ? "reload" : "runtime",
                    durationMilliseconds: 40, outcome: .applied, message: nil, servers: servers)))
        }
        // Each sample adds sessions to the servers whose member is up at that second.
        let changes = entries.filter { $0.member != nil }
        var state: [String: JournalEvent] = [:]
        var applied = 0
        var totals: [String: Int] = [:]
        var samples: [LogRecord] = []
        for secondIndex in 0...100 {
            let t = start + Int64(secondIndex) * second
            while applied < changes.count, changes[applied].t <= t {
                let name = changes[applied].member!.name
                state[name] = changes[applied].event
                // HAProxy deletes a server that leaves; one added again counts from 0.
                if changes[applied].event != .memberJoin { totals[name] = 0 }
                applied += 1
            }
            let rows = state.filter { $0.value == .memberJoin }.keys.sorted().enumerated().map { index, name in
                totals[name, default: 0] += 20 + 7 * index + (secondIndex % 5) * 3
                return ServerStats(proxy: "nodes", name: name, status: "UP", currentSessions: 1, totalSessions: totals[name]!,
                                   responses2xx: totals[name]!, responses5xx: 0)
            }
            let entry = JournalEntry(t: t, event: .haproxyStats, observer: "lb", stats: rows)
            samples.append(LogRecord(
                time: t, node: "lb", origin: Origin(agent: "lb", source: JournalEntry.sourceID, generation: "1", offset: Int64(secondIndex)),
                message: entry.encodedLine()))
        }
        try pool.write { db in
            _ = try LogWriter.insert([samples], into: db)
            for (index, entry) in entries.enumerated() {
                if index % 20 == 0 {
                    _ = try Mark.record(name: "task-\(index / 20)", note: "ten more changes", at: entry.t - second / 2, in: db)
                }
                try ClusterLedger().apply([entry], in: db)
            }
        }
        return try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM membership")! }
    }

    @Test func chromiumRendersOneMarkPerChangeAndAPicture() throws {
        let browser = try Self.chromium()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-report-browser-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let changes = try Self.makeStore(at: directory + "/store.sqlite")
        #expect(changes == 32)

        let page = directory + "/report.html"
        let written = try Self.run(try Binaries.path("logq"), ["report", "--db", directory + "/store.sqlite", "--out", page])
        #expect(written.status == 0, "logq report: \(written.output)")
        #expect(written.output.hasPrefix("wrote \(page): "))

        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(directory)/profile",
                     "--window-size=1400,2000"]
        let dom = try Self.run(browser, flags + ["--dump-dom", "file://" + page])
        #expect(dom.status == 0, "chromium --dump-dom: \(dom.output.suffix(2_000))")
        let marks = dom.output.components(separatedBy: "class=\"membership-mark\"").count - 1
        #expect(marks == changes, "the rendered DOM has \(marks) membership marks for \(changes) changes")
        #expect(dom.output.contains("<circle class=\"membership-mark\" data-member=\"web1\" data-change=\"joined\""))
        #expect(dom.output.contains("class=\"rate-line\""), "no request-rate line was rendered")

        let picture = directory + "/report.png"
        let shot = try Self.run(browser, flags + ["--screenshot=\(picture)", "file://" + page])
        #expect(shot.status == 0, "chromium --screenshot: \(shot.output.suffix(2_000))")
        let png = try Data(contentsOf: URL(fileURLWithPath: picture))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "not a PNG")
        // Width and height from the IHDR chunk, big-endian at bytes 16-23.
        let width = png.count > 24 ? png[16..<20].reduce(0) { $0 << 8 | Int($1) } : 0
        let height = png.count > 24 ? png[20..<24].reduce(0) { $0 << 8 | Int($1) } : 0
        #expect(width == 1400 && height == 2000, "\(width)x\(height)")
        // A blank 1400x2000 page compresses to a few KB; charts, tables and text take far more.
        #expect(png.count > 60_000, "the screenshot is \(png.count) bytes: blank?")
    }
}

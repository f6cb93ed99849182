import Foundation
import Testing

/// The agent following more files than it may open: thousands of files created at once under
/// a small descriptor limit, as a host agent meets them on a busy node.
@Suite(.serialized) struct ManyFilesTests {
    /// 2,000 files of 20 numbered lines each, created in a burst while the agent runs with a
    /// descriptor limit of 256 (`prlimit`, so its own budget defaults to 96 files): every line
    /// is stored once and in its file's order, the process never runs out of descriptors, and
    /// it keeps shipping.
    @Test func twoThousandFilesUnderADescriptorLimitOf256() throws {
        let prlimit = "/usr/bin/prlimit"
        try #require(
            FileManager.default.isExecutableFile(atPath: prlimit),
            "this test needs prlimit (Debian's util-linux); scripts/install-deps installs it")
        let pipeline = try LoopbackPipeline("many-files")
        try pipeline.startCollector()
        let agent = try RunningProcess(
            prlimit,
            ["--nofile=256:256", "--", try Binaries.path("muster-agent"), "--node", "s1", "--collector-url",
             "http://127.0.0.1:\(pipeline.port)", "--token", pipeline.token, "--state-dir", pipeline.agentState,
             "--file", "app=\(pipeline.logs)/*.log"],
            logPath: pipeline.directory + "/agent.log")
        defer { agent.stop() }
        let started = waitUntil(timeout: 30) { agent.log().contains("agent started") }
        try #require(started, "agent did not start: \(agent.log().suffix(2000))")

        let files = 2000
        let linesPerFile = 20
        let expected = (0..<files).map { file in (0..<linesPerFile).map { "file \(file) line \($0)" } }
        for (file, lines) in expected.enumerated() {
            let text = lines.joined(separator: "\n") + "\n"
            try text.write(toFile: pipeline.logs + "/f\(file).log", atomically: false, encoding: .utf8)
        }

        var mostDescriptors = 0
        let stored = try waitUntil(timeout: 300, interval: 0.5) {
            mostDescriptors = max(mostDescriptors, Self.openDescriptors(agent.pid))
            return try agent.process.isRunning && pipeline.storedCount() >= files * linesPerFile
        }
        let log = agent.log()
        #expect(!log.contains("Too many open files"), "the agent ran out of descriptors: \(log.suffix(3000))")
        let count = try pipeline.storedCount()
        try #require(stored, "stored \(count) of \(files * linesPerFile); agent: \(log.suffix(3000))")
        #expect(agent.process.isRunning)
        #expect(mostDescriptors < 256)

        // Each file's lines once and in order (files are read in turns, so only per file).
        let messages = try pipeline.storedMessages()
        #expect(messages.count == files * linesPerFile)
        #expect(Set(messages).count == messages.count)
        var byFile: [String: [String]] = [:]
        for message in messages { byFile[String(message.split(separator: " ")[1]), default: []].append(message) }
        let outOfOrder = expected.enumerated().filter { byFile["\($0.offset)"] != $0.element }.count
        #expect(outOfOrder == 0)

        // Still following every file: a line added to the first one arrives too.
        try appendLines(["file 0 line 20"], to: pipeline.logs + "/f0.log")
        let followed = try waitUntil(timeout: 60, interval: 0.2) { (try pipeline.storedMessages()).contains("file 0 line 20") }
        #expect(followed, "a line appended to a file closed for now was not shipped")
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }
}

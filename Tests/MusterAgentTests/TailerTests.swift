import Foundation
import MusterWire
import Testing

@testable import MusterAgent

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-agent-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func append(_ text: String, to name: String) throws {
        let file = path + "/" + name
        if !FileManager.default.fileExists(atPath: file) { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }
}

@Suite struct FileTailerTests {
    func drain(_ tailer: FileTailer) -> [TailedLine] {
        var lines: [TailedLine] = []
        tailer.scan()
        while tailer.read(budget: 1 << 20, into: { lines.append($0) }) > 0 {}
        return lines
    }

    @Test func emitsOnlyCompleteLinesWithTheirOffsets() throws {
        let dir = try ScratchDirectory()
        try dir.append("first\nsec", to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain) { _ in nil }
        let before = drain(tailer)
        #expect(before.map(\.message) == ["first"])
        #expect(before.map(\.offset) == [0])
        #expect(before.map(\.endOffset) == [6])
        try dir.append("ond\r\nthird\n", to: "app.log")
        let after = drain(tailer)
        #expect(after.map(\.message) == ["second", "third"])
        #expect(after.map(\.offset) == [6, 14])
        #expect(after.last?.endOffset == 20)
    }

    @Test func resumesFromACheckpointedPosition() throws {
        let dir = try ScratchDirectory()
        try dir.append("one\ntwo\nthree\n", to: "app.log")
        let first = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain) { _ in nil }
        let lines = drain(first)
        let identity = lines[0].identity
        let resumed = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain) {
            $0 == identity ? FilePosition(identity: identity, truncations: 0, offset: lines[0].endOffset) : nil
        }
        #expect(drain(resumed).map(\.message) == ["two", "three"])
    }

    @Test func picksUpNewFilesMatchingAGlob() throws {
        let dir = try ScratchDirectory()
        try dir.append("a1\n", to: "a.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/*.log"], format: .plain) { _ in nil }
        #expect(drain(tailer).map(\.message) == ["a1"])
        try dir.append("b1\n", to: "b.log")
        try dir.append("ignored\n", to: "c.txt")
        #expect(drain(tailer).map(\.message) == ["b1"])
    }

    @Test func finishesARenamedFileThenReadsTheNewOne() throws {
        let dir = try ScratchDirectory()
        try dir.append("old 1\n", to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, orphanGrace: .zero) {
            _ in nil
        }
        #expect(drain(tailer).map(\.message) == ["old 1"])
        try dir.append("old 2\n", to: "app.log")
        try FileManager.default.moveItem(atPath: dir.path + "/app.log", toPath: dir.path + "/app.log.1")
        try dir.append("new 1\n", to: "app.log")
        let lines = drain(tailer)
        #expect(Set(lines.map(\.message)) == ["old 2", "new 1"])
        #expect(Set(lines.map(\.position.name)).count == 2)
        #expect(tailer.trackedPaths == [dir.path + "/app.log"])
    }

    @Test func truncationStartsANewGeneration() throws {
        let dir = try ScratchDirectory()
        try dir.append("header\nline 1\nline 2\n", to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain) { _ in nil }
        let before = drain(tailer)
        try Data().write(to: URL(fileURLWithPath: dir.path + "/app.log"))
        try dir.append("header\nline 3\n", to: "app.log")
        let after = drain(tailer)
        #expect(after.map(\.message) == ["header", "line 3"])
        #expect(after[0].position.name != before[0].position.name)
        #expect(after[0].position.truncations == 1)
    }

    @Test func aFileWithoutACompleteFirstLineWaits() throws {
        let dir = try ScratchDirectory()
        try dir.append("no newline yet", to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain) { _ in nil }
        #expect(drain(tailer).isEmpty)
        try dir.append("\n", to: "app.log")
        #expect(drain(tailer).map(\.message) == ["no newline yet"])
    }

    @Test func overlongLinesAreCutNotHeld() throws {
        let dir = try ScratchDirectory()
        try dir.append(String(repeating: "x", count: 2500) + "\n", to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, maxLineBytes: 1000) { _ in nil }
        let lines = drain(tailer)
        #expect(lines.map(\.message.count) == [1000, 1000, 500])
        #expect(lines.map(\.offset) == [0, 1000, 2000])
    }
}

@Suite struct TAI64NTests {
    @Test func decodesLabelsWithLeapSeconds() {
        // 2023-11-14T22:13:20.123456789Z is TAI 37 s later.
        let utc: Int64 = 1_700_000_000_123_456_789
        let label = TAI64N.encode(utc)
        #expect(label == "@400000006553f125075bcd15")
        #expect(TAI64N.decode(Array((label + " hello").utf8)) == utc)
        #expect(TAI64N.decode(Array("@zzzz000065540025075bcd15 x".utf8)) == nil)
        #expect(TAI64N.decode(Array("plain line".utf8)) == nil)
    }

    /// The real s6-log writes the lines; the tailer must recover the message and a time that
    /// agrees with the clock.
    @Test func readsWhatRealS6LogWrites() throws {
        let s6log = ["/usr/bin/s6-log", "/bin/s6-log"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(s6log != nil, "s6-log is not installed: apt-get install s6 (README's set-up command does this)")
        let dir = try ScratchDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: s6log!)
        process.arguments = ["t", dir.path + "/logdir"]
        let input = Pipe()
        process.standardInput = input
        let before = Timestamp.now()
        try process.run()
        input.fileHandleForWriting.write(Data("hello from s6\nsecond line\n".utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let after = Timestamp.now()
        let tailer = FileTailer(sourceID: "svc", patterns: [dir.path + "/logdir/current"], format: .s6) { _ in nil }
        var lines: [TailedLine] = []
        tailer.scan()
        _ = tailer.read(budget: 1 << 20) { lines.append($0) }
        #expect(lines.map(\.message) == ["hello from s6", "second line"])
        for line in lines {
            #expect(line.time >= before - 1_000_000_000 && line.time <= after + 1_000_000_000, "\(Timestamp.format(line.time))")
        }
    }
}

import Foundation
import Logging
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

    @Test func aBusyFileDoesNotKeepTheOthersOfItsSourceWaiting() throws {
        let dir = try ScratchDirectory()
        for name in ["a.log", "b.log", "c.log"] {
            try dir.append((0..<2000).map { "\(name) \($0)\n" }.joined(), to: name)
        }
        let tailer = FileTailer(
            sourceID: "app", patterns: [dir.path + "/*.log"], format: .plain, readChunkBytes: 4096) { _ in nil }
        tailer.scan()
        var files: [Set<String>] = []
        for _ in 0..<3 {
            var names: Set<String> = []
            _ = tailer.read(budget: 4096) { names.insert(String($0.message.prefix(5))) }
            files.append(names)
        }
        // One chunk per call, each call from the next file: a.log alone has data for 8 calls.
        #expect(files == [["a.log"], ["b.log"], ["c.log"]])
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

    @Test func anOverlongLabelledLineIsCutAtTheSameOffsetsHoweverItIsRead() throws {
        let dir = try ScratchDirectory()
        let label = TAI64N.encode(1_700_000_000_000_000_000)
        try dir.append("\(label) " + String(repeating: "y", count: 2500) + "\n", to: "app.log")
        func pieces(readChunkBytes: Int) -> [TailedLine] {
            drain(FileTailer(
                sourceID: "app", patterns: [dir.path + "/app.log"], format: .s6, maxLineBytes: 1000,
                readChunkBytes: readChunkBytes) { _ in nil })
        }
        let whole = pieces(readChunkBytes: 4096)
        let bits = pieces(readChunkBytes: 300)
        #expect(whole.map(\.offset) == [0, 1000, 2000])
        #expect(whole.map(\.offset) == bits.map(\.offset))
        #expect(whole.map(\.endOffset) == bits.map(\.endOffset))
        #expect(whole.map(\.message) == bits.map(\.message))
        #expect(whole.map(\.message).joined() == String(repeating: "y", count: 2500))
    }
}

/// copytruncate, inode reuse, orphan limits: what the tailer does when files are rotated under it.
@Suite struct RotationTailerTests {
    func drain(_ tailer: FileTailer) -> [TailedLine] {
        var lines: [TailedLine] = []
        tailer.scan()
        while tailer.read(budget: 1 << 20, into: { lines.append($0) }) > 0 {}
        return lines
    }

    func numbered(_ prefix: String, _ range: Range<Int>) -> String {
        range.map { "\(prefix) line \($0) with some text to make it longer than a fingerprint\n" }.joined()
    }

    /// logrotate's copytruncate: copy to a new file, then truncate the original in place.
    func copyTruncate(_ dir: ScratchDirectory, _ name: String, to copy: String) throws {
        try FileManager.default.copyItem(atPath: dir.path + "/" + name, toPath: dir.path + "/" + copy)
        #expect(truncate(dir.path + "/" + name, 0) == 0)
    }

    func inode(_ path: String) -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
    }

    @Test func aCopytruncateCopyContinuesTheGenerationWhereReadingStopped() throws {
        let dir = try ScratchDirectory()
        try dir.append(numbered("old", 0..<10), to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log*"], format: .plain) { _ in nil }
        let first = drain(tailer)
        #expect(first.count == 10)
        // Written, then rotated before the tailer read them: only the copy still has them.
        try dir.append(numbered("old", 10..<15), to: "app.log")
        try copyTruncate(dir, "app.log", to: "app.log.1")
        try dir.append(numbered("new", 0..<3), to: "app.log")
        let after = drain(tailer)
        let old = after.filter { $0.message.hasPrefix("old") }
        #expect(old.map(\.message) == numbered("old", 10..<15).split(separator: "\n").map(String.init))
        #expect(Set(old.map(\.position.name)) == [first[0].position.name], "the copy continues the original's generation")
        #expect(old.first?.offset == first.last?.endOffset, "and its offsets")
        #expect(old.map(\.identity) == Array(repeating: first[0].identity, count: 5), "so the original's checkpoint advances")
        let new = after.filter { $0.message.hasPrefix("new") }
        #expect(new.count == 3)
        #expect(new[0].position.name != first[0].position.name)
        #expect(new[0].offset == 0)
        #expect(tailer.copiesRecognised == 1)
        // Nothing more, however often it looks.
        #expect(drain(tailer).isEmpty)
        #expect(drain(tailer).isEmpty)
    }

    @Test func aCopySeenBeforeTheTruncationWaitsForIt() throws {
        let dir = try ScratchDirectory()
        try dir.append(numbered("old", 0..<10), to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log*"], format: .plain) { _ in nil }
        let first = drain(tailer)
        try dir.append(numbered("old", 10..<12), to: "app.log")
        try FileManager.default.copyItem(atPath: dir.path + "/app.log", toPath: dir.path + "/app.log.1")
        // The copy is there, the original not yet truncated: both hold the same bytes.
        let between = drain(tailer)
        #expect(between.map(\.message) == numbered("old", 10..<12).split(separator: "\n").map(String.init))
        // Written after the copy, before the truncation: read from the original, in no file afterwards.
        try dir.append(numbered("old", 12..<13), to: "app.log")
        #expect(drain(tailer).count == 1)
        #expect(truncate(dir.path + "/app.log", 0) == 0)
        try dir.append(numbered("new", 0..<2), to: "app.log")
        let after = drain(tailer)
        #expect(after.map(\.message) == numbered("new", 0..<2).split(separator: "\n").map(String.init))
        #expect(Set((first + between).map(\.position.name)).count == 1)
        #expect(drain(tailer).isEmpty)
    }

    /// A scan lists the copy while it is being written and checks the original, which is
    /// truncated only then, before the copy is opened: the copy must still be taken for one.
    @Test func aCopyListedBeforeTheTruncationShowedIsStillACopy() throws {
        let dir = try ScratchDirectory()
        try dir.append(numbered("old", 0..<10), to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log*"], format: .plain) { _ in nil }
        let first = drain(tailer)
        try dir.append(numbered("old", 10..<15), to: "app.log")
        try copyTruncate(dir, "app.log", to: "app.log.1")
        // What the scan does with a path it listed before the truncation: attach it at once.
        tailer.attach(dir.path + "/app.log.1", now: .now)
        try dir.append(numbered("new", 0..<3), to: "app.log")
        let after = drain(tailer)
        let old = after.filter { $0.message.hasPrefix("old") }
        #expect(old.map(\.message) == numbered("old", 10..<15).split(separator: "\n").map(String.init))
        #expect(Set(old.map(\.position.name)) == [first[0].position.name], "the copy continues the original's generation")
        #expect(after.filter { $0.message.hasPrefix("new") }.count == 3)
        #expect(tailer.copiesRecognised == 1)
        #expect(drain(tailer).isEmpty)
    }

    @Test func aCopyTheTailerAlreadyReadPastGivesNothing() throws {
        let dir = try ScratchDirectory()
        try dir.append(numbered("old", 0..<10), to: "app.log")
        let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log*"], format: .plain) { _ in nil }
        #expect(drain(tailer).count == 10)
        try FileManager.default.copyItem(atPath: dir.path + "/app.log", toPath: dir.path + "/app.log.1")
        try dir.append(numbered("old", 10..<12), to: "app.log")
        // Read before the truncation, so past the copy's end.
        var read: [TailedLine] = []
        while tailer.read(budget: 1 << 20, into: { read.append($0) }) > 0 {}
        #expect(read.count == 2)
        #expect(truncate(dir.path + "/app.log", 0) == 0)
        #expect(drain(tailer).isEmpty)
        try dir.append(numbered("new", 0..<1), to: "app.log")
        #expect(drain(tailer).map(\.message) == ["new line 0 with some text to make it longer than a fingerprint"])
        #expect(tailer.copiesRecognised == 1)
    }

    @Test func aFileThatOnlyStartsLikeAnotherIsNotACopy() throws {
        let dir = try ScratchDirectory()
        let header = "# app log v1 -- every file starts with this line\n"
        try dir.append(header + numbered("a", 0..<10), to: "a.log")
        let tailer = FileTailer(
            sourceID: "app", patterns: [dir.path + "/*.log"], format: .plain, copyDecisionDelay: .milliseconds(100)
        ) { _ in nil }
        let first = drain(tailer)
        #expect(first.count == 11)
        // Same first line, different bytes after it (longer than the fingerprint, and shorter).
        try dir.append(header + numbered("b", 0..<10), to: "b.log")
        try dir.append(header + "c short\n", to: "c.log")
        let others = drain(tailer)
        #expect(others.filter { $0.message.hasPrefix("b") }.count == 10)
        #expect(others.filter { $0.message.hasPrefix("c") }.count == 1)
        #expect(others.filter { $0.message == String(header.dropLast()) }.count == 2)
        // Only the header so far, while a.log is open: it waits (nothing is lost by waiting) ...
        try dir.append(header, to: "d.log")
        #expect(drain(tailer).isEmpty)
        // ... and once it says something else it is a file of its own, header included.
        try dir.append("d 1\n", to: "d.log")
        #expect(drain(tailer).map(\.message) == [String(header.dropLast()), "d 1"])
        #expect(tailer.copiesRecognised == 0)
        // Same first line as a truncated (retired) generation, different content: not a copy either.
        #expect(truncate(dir.path + "/a.log", 0) == 0)
        #expect(drain(tailer).isEmpty)
        try dir.append(header + numbered("e", 0..<10), to: "e.log")
        #expect(drain(tailer).filter { $0.message.hasPrefix("e") }.count == 10)
        #expect(tailer.copiesRecognised == 0)
    }

    @Test func anInodeReusedWithTheSameFirstLineIsANewGeneration() throws {
        let dir = try ScratchDirectory()
        let header = "same first line\n"
        try dir.append(header + numbered("a", 0..<5), to: "app.log")
        var checkpoint: FilePosition?
        // No copy decision delay: when the inode is not reused (other tests take inodes too), a
        // new file starting like one read before is otherwise held back for the delay in case
        // it is that file's copy, and this single read would see nothing yet.
        let tailer = FileTailer(
            sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, orphanGrace: .zero, copyDecisionDelay: .zero
        ) { id in checkpoint?.identity == id ? checkpoint : nil }
        let first = drain(tailer)
        checkpoint = FilePosition(identity: first[0].identity, truncations: 0, offset: first.last!.endOffset)
        let oldInode = inode(dir.path + "/app.log")
        try FileManager.default.removeItem(atPath: dir.path + "/app.log")
        #expect(drain(tailer).isEmpty)
        #expect(drain(tailer).isEmpty)
        #expect(tailer.trackedPaths.isEmpty, "closed once deleted and read to its end")
        try dir.append(header + numbered("b", 0..<3), to: "app.log")
        let reused = inode(dir.path + "/app.log") == oldInode
        let second = drain(tailer)
        // Read whole, not from the old file's checkpoint, and under a name of its own.
        #expect(second.map(\.message) == [String(header.dropLast())] + numbered("b", 0..<3).split(separator: "\n").map(String.init))
        // `#require`, not `second[0]`: an empty read must fail the test, not crash the test run.
        let secondFirst = try #require(second.first, "nothing read from the new file (inode reused: \(reused))")
        #expect(secondFirst.offset == 0)
        #expect(secondFirst.position.name != first[0].position.name, "inode reused: \(reused)")
    }

    @Test func aRestartedTailerResumesACopyFromTheCheckpoint() throws {
        let dir = try ScratchDirectory()
        let statePath = dir.path + "/state/tailer.json"
        try dir.append(numbered("old", 0..<20), to: "app.log")
        var first: [TailedLine] = []
        do {
            let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log*"], format: .plain, statePath: statePath) { _ in nil }
            first = drain(tailer)
        }  // deinit saves the state
        #expect(FileManager.default.fileExists(atPath: statePath))
        // Acknowledged up to line 15 of 20; then, while the agent is down, more lines and copytruncate.
        let checkpoint = FilePosition(identity: first[0].identity, truncations: 0, offset: first[14].endOffset)
        try dir.append(numbered("old", 20..<25), to: "app.log")
        try copyTruncate(dir, "app.log", to: "app.log.1")
        try dir.append(numbered("new", 0..<2), to: "app.log")
        let restarted = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log*"], format: .plain, statePath: statePath) {
            $0 == checkpoint.identity ? checkpoint : nil
        }
        let lines = drain(restarted)
        let old = lines.filter { $0.message.hasPrefix("old") }
        #expect(old.map(\.message) == numbered("old", 15..<25).split(separator: "\n").map(String.init))
        #expect(Set(old.map(\.position.name)) == [first[0].position.name])
        // The resent lines carry the offsets they had, so the collector recognises them.
        #expect(Array(old.prefix(5).map(\.offset)) == first[15..<20].map(\.offset))
        #expect(lines.filter { $0.message.hasPrefix("new") }.count == 2)
        #expect(restarted.copiesRecognised == 1)
    }

    @Test func aFileRewrittenWhileTheAgentWasDownIsNotResumedMidway() throws {
        let dir = try ScratchDirectory()
        let statePath = dir.path + "/state/tailer.json"
        let header = "same first line\n"
        try dir.append(header + numbered("a", 0..<10), to: "app.log")
        var first: [TailedLine] = []
        do {
            let tailer = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, statePath: statePath) { _ in nil }
            first = drain(tailer)
        }
        let checkpoint = FilePosition(identity: first[0].identity, truncations: 0, offset: first.last!.endOffset)
        // Same inode, same first line, other bytes, and longer than before.
        #expect(truncate(dir.path + "/app.log", 0) == 0)
        try dir.append(header + numbered("b", 0..<20), to: "app.log")
        let restarted = FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, statePath: statePath) {
            $0 == checkpoint.identity ? checkpoint : nil
        }
        let lines = drain(restarted)
        #expect(lines.count == 21)
        #expect(lines[0].offset == 0)
        #expect(lines[0].position.truncations == 1)
    }

    @Test func anS6CurrentRotatedBetweenTwoScansIsStillRead() throws {
        let dir = try ScratchDirectory()
        let log = dir.path + "/svc"
        try FileManager.default.createDirectory(atPath: log, withIntermediateDirectories: true)
        func archive(_ time: Int64) -> String { log + "/" + TAI64N.encode(time) + ".s" }
        // Rotated an hour before the tailer started: not asked for.
        let old = archive(Timestamp.now() - 3_600_000_000_000)
        try "old archive\n".write(toFile: old, atomically: false, encoding: .utf8)
        try dir.append("a 1\n", to: "svc/current")
        let tailer = FileTailer(sourceID: "svc", patterns: [log + "/current"], format: .auto, orphanGrace: .zero) { _ in nil }
        #expect(drain(tailer).map(\.message) == ["a 1"])
        // s6-log rotates twice before the next scan: the middle `current` is only ever an archive.
        try dir.append("a 2\n", to: "svc/current")
        try FileManager.default.moveItem(atPath: log + "/current", toPath: archive(Timestamp.now()))
        try dir.append("b 1\nb 2\n", to: "svc/current")
        try FileManager.default.moveItem(atPath: log + "/current", toPath: archive(Timestamp.now() + 1000))
        try dir.append("c 1\n", to: "svc/current")
        #expect(Set(drain(tailer).map(\.message)) == ["a 2", "b 1", "b 2", "c 1"])
        #expect(drain(tailer).isEmpty)
        // Archives read to their end are closed (s6-log never writes to them again) and not reopened.
        #expect(tailer.trackedPaths == [log + "/current"])
        #expect(drain(tailer).isEmpty)

        // After a restart the archive the checkpoint says is unfinished is finished, old or not.
        try "old 2\n".write(toFile: old, atomically: false, encoding: .utf8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: old))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("old 3\n".utf8))
        try handle.close()
        let oldIdentity = try #require(FileIdentity.of(descriptor: open(old, O_RDONLY)))
        let restarted = FileTailer(sourceID: "svc", patterns: [log + "/current"], format: .auto) {
            $0 == oldIdentity ? FilePosition(identity: oldIdentity, truncations: 0, offset: 6) : nil
        }
        let lines = drain(restarted).map(\.message)
        #expect(lines.contains("old 3"))
        #expect(!lines.contains("old 2"))
        #expect(!lines.contains("a 1"), "archives rotated before this tailer began following are not read")
    }

    @Test func anOrphanStillWrittenToIsClosedAfterTheLimit() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/app.log"
        try dir.append("one\n", to: "app.log")
        let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? writer.close() }
        let tailer = FileTailer(
            sourceID: "app", patterns: [path], format: .plain, orphanGrace: .seconds(30), orphanMaxOpen: .milliseconds(300)
        ) { _ in nil }
        #expect(drain(tailer).map(\.message) == ["one"])
        try writer.seekToEnd()
        try writer.write(contentsOf: Data("two\n".utf8))
        #expect(tailer.lagBytes == [path: 4])
        try FileManager.default.removeItem(atPath: path)
        #expect(drain(tailer).map(\.message) == ["two"])
        #expect(tailer.orphanedOpen == 1)
        let deadline = ContinuousClock.now + .seconds(10)
        var later: [String] = []
        var index = 0
        // The writer never stops (it does not know its file is gone); the limit ends it.
        while tailer.orphanedOpen > 0, ContinuousClock.now < deadline {
            try writer.write(contentsOf: Data("more \(index)\n".utf8))
            index += 1
            later += drain(tailer).map(\.message)
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(tailer.orphanedOpen == 0)
        #expect(tailer.orphansClosedAtLimit == 1)
        #expect(tailer.trackedPaths.isEmpty)
        #expect(later == (0..<later.count).map { "more \($0)" }, "read in order up to the limit")
        #expect(!later.isEmpty)
    }
}

/// Joining lines into records.
@Suite struct MultilineTests {
    func tailer(_ dir: ScratchDirectory, _ settings: MultilineSettings, format: LineFormat = .plain) -> FileTailer {
        FileTailer(sourceID: "app", patterns: [dir.path + "/app.log"], format: format, multiline: settings) { _ in nil }
    }

    func drain(_ tailer: FileTailer) -> [TailedLine] {
        var lines: [TailedLine] = []
        tailer.scan()
        while tailer.read(budget: 1 << 20, into: { lines.append($0) }) > 0 {}
        return lines
    }

    let trace = """
        2024-05-01 12:00:00 ERROR request failed
        java.lang.IllegalStateException: boom
        \tat com.example.Foo.bar(Foo.java:10)
        \tat com.example.Main.main(Main.java:3)
        2024-05-01 12:00:01 INFO next request

        """

    @Test func joinsContinuationLinesUnderTheStartLine() throws {
        let dir = try ScratchDirectory()
        try dir.append("leading line without a date\n" + trace, to: "app.log")
        let tailer = tailer(dir, MultilineSettings(start: #"^\d{4}-\d{2}-\d{2} "#, timeoutMilliseconds: 60_000))
        let records = drain(tailer)
        // The last record waits: the next line could still belong to it.
        #expect(records.map(\.message) == [
            "leading line without a date",
            "2024-05-01 12:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.Foo.bar(Foo.java:10)\n\tat com.example.Main.main(Main.java:3)",
        ])
        let text = Array(("leading line without a date\n" + trace).utf8)
        let secondStart = Int64(text.firstIndex(of: UInt8(ascii: "\n"))! + 1)
        let lastStart = Int64(("leading line without a date\n" + trace).range(of: "2024-05-01 12:00:01")!.lowerBound.utf16Offset(in: "leading line without a date\n" + trace))
        #expect(records[1].offset == secondStart)
        #expect(records[1].endOffset == lastStart, "ends where the pending record starts, so the checkpoint cannot pass it")
        try dir.append("2024-05-01 12:00:02 INFO third\n", to: "app.log")
        #expect(drain(tailer).map(\.message) == ["2024-05-01 12:00:01 INFO next request"])
    }

    @Test func aQuietFileSendsItsPendingRecordAfterTheTimeout() throws {
        let dir = try ScratchDirectory()
        try dir.append(trace, to: "app.log")
        let tailer = tailer(dir, MultilineSettings(start: #"^[0-9]{4}-"#, timeoutMilliseconds: 500))
        #expect(drain(tailer).count == 1)
        try dir.append("\tcontinued while still pending\n", to: "app.log")
        #expect(drain(tailer).isEmpty)
        Thread.sleep(forTimeInterval: 0.6)
        let flushed = drain(tailer)
        #expect(flushed.map(\.message) == ["2024-05-01 12:00:01 INFO next request\n\tcontinued while still pending"])
        #expect(flushed[0].endOffset == Int64(Array((trace + "\tcontinued while still pending\n").utf8).count))
    }

    @Test func maxLinesAndMaxBytesCutARecord() throws {
        let dir = try ScratchDirectory()
        try dir.append("START 1\n" + (1...7).map { "  cont \($0)\n" }.joined() + "START 2\n", to: "app.log")
        let byLines = tailer(dir, MultilineSettings(start: "^START", timeoutMilliseconds: 60_000, maxLines: 3))
        #expect(drain(byLines).map(\.message) == ["START 1\n  cont 1\n  cont 2", "  cont 3\n  cont 4\n  cont 5", "  cont 6\n  cont 7"])
        let byBytes = tailer(dir, MultilineSettings(start: "^START", timeoutMilliseconds: 60_000, maxBytes: 20))
        let records = drain(byBytes)
        #expect(records.allSatisfy { $0.message.utf8.count <= 20 })
        #expect(records.map(\.message).joined(separator: "\n") == "START 1\n" + (1...7).map { "  cont \($0)" }.joined(separator: "\n"))
    }

    @Test func s6LabelsAreStrippedFromEveryJoinedLine() throws {
        let dir = try ScratchDirectory()
        let label = TAI64N.encode(1_700_000_000_000_000_000)
        try dir.append("\(label) Exception in thread main\n\(label) \tat A.b(A.java:1)\n\(label) Exception again\n", to: "app.log")
        let tailer = tailer(dir, MultilineSettings(start: "^Exception", timeoutMilliseconds: 60_000), format: .s6)
        let records = drain(tailer)
        #expect(records.map(\.message) == ["Exception in thread main\n\tat A.b(A.java:1)"])
        #expect(records[0].time == 1_700_000_000_000_000_000)
    }

    /// What the agent builds from a configured source: multiline on, state under the state dir.
    @Test func aTailerBuiltFromASourceConfigJoinsAndKeepsItsState() throws {
        let dir = try ScratchDirectory()
        try dir.append(trace, to: "app.log")
        let source = AgentConfig.FileSourceConfig(
            id: "java/app", paths: [dir.path + "/app.log"], format: .plain,
            multiline: MultilineSettings(start: "^[0-9]{4}-", timeoutMilliseconds: 60_000), maxOrphanOpenMilliseconds: 1500)
        do {
            let tailer = FileTailer(source: source, stateDirectory: dir.path + "/state", logger: Logger(label: "test")) { _ in nil }
            #expect(tailer.orphanMaxOpen == .milliseconds(1500))
            #expect(drain(tailer).count == 1)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/state/tailer")
        #expect(files.count == 1 && files[0].hasPrefix("java_app-") && files[0].hasSuffix(".json"), "\(files)")
    }

    @Test func patternsAreCheckedAtConfigLoad() throws {
        #expect(throws: LinePatternError.self) { try LinePattern("(unclosed") }
        #expect(throws: LinePatternError.self) { try LinePattern("(?:perl)") }
        #expect(throws: LinePatternError.self) { try LinePattern("a+?") }
        let digits = try LinePattern(#"^\d{4}-\d{2}-\d{2}[ T]\S+"#)
        #expect(digits.matches("2024-05-01 12:00:00 x"))
        #expect(digits.matches("2024-05-01T12:00:00"))
        #expect(!digits.matches("\tat com.example"))
        #expect(!digits.matches(""))
        #expect(try LinePattern(#"[\d.]+ms$"#).matches("took 12.5ms"))
        #expect(try LinePattern(#"^\s"#).matches("\tat x"))

        let dir = try ScratchDirectory()
        let yaml = """
            collector: {url: "http://127.0.0.1:1", token: t}
            sources:
              - id: java
                paths: [/tmp/x.log]
                multiline: {start: '^\\d{4}-', timeout_ms: 500, max_lines: 50}
                max_orphan_open_ms: 2000
            """
        try yaml.write(toFile: dir.path + "/agent.yaml", atomically: true, encoding: .utf8)
        let config = try AgentConfig.load(path: dir.path + "/agent.yaml")
        #expect(config.fileSources[0].multiline == MultilineSettings(start: #"^\d{4}-"#, timeoutMilliseconds: 500, maxLines: 50))
        #expect(config.fileSources[0].maxOrphanOpenMilliseconds == 2000)
        try (yaml.replacingOccurrences(of: #"'^\d{4}-'"#, with: #"'^(\d{4}'"#)).write(
            toFile: dir.path + "/bad.yaml", atomically: true, encoding: .utf8)
        do {
            _ = try AgentConfig.load(path: dir.path + "/bad.yaml")
            Issue.record("a bad pattern was accepted")
        } catch {
            #expect("\(error)".contains("source 'java': multiline.start"), "\(error)")
        }
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

    /// Any 24 hex digits are a well-formed label; those naming a time outside the supported
    /// range (here up to 2^64 - 1 seconds) used to trap. They decode to nil: the line stays as
    /// it is, with its read time.
    @Test(arguments: [
        "@400000030000000000000000 x", "@ffffffffffffffff00000000 x", "@7fffffffffffffff3b9ac9ff x",
        "@4000000000000000000000ff x", "@4000000000000009000000ff x", "@4000000000000000fffffff0 x",
        "@4000002262000000000000ff x",
    ])
    func labelsOutsideTheSupportedRangeDecodeToNil(line: String) {
        #expect(TAI64N.decode(Array(line.utf8)) == nil)
    }

    @Test func theLastSupportedSecondDecodesAndEncodingNeverTraps() {
        let last = Timestamp.supportedRange.upperBound
        #expect(TAI64N.decode(Array((TAI64N.encode(last) + " x").utf8)) == last)
        #expect(TAI64N.decode(Array((TAI64N.encode(0) + " x").utf8)) == 0)
        // Outside the range encoding clamps instead of trapping on a negative remainder or overflow.
        #expect(TAI64N.encode(Int64.max) == TAI64N.encode(last))
        #expect(TAI64N.encode(Int64.min) == TAI64N.encode(0))
        #expect(TAI64N.encode(-1) == TAI64N.encode(0))
    }

    /// A poisoned label in a tailed file (`format: auto`, the default) is a line like any other.
    @Test(arguments: [LineFormat.auto, .s6])
    func aPoisonedLabelLeavesTheLineAsItIsAndTheOthersAreRead(format: LineFormat) throws {
        let dir = try ScratchDirectory()
        let good = TAI64N.encode(1_700_000_000_000_000_000)
        try dir.append("\(good) one\n@400000030000000000000000 x\n\(good) three\n", to: "current")
        let before = Timestamp.now()
        let tailer = FileTailer(sourceID: "svc", patterns: [dir.path + "/current"], format: format) { _ in nil }
        var lines: [TailedLine] = []
        tailer.scan()
        while tailer.read(budget: 1 << 20, into: { lines.append($0) }) > 0 {}
        #expect(lines.map(\.message) == ["one", "@400000030000000000000000 x", "three"])
        #expect(lines[0].time == 1_700_000_000_000_000_000 && lines[2].time == 1_700_000_000_000_000_000)
        #expect(lines[1].time >= before)
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

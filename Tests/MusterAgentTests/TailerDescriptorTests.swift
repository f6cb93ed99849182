import Foundation
import Glibc
import MusterWire
import Testing

@testable import MusterAgent

/// More files than descriptors, files closed while idle and opened again, overlong lines
/// marked: what lets one agent follow thousands of files. Each test runs polling and with
/// inotify, since they find changes differently.
@Suite struct TailerDescriptorTests {
    static let watchModes: [TailingSettings.Watch] = [.poll, .auto]

    func settings(_ watch: TailingSettings.Watch, closeIdleAfter: Duration = .seconds(60)) -> TailingSettings {
        var settings = TailingSettings()
        settings.watch = watch
        settings.pollInterval = .zero
        settings.closeIdleAfter = closeIdleAfter
        return settings
    }

    func drain(_ tailer: FileTailer) -> [TailedLine] {
        var lines: [TailedLine] = []
        tailer.scan()
        while tailer.read(budget: 1 << 20, into: { lines.append($0) }) > 0 {}
        return lines
    }

    func lines(_ name: String, _ range: Range<Int>) -> String {
        range.map { "\(name) line \($0)\n" }.joined()
    }

    @Test(arguments: watchModes)
    func moreFilesThanTheBudgetAreEachReadOnce(watch: TailingSettings.Watch) throws {
        let dir = try ScratchDirectory()
        let names = (0..<20).map { "f\($0).log" }
        for name in names { try dir.append(lines(name, 0..<50), to: name) }
        let budget = DescriptorBudget(limit: 4)
        let tailer = FileTailer(
            sourceID: "app", patterns: [dir.path + "/*.log"], format: .plain, settings: settings(watch),
            descriptors: budget) { _ in nil }
        var seen: [String] = []
        // Each round opens files as others are read to their end; bounded by the outcome.
        for _ in 0..<200 where seen.count < names.count * 50 {
            seen += drain(tailer).map(\.message)
            #expect(budget.inUse <= 4)
            #expect(tailer.openFiles <= 4)
        }
        let expected = names.flatMap { name in (0..<50).map { "\(name) line \($0)" } }
        #expect(seen.sorted() == expected.sorted())
        #expect(Set(seen).count == seen.count)
        // Every file stays followed while closed: new lines in the first one are still read.
        try dir.append(lines(names[0], 50..<52), to: names[0])
        var more: [String] = []
        for _ in 0..<50 where more.count < 2 { more += drain(tailer).map(\.message) }
        #expect(more == ["\(names[0]) line 50", "\(names[0]) line 51"])
    }

    @Test(arguments: watchModes)
    func anIdleFileIsClosedAndOpenedAgainWhenWritten(watch: TailingSettings.Watch) throws {
        let dir = try ScratchDirectory()
        try dir.append(lines("a", 0..<3), to: "app.log")
        let budget = DescriptorBudget(limit: 10)
        let tailer = FileTailer(
            sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain,
            settings: settings(watch, closeIdleAfter: .zero), descriptors: budget) { _ in nil }
        let first = drain(tailer)
        #expect(first.map(\.message) == ["a line 0", "a line 1", "a line 2"])
        tailer.scan()
        #expect(tailer.openFiles == 0)
        #expect(budget.inUse == 0)
        #expect(tailer.trackedPaths == [dir.path + "/app.log"])
        try dir.append(lines("a", 3..<5), to: "app.log")
        let after = drain(tailer)
        #expect(after.map(\.message) == ["a line 3", "a line 4"])
        #expect(after.first?.offset == first.last?.endOffset)
        #expect(after.first?.position == first.first?.position)
        #expect(tailer.reopenedFiles == 1)
    }

    @Test(arguments: watchModes)
    func aFileTruncatedWhileClosedStartsANewGeneration(watch: TailingSettings.Watch) throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/app.log"
        try dir.append(lines("old", 0..<5), to: "app.log")
        let tailer = FileTailer(
            sourceID: "app", patterns: [path], format: .plain, settings: settings(watch, closeIdleAfter: .zero),
            descriptors: DescriptorBudget(limit: 10)) { _ in nil }
        let old = drain(tailer)
        tailer.scan()
        #expect(tailer.openFiles == 0)
        #expect(Glibc.truncate(path, 0) == 0)
        try dir.append(lines("new", 0..<2), to: "app.log")
        var new: [TailedLine] = []
        for _ in 0..<20 where new.count < 2 { new += drain(tailer) }
        #expect(new.map(\.message) == ["new line 0", "new line 1"])
        #expect(new.first?.offset == 0)
        #expect(new.first?.position != old.first?.position)
    }

    @Test(arguments: watchModes)
    func aNewFileInAClosedFilesInodeIsReadFromItsStart(watch: TailingSettings.Watch) throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/app.log"
        // Same first line, longer: only the bytes before the read offset tell them apart.
        try dir.append("header\n" + lines("old", 0..<3), to: "app.log")
        let tailer = FileTailer(
            sourceID: "app", patterns: [path], format: .plain, settings: settings(watch, closeIdleAfter: .zero),
            descriptors: DescriptorBudget(limit: 10)) { _ in nil }
        _ = drain(tailer)
        tailer.scan()
        #expect(tailer.openFiles == 0)
        try FileManager.default.removeItem(atPath: path)
        try dir.append("header\n" + lines("new", 0..<6), to: "app.log")
        var new: [String] = []
        for _ in 0..<20 where new.count < 7 { new += drain(tailer).map(\.message) }
        #expect(new == ["header"] + (0..<6).map { "new line \($0)" })
    }

    @Test func overlongPiecesAreMarkedWithTheirPlace() throws {
        let dir = try ScratchDirectory()
        try dir.append(String(repeating: "x", count: 2500) + "\nshort\n", to: "app.log")
        for chunk in [4096, 300] {
            let tailer = FileTailer(
                sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, maxLineBytes: 1000, readChunkBytes: chunk
            ) { _ in nil }
            let lines = drain(tailer)
            #expect(lines.map(\.message.count) == [1000, 1000, 500, 5])
            #expect(lines.map(\.piece) == [.part(index: 1, last: false), .part(index: 2, last: false), .part(index: 3, last: true), nil])
            #expect(lines[2].piece?.field.key == "line_part")
            #expect(lines[2].piece?.field.value == "3/3")
            #expect(tailer.overlongLinesSeen == 1)
        }
    }

    @Test func overlongLinesCanBeTruncatedInBoundedMemory() throws {
        let dir = try ScratchDirectory()
        try dir.append("before\n" + String(repeating: "y", count: 5000) + "\nafter\n", to: "app.log")
        for chunk in [8192, 300] {
            let tailer = FileTailer(
                sourceID: "app", patterns: [dir.path + "/app.log"], format: .plain, maxLineBytes: 1000, readChunkBytes: chunk,
                overlongLines: .truncate
            ) { _ in nil }
            var lines: [TailedLine] = []
            var largestPartial = 0
            tailer.scan()
            while tailer.read(budget: 1 << 20, into: { lines.append($0) }) > 0 {
                largestPartial = max(largestPartial, tailer.streams.values.map(\.partial.count).max() ?? 0)
            }
            #expect(lines.map(\.message) == ["before", String(repeating: "y", count: 1000), "after"])
            #expect(lines.map(\.offset) == [0, 7, 5008])
            #expect(lines[1].endOffset == 5008)
            #expect(lines.map(\.piece) == [nil, .truncated(lineBytes: 5000), nil])
            #expect(largestPartial <= 1000)
        }
    }

    @Test func theDefaultBudgetLeavesTheReserveFree() {
        #expect(DescriptorBudget.defaultLimit(processLimit: 256) == 96)
        #expect(DescriptorBudget.defaultLimit(processLimit: 1024) == 480)
        #expect(DescriptorBudget.defaultLimit(processLimit: 1_000_000) == 1024)
        #expect(DescriptorBudget.defaultLimit(processLimit: 20) == 8)
        #expect(DescriptorBudget.limit(configured: 500, processLimit: 256) == (192, true))
        #expect(DescriptorBudget.limit(configured: 100, processLimit: 256) == (100, false))
    }
}

import Foundation
import MusterWire
import NIOCore
import Testing

@testable import MusterAgent

@Suite struct SpoolTests {
    /// A batch whose body is recognisable bytes (the spool never looks inside a body).
    func batch(_ tag: Int, bytes: Int = 100) -> OutgoingBatch {
        var body = ByteBufferAllocator().buffer(capacity: bytes)
        body.writeBytes((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &+ tag) })
        return OutgoingBatch(body: body, records: tag, uncompressedBytes: bytes * 2, positions: [])
    }

    func tags(_ spool: Spool, count: Int) async throws -> [Int] {
        var found: [Int] = []
        for _ in 0..<count {
            let entry = try #require(await spool.next())
            let read = try spool.read(entry)
            #expect(read.body == batch(entry.records, bytes: read.body.readableBytes).body)
            found.append(read.records)
        }
        return found
    }

    func segments(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
    }

    @Test func batchesComeBackOldestFirstAndSegmentsGoOnceAcknowledged() async throws {
        let dir = try ScratchDirectory()
        let (spool, recovery) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 300))
        #expect(recovery.entries == 0)
        for tag in 1...6 { try spool.append(batch(tag)) }
        // 120-byte entries, 300-byte segments: two per segment.
        #expect(segments(dir.path).count == 3)
        var entries: [Spool.Entry] = []
        for _ in 1...6 { entries.append(try #require(await spool.next())) }
        #expect(entries.map(\.records) == [1, 2, 3, 4, 5, 6])
        spool.acknowledge(entries[1])
        #expect(segments(dir.path).count == 3, "half of the first segment is still unacknowledged")
        spool.acknowledge(entries[0])
        #expect(segments(dir.path).count == 2)
        for entry in entries[2...] { spool.acknowledge(entry) }
        #expect(segments(dir.path).count == 1, "the active segment stays until the next append")
        try spool.append(batch(7))
        #expect(segments(dir.path).count == 1, "an acknowledged active segment is replaced, not kept")
        spool.close()
    }

    @Test func aRestartSendsWhatWasNotAcknowledged() async throws {
        let dir = try ScratchDirectory()
        do {
            let (spool, _) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 300))
            for tag in 1...5 { try spool.append(batch(tag)) }
            spool.acknowledge(try #require(await spool.next()))
            spool.acknowledge(try #require(await spool.next()))
        }
        let (spool, recovery) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 300))
        #expect(recovery.entries == 3)
        #expect(recovery.records == 3 + 4 + 5)
        #expect(recovery.damaged.isEmpty && recovery.unfinishedAppend == nil)
        #expect(try await tags(spool, count: 3) == [3, 4, 5])
        try spool.append(batch(6))
        #expect(try await tags(spool, count: 1) == [6])
    }

    @Test func anUnfinishedAppendIsCutOffAndTheRestKept() async throws {
        let dir = try ScratchDirectory()
        do {
            let (spool, _) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20))
            for tag in 1...3 { try spool.append(batch(tag)) }
        }
        let path = dir.path + "/" + segments(dir.path).last!
        // The first 50 bytes of a fourth entry: a crash in the middle of its write.
        let torn = batch(4).body.readableBytesView.withUnsafeBytes {
            SpoolEntryFormat.encode(body: $0, records: 4, uncompressedBytes: 200)
        }.prefix(50)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(torn))
        try handle.close()

        let (spool, recovery) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20))
        #expect(recovery.damaged.isEmpty)
        #expect(recovery.unfinishedAppend?.bytes == 50)
        #expect(try await tags(spool, count: 3) == [1, 2, 3])
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) == 360, "the torn tail is cut off")
    }

    @Test func aCutOffEndThatWasCheckpointedIsDamageNotAnUnfinishedAppend() async throws {
        let dir = try ScratchDirectory()
        var mark: Spool.Mark?
        do {
            let (spool, _) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20))
            for tag in 1...3 { mark = try spool.append(batch(tag)) }
        }
        let path = dir.path + "/" + segments(dir.path).last!
        #expect(truncate(path, 300) == 0)  // someone cut the file inside entry 3
        let (spool, recovery) = try Spool.open(
            .init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20), checkpointed: mark)
        #expect(recovery.unfinishedAppend == nil)
        #expect(recovery.damaged.map(\.bytes) == [60])
        #expect(try await tags(spool, count: 2) == [1, 2])
    }

    @Test func damageInTheMiddleCostsOnlyTheDamagedBatch() async throws {
        let dir = try ScratchDirectory()
        do {
            let (spool, _) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20))
            for tag in 1...4 { try spool.append(batch(tag)) }
            try spool.append(batch(5, bytes: 10))  // in the same segment: the damaged one is not the newest
        }
        let path = dir.path + "/" + segments(dir.path)[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[120 + 40] ^= 0xFF  // a bit flip in entry 2's body
        bytes[240 + 2] = 0  // and entry 3's magic
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let (spool, recovery) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20))
        #expect(recovery.damaged.count == 1)
        #expect(recovery.damaged.first?.offset == 120)
        #expect(recovery.damaged.first?.bytes == 240)
        #expect(try await tags(spool, count: 3) == [1, 4, 5])
    }

    @Test func garbageAndEmptySegmentsNeverStopTheSpool() async throws {
        let dir = try ScratchDirectory()
        try Data(repeating: 0x41, count: 1000).write(to: URL(fileURLWithPath: dir.path + "/0000000000000001.seg"))
        _ = FileManager.default.createFile(atPath: dir.path + "/0000000000000002.seg", contents: nil)
        try Data([0x4D, 0x53, 0x50, 0x31, 0xFF, 0xFF, 0xFF, 0xFF]).write(to: URL(fileURLWithPath: dir.path + "/0000000000000003.seg"))
        let (spool, recovery) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 1 << 20))
        #expect(recovery.entries == 0)
        #expect(recovery.damaged.map(\.bytes) == [1000])
        #expect(recovery.unfinishedAppend?.bytes == 8)
        #expect(segments(dir.path).isEmpty, "segments with no whole entry are removed")
        try spool.append(batch(9))
        #expect(try await tags(spool, count: 1) == [9])
        #expect(segments(dir.path) == ["0000000000000004.seg"], "numbering continues past what was found")
    }

    @Test func aFullSpoolWaitsUntilASegmentIsAcknowledged() async throws {
        let dir = try ScratchDirectory()
        let (spool, _) = try Spool.open(.init(directory: dir.path, maxBytes: 240, segmentBytes: 120))
        try spool.append(batch(1))
        #expect(!spool.isFull)
        try spool.append(batch(2))
        #expect(spool.isFull)
        let first = try #require(await spool.next())
        let waiting = Task {
            await spool.waitForSpace()
            return spool.isFull
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(spool.isFull, "nothing was acknowledged, so the spool is still full and the waiter waits")
        spool.acknowledge(first)
        #expect(await waiting.value == false, "the waiter returned once a segment was freed")
        #expect(!spool.isFull)
        #expect(spool.bytes == 120)
    }

    @Test func aCleanStopDoesNotLetTheNextRunReuseACheckpointedSegmentNumber() async throws {
        let dir = try ScratchDirectory()
        let settings = Spool.Settings(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 300)
        let mark: Spool.Mark
        do {
            let (spool, _) = try Spool.open(settings)
            try spool.append(batch(1))
            mark = try spool.append(batch(2))
            spool.acknowledge(try #require(await spool.next()))
            spool.acknowledge(try #require(await spool.next()))
            spool.close()
        }
        #expect(segments(dir.path).isEmpty, "a clean stop with everything acknowledged leaves no segment")
        let (spool, recovery) = try Spool.open(settings, checkpointed: mark)
        let next = try spool.append(batch(3))
        #expect(next.segment > mark.segment)
        spool.close()
        // Killed now: the checkpoint says `mark`, the newest segment is past it. A cut-off end
        // of that segment is an unfinished append, not damage.
        let path = dir.path + "/" + segments(dir.path).last!
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("MSP1 torn".utf8))
        try handle.close()
        let (_, again) = try Spool.open(settings, checkpointed: mark)
        #expect(recovery.damaged.isEmpty)
        #expect(again.damaged.isEmpty)
        #expect(again.unfinishedAppend != nil)
        #expect(again.entries == 1)
    }

    @Test func anUnreadableSegmentIsSetAsideAndReportedNotFatal() throws {
        let dir = try ScratchDirectory()
        let settings = Spool.Settings(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 120)
        do {
            let (spool, _) = try Spool.open(settings)
            for tag in 1...3 { try spool.append(batch(tag)) }
        }
        // A directory where a segment should be: reading it fails whoever runs the test.
        let broken = dir.path + "/" + segments(dir.path)[1]
        try FileManager.default.removeItem(atPath: broken)
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: false)
        let (_, recovery) = try Spool.open(settings)
        #expect(recovery.entries == 2)
        #expect(recovery.damaged.map(\.path) == [broken + ".bad"])
        #expect(FileManager.default.fileExists(atPath: broken + ".bad"))
    }

    @Test func aSegmentRemovedUnderTheSpoolIsDamageNotARetryLoop() async throws {
        let dir = try ScratchDirectory()
        let (spool, _) = try Spool.open(.init(directory: dir.path, maxBytes: 1 << 20, segmentBytes: 120))
        try spool.append(batch(1))
        try spool.append(batch(2))
        let entry = try #require(await spool.next())
        try FileManager.default.removeItem(atPath: dir.path + "/" + segments(dir.path)[0])
        #expect {
            try spool.read(entry)
        } throws: { error in
            guard case SpoolError.damaged(_, _, let detail) = error else { return false }
            return detail.contains("gone")
        }
    }

    @Test func nextEndsAfterFinishOnceEverythingWasHandedOut() async throws {
        let dir = try ScratchDirectory()
        let (spool, _) = try Spool.open(.init(directory: dir.path))
        try spool.append(batch(1))
        spool.finish()
        #expect(await spool.next()?.records == 1)
        #expect(await spool.next() == nil)
    }
}

import Testing

@testable import MusterAgent

#if canImport(Glibc)
import Glibc
#endif

/// The idle memory release: when it comes (`IdleReleaseSchedule`), and what it hands back
/// (`ResidentMemory`), in this test process.
@Suite struct IdleMemoryTests {
    let origin = ContinuousClock.now

    /// The seconds, of `ticks` (seconds since start, the activity count then), at which
    /// `schedule` releases.
    func releases(_ schedule: IdleReleaseSchedule, _ ticks: [(Double, UInt64)]) -> [Double] {
        var schedule = schedule
        return ticks.filter { schedule.shouldRelease(activity: $0.1, at: origin + .milliseconds(Int($0.0 * 1000))) }.map(\.0)
    }

    func schedule(afterWork: Duration) -> IdleReleaseSchedule {
        IdleReleaseSchedule(afterWork: afterWork, activity: 0, at: origin)
    }

    @Test func theFirstReleaseComesAfterASecondOfQuietAndLaterOnesAfterTheConfiguredQuiet() {
        let ticks: [(Double, UInt64)] = [
            (0.5, 0), (1.0, 0), (2, 0), (100, 0),  // quiet from the start: once, after a second
            (101, 5), (102, 5), (130.9, 5), (131, 5), (200, 5),  // work, then thirty seconds of quiet
        ]
        #expect(releases(schedule(afterWork: .seconds(30)), ticks) == [1.0, 131])
    }

    @Test func workBeforeTheFirstQuietSecondPutsTheFirstReleaseAfterIt() {
        let ticks = (1...10).map { (Double($0), UInt64($0)) } + [(10.5, 10), (11, 10), (12, 10)]
        #expect(releases(schedule(afterWork: .seconds(30)), ticks) == [11])
    }

    #if canImport(Glibc)
    nonisolated(unsafe) static var written = [UInt8](repeating: 1, count: 1)
    nonisolated(unsafe) static var writtenWord = 0

    @Test func theSegmentsAreThisProcesssCodeAndItsWritableData() throws {
        let readOnly = ResidentMemory.loadedSegments(writable: false)
        let writable = ResidentMemory.loadedSegments(writable: true)
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        for segment in readOnly + writable {
            #expect(segment.lowerBound % pageSize == 0 && segment.upperBound % pageSize == 0 && !segment.isEmpty)
        }
        let code: @convention(c) () -> pid_t = getpid
        let codeAddress = unsafeBitCast(code, to: UInt.self)
        #expect(readOnly.contains { $0.contains(codeAddress) }, "getpid at \(codeAddress) in no read-only segment")
        #expect(!writable.contains { $0.contains(codeAddress) })
        Self.writtenWord += 1
        let dataAddress = withUnsafeMutablePointer(to: &Self.writtenWord) { UInt(bitPattern: $0) }
        #expect(writable.contains { $0.contains(dataAddress) }, "a global at \(dataAddress) in no writable segment")
        #expect(!readOnly.contains { $0.contains(dataAddress) })
    }

    @Test func aWrittenPageIsNeverAmongThePagesReleasedFromAWritableSegment() throws {
        Self.writtenWord += 1
        let dataAddress = withUnsafeMutablePointer(to: &Self.writtenWord) { UInt(bitPattern: $0) }
        let segment = try #require(ResidentMemory.loadedSegments(writable: true).first { $0.contains(dataAddress) })
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        try #require(pagemap >= 0, "cannot open /proc/self/pagemap: \(String(cString: strerror(errno)))")
        defer { close(pagemap) }
        let runs = ResidentMemory.unwrittenFilePages(in: segment, pagemap: pagemap)
        #expect(!runs.contains { $0.contains(dataAddress) }, "the page of a global just written counted as the file's")
        for run in runs { #expect(segment.contains(run.lowerBound) && run.upperBound <= segment.upperBound) }
        // Writable segments also hold pages no one wrote (constant sections Swift's compiler
        // marks writable, data not written yet): some of them are found.
        let all = ResidentMemory.loadedSegments(writable: true).flatMap {
            ResidentMemory.unwrittenFilePages(in: $0, pagemap: pagemap)
        }
        #expect(!all.isEmpty, "no unwritten file page in any writable segment")
    }

    /// What a release gives back is measured on the agent (AgentIdleMemoryTests); here, that
    /// the kernel takes the advice and the process runs on.
    @Test func aReleaseIsTakenByTheKernelAndTheProcessRunsOn() throws {
        let release = ResidentMemory.release()
        #expect(
            release.refusedRanges == 0,
            "the kernel refused the advice for \(release.refusedRanges) ranges (MADV_PAGEOUT needs Linux 5.4; a sandbox may refuse madvise)")
        #expect(release.requestedBytes > 1 << 20, "advice for \(release.requestedBytes) bytes")
        // Code and data paged out come back at their next use.
        #expect(getpid() > 0)
        #expect(Self.written[0] == 1)
        #expect(ResidentMemory.residentBytes() ?? 0 > 0)
    }
    #endif
}

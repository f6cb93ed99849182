import CGlibcMemory
#if canImport(Glibc)
import Glibc
#endif

/// Memory the process holds and can hand back to the kernel without losing anything: what
/// lets an idle agent weigh what its idle loop touches, not what its start-up and its last
/// burst of work touched.
///
/// Two kinds, released together by `release()`:
/// - **Free heap.** glibc's malloc keeps the pages of freed blocks (a burst's batches, the
///   configuration's YAML tree) in its arenas; `malloc_trim(0)` gives every whole free page
///   back.
/// - **The pages of the program and its libraries.** The kernel maps a file in windows of
///   64 KiB or more around each page first touched, and keeps them: an agent that ran its
///   start-up, its configuration parser and a burst of shipping holds all of that code and
///   constant data. `MADV_PAGEOUT` frees the pages only this process maps, where it may (the
///   kernel pages out a file's pages only for a process that owns the file or may write it);
///   then, in the segments mapped without write permission, `MADV_DONTNEED` unmaps from this
///   process the pages still as the file has them: pages another process maps stay in
///   memory for it, and any page stays in the page cache until the kernel needs the room. A
///   page needed again is mapped again at its next use, from the page cache or the file, as
///   at start.
///
/// Nothing the process wrote is lost. Which pages are still the file's comes from
/// `/proc/self/pagemap`; in writable segments only those go, and only with `MADV_PAGEOUT`,
/// which never discards data (a page written meanwhile goes to swap where there is swap, and
/// comes back at its next use). `MADV_DONTNEED`, which would put the file's bytes back in a
/// page written meanwhile, is given the unwritten pages of segments nothing in the program
/// writes; only a debugger setting a breakpoint in the same milliseconds could lose it.
public enum ResidentMemory {
    /// The system's page size; 4096 should `sysconf` not answer with a power of two.
    static let pageSize: UInt = {
        #if canImport(Glibc)
        let size = sysconf(Int32(_SC_PAGESIZE))
        if size > 0, size & (size - 1) == 0 { return UInt(size) }
        #endif
        return 4096
    }()

    /// Bytes resident now (`/proc/self/statm`); nil where the file cannot be read.
    public static func residentBytes() -> Int? {
        #if canImport(Glibc)
        let descriptor = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        // "size resident shared text lib data dt", in pages.
        let fields = buffer[..<count].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: Int(pageSize))
        return overflow ? nil : bytes
        #else
        return nil
        #endif
    }

    /// What one `release()` asked of the kernel. What it gave back shows in `residentBytes()`:
    /// the kernel takes advice it cannot follow (a page another process maps, a file this
    /// process may not write) without an error.
    public struct Release: Sendable, Equatable {
        /// Bytes the advice covered: the read-only segments whole (mapped, not necessarily
        /// resident), and the resident pages of writable segments that were never written.
        public var requestedBytes = 0
        /// Ranges the kernel refused all advice for (`MADV_PAGEOUT` needs Linux 5.4; a sandbox
        /// may refuse `madvise`).
        public var refusedRanges = 0
    }

    /// Returns free heap pages and the pages of the loaded objects' files (see the type's
    /// comment). Safe from any thread at any time.
    @discardableResult
    public static func release() -> Release {
        var result = Release()
        #if canImport(Glibc)
        malloc_trim(0)
        func advise(_ range: Range<UInt>, _ advice: Int32) -> Bool {
            madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), range.count, advice) == 0
        }
        // Pages still as the file has them, from /proc/self/pagemap. Without it, only what
        // MADV_PAGEOUT takes: it never discards a page the process wrote.
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        defer { if pagemap >= 0 { close(pagemap) } }
        for segment in loadedSegments(writable: false) {
            if advise(segment, MADV_PAGEOUT) { result.requestedBytes += segment.count } else { result.refusedRanges += 1 }
            // Even a segment no code may write can hold pages written into it: a debugger's
            // breakpoints, a uprobe, text relocations. MADV_DONTNEED would put the file's
            // bytes back there, so it is given the unwritten pages only.
            guard pagemap >= 0 else { continue }
            for run in unwrittenFilePages(in: segment, pagemap: pagemap) where !advise(run, MADV_DONTNEED) {
                result.refusedRanges += 1
            }
        }
        // A writable segment holds what the program wrote (data, relocated pointers) and, as
        // Swift's compiler marks its constant sections writable, much of the read-only data
        // too: only the pages there still as the file has them go.
        if pagemap >= 0 {
            for segment in loadedSegments(writable: true) {
                for run in unwrittenFilePages(in: segment, pagemap: pagemap) {
                    if advise(run, MADV_PAGEOUT) { result.requestedBytes += run.count } else { result.refusedRanges += 1 }
                }
            }
        }
        #endif
        return result
    }

    /// The page-aligned address ranges of the loaded objects' segments mapped with write
    /// permission (`writable`) or without it (code, read-only data).
    static func loadedSegments(writable: Bool) -> [Range<UInt>] {
        var capacity = 64
        while true {
            var starts = [UInt](repeating: 0, count: capacity)
            var ends = [UInt](repeating: 0, count: capacity)
            let count = cglibc_loaded_segments(writable ? 1 : 0, pageSize, &starts, &ends, capacity)
            guard count > capacity else {
                return (0..<count).map { starts[$0]..<ends[$0] }
            }
            capacity = count  // and again, should objects have been loaded meanwhile
        }
    }

    #if canImport(Glibc)
    /// The runs of pages in `range` that are resident and still the file's (never written by
    /// this process, so not copied into anonymous memory), from `/proc/self/pagemap`: bit 63
    /// present, bit 61 a file page (Documentation/admin-guide/mm/pagemap.rst).
    static func unwrittenFilePages(in range: Range<UInt>, pagemap: Int32) -> [Range<UInt>] {
        let wanted: UInt64 = 1 << 63 | 1 << 61
        var runs: [Range<UInt>] = []
        var runStart: UInt?
        var entries = [UInt64](repeating: 0, count: 4096)
        var page = range.lowerBound / pageSize
        let endPage = range.upperBound / pageSize
        func endRun(at address: UInt) {
            if let start = runStart, address > start { runs.append(start..<address) }
            runStart = nil
        }
        while page < endPage {
            let count = Int(min(UInt(entries.count), endPage - page))
            let (offset, overflow) = page.multipliedReportingOverflow(by: 8)
            guard !overflow, offset <= UInt(Int.max) else { break }
            let bytes = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, count * 8, off_t(offset)) }
            guard bytes > 0 else { break }
            let read = bytes / 8
            for index in 0..<read {
                let address = (page + UInt(index)) * pageSize
                if entries[index] & wanted == wanted {
                    if runStart == nil { runStart = address }
                } else {
                    endRun(at: address)
                }
            }
            page += UInt(read)
            if read < count { break }
        }
        endRun(at: page * pageSize)
        return runs
    }
    #endif
}

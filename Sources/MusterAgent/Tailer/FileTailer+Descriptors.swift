#if canImport(Glibc)
import Glibc
#endif
import MusterWire

/// Closing files read to their end, and opening them again when they change: how the tailer
/// follows more files than it may hold open (see `DescriptorBudget`).
///
/// A file is closed only when its last read found nothing new (`atEnd`): what was written
/// before is read, its partial line and multiline record stay in its stream, and nothing is
/// lost by closing. It stays in `files` under its device and inode, with its generation, so the
/// stream keeps its place; what changes is that nothing reads it. Files are closed when they
/// have been quiet for `closeIdleAfter`, and sooner, least recently active first, when a new
/// or changed file needs a descriptor and the budget has none left.
///
/// A closed file is opened again when a scan (or an inotify event) shows it changed: its size
/// or modification time differ from when it was closed. Opened again by its path, it must be
/// the same file: same device and inode, and the same bytes just before where reading stopped
/// (`tailCRC`), since a deleted file's inode can be given to a new one while nothing holds it
/// open. Then reading resumes at the stream's offset, and a truncation in between is found as
/// for any open file. A file closed this way that is renamed out of the patterns and written to
/// afterwards is not followed to its new name: an open one would be read to its end first.
extension FileTailer {
    /// Bytes before the read offset whose CRC tells a reopened file from a new one in its inode.
    static let tailSampleBytes = 4096

    /// Opens `path` and takes a descriptor for it from the budget, closing another file read to
    /// its end when none is left. Nil when the budget has no room or the file cannot be opened.
    func openCounted(_ path: String) -> Int32? {
        guard takeDescriptor() else { return nil }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            descriptors?.release()
            return nil
        }
        openFiles += 1
        return descriptor
    }

    /// Closes a descriptor opened with `openCounted`.
    func closeCounted(_ descriptor: Int32) {
        guard descriptor >= 0 else { return }
        close(descriptor)
        openFiles -= 1
        descriptors?.release()
    }

    private func takeDescriptor() -> Bool {
        guard let descriptors else { return true }
        if descriptors.acquire() { return true }
        // Room is made by this tailer's own quietest file; other tailers close theirs when they
        // see the budget contended (`closeIdleFiles`).
        guard closeQuietest(count: 1) > 0 else {
            noteBudgetFull()
            return false
        }
        if descriptors.acquire() { return true }
        noteBudgetFull()
        return false
    }

    private func noteBudgetFull() {
        filesWaitingForDescriptor = true
        let now = ContinuousClock.now
        guard lastBudgetWarning.map({ now - $0 >= .seconds(60) }) ?? true else { return }
        lastBudgetWarning = now
        logger?.notice(
            "all file descriptors for tailing are in use; new and changed files wait until open files are read to their end",
            metadata: ["source": "\(sourceID)", "max_open": "\(descriptors?.limit ?? 0)"])
    }

    /// Closes open files read to their end: those quiet for `closeIdleAfter`, and while the
    /// budget is contended, those quiet for a second. Called once per scan.
    func closeIdleFiles(now: ContinuousClock.Instant) {
        guard openFiles > 0 else { return }
        let contended = filesWaitingForDescriptor || (descriptors?.isContended ?? false)
        for file in files.values where canClose(file) {
            let quiet = now - file.lastDataAt
            if quiet >= closeIdleAfter || (contended && quiet >= .seconds(1)) { closeForNow(file.key) }
        }
    }

    /// Closes up to `count` files read to their end, least recently active first; how many.
    @discardableResult
    func closeQuietest(count: Int) -> Int {
        let quietest = files.values.filter(canClose).sorted { $0.lastDataAt < $1.lastDataAt }.prefix(count)
        for file in quietest { closeForNow(file.key) }
        return quietest.count
    }

    /// Open, read to its end, and simply following its generation: closing loses nothing.
    private func canClose(_ file: OpenFile) -> Bool {
        file.isOpen && file.atEnd && file.orphanedAt == nil && file.closeAt == nil && file.generation != nil
            && file.identity != nil
    }

    /// Closes a file read to its end, remembering how to tell whether it changed and whether
    /// it is still the same file when opened again.
    func closeForNow(_ key: InodeKey) {
        guard var file = files[key], file.isOpen, let generation = file.generation, let stream = streams[generation] else {
            return
        }
        var info = stat()
        guard fstat(file.descriptor, &info) == 0 else { return }
        file.closedWith = (Int64(info.st_size), info.st_mtim)
        file.tailCRC = Self.tailCRC(file.descriptor, before: stream.readOffset)
        closeCounted(file.descriptor)
        file.descriptor = -1
        files[key] = file
        closedForNow += 1
    }

    /// Whether a closed file looks different from when it was closed.
    func changedSinceClosed(_ file: OpenFile, _ info: stat) -> Bool {
        guard let closedWith = file.closedWith else { return true }
        return Int64(info.st_size) != closedWith.size || info.st_mtim.tv_sec != closedWith.modified.tv_sec
            || info.st_mtim.tv_nsec != closedWith.modified.tv_nsec
    }

    /// Opens a closed file again at `path`. False when there is no descriptor for it yet (it is
    /// tried again at the next scan) or when the path no longer holds that file (it is let go).
    @discardableResult
    func reopen(_ key: InodeKey, at path: String) -> Bool {
        guard var file = files[key], !file.isOpen, let generation = file.generation else { return false }
        guard let descriptor = openCounted(path) else { return false }
        var info = stat()
        let sameInode = fstat(descriptor, &info) == 0 && UInt64(info.st_dev) == key.device && UInt64(info.st_ino) == key.inode
        let readOffset = streams[generation]?.readOffset ?? 0
        // Shorter than where reading stopped: truncated, which the original's checks below
        // handle like any truncation; otherwise the bytes before that point must be the same.
        let sameBytes = sameInode && (Int64(info.st_size) < readOffset || Self.tailCRC(descriptor, before: readOffset) == file.tailCRC)
        guard sameBytes else {
            closeCounted(descriptor)
            letGo(key)
            return false
        }
        file.descriptor = descriptor
        file.path = path
        file.closedWith = nil
        file.atEnd = false
        files[key] = file
        reopenedFiles += 1
        markReadable(generation)
        if file.isOriginal { checkOriginal(key) }
        return true
    }

    /// Forgets a closed file that is gone (deleted, renamed away, or its inode now another
    /// file's); its generation is kept for a copy that may still show up.
    func letGo(_ key: InodeKey) {
        guard let file = files.removeValue(forKey: key) else { return }
        orphans.remove(key)
        unidentified.remove(key)
        closeCounted(file.descriptor)
        if let generation = file.generation, streams[generation] != nil {
            streams[generation]!.carriers.removeAll { $0 == key }
            streams[generation]!.lastActive = .now
        }
        stateDirty = true
    }

    /// CRC of up to `tailSampleBytes` just before `offset`; nil when they cannot be read.
    static func tailCRC(_ descriptor: Int32, before offset: Int64) -> UInt32? {
        let length = Int(min(offset, Int64(tailSampleBytes)))
        guard length > 0 else { return 0 }
        var sample = [UInt8](repeating: 0, count: length)
        let count = sample.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, length, off_t(offset - Int64(length))) }
        guard count == length else { return nil }
        return Checksum.crc32(sample)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Which files changed and when to look for new ones, from inotify: what lets a tailer leave
/// quiet files alone instead of reading every one of them ten times a second.
///
/// It watches directories, not files: one watch per directory whatever the number of files
/// in it, events name the file, and new files show up as events in the same watch. A watched
/// directory's event for a file writes its path to `Changes.modified`; a file created, moved
/// or deleted there, a directory going away, or lost events (the kernel's queue overflowed)
/// ask for a full scan. Events are read without blocking when the tailer reads.
///
/// inotify is Linux's; it does not see writes made on another machine to a network
/// filesystem. When it cannot be set up (`init` returns nil: no instance left, or another
/// system) or a directory cannot be watched (no watch left), the tailer polls as it did before.
final class FileWatcher {
    struct Changes {
        /// Paths of files written to, truncated or whose attributes changed.
        var modified: Set<String> = []
        /// Files appeared, went or moved, or events were lost: the tailer scans its patterns.
        var rescan = false
    }

    private let descriptor: Int32
    private var directories: [Int32: String] = [:]
    private var watches: [String: Int32] = [:]
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private let logger: Logger?
    private let sourceID: String
    /// Directories that could not be watched, so that the failure is logged once.
    private var unwatchable = Set<String>()

    private static let fileEvents = UInt32(IN_MODIFY | IN_ATTRIB)
    private static let rescanEvents = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)

    init?(sourceID: String, logger: Logger?) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            logger?.notice(
                "cannot use inotify (\(reason)); polling the source's files instead",
                metadata: ["source": "\(sourceID)"])
            return nil
        }
        self.descriptor = descriptor
        self.logger = logger
        self.sourceID = sourceID
    }

    deinit { close(descriptor) }

    /// Whether every directory asked for is watched: false means some changes are only seen
    /// by polling.
    private(set) var watchesAll = true

    /// Watches exactly `wanted` (adding and removing watches).
    func watch(_ wanted: Set<String>) {
        for (path, watch) in watches where !wanted.contains(path) {
            inotify_rm_watch(descriptor, watch)
            watches[path] = nil
            directories[watch] = nil
        }
        var all = true
        for path in wanted where watches[path] == nil {
            let mask = Self.fileEvents | Self.rescanEvents | UInt32(IN_ONLYDIR | IN_EXCL_UNLINK)
            let watch = inotify_add_watch(descriptor, path, mask)
            guard watch >= 0 else {
                let code = errno
                all = false
                // A directory that went away meanwhile is not news; no watch left is.
                if code != ENOENT, code != ENOTDIR, unwatchable.insert(path).inserted {
                    logger?.warning(
                        "cannot watch a directory with inotify (\(String(cString: strerror(code)))); its files are polled",
                        metadata: ["source": "\(sourceID)", "directory": "\(path)"])
                }
                continue
            }
            watches[path] = watch
            directories[watch] = path
        }
        watchesAll = all
    }

    /// The events that arrived since the last call.
    func drain() -> Changes {
        var changes = Changes()
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            buffer.withUnsafeBytes { parse(UnsafeRawBufferPointer(rebasing: $0[0..<count]), into: &changes) }
        }
        return changes
    }

    /// `struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }`, one after
    /// another; `name` is NUL-padded.
    private func parse(_ bytes: UnsafeRawBufferPointer, into changes: inout Changes) {
        let header = 16
        var offset = 0
        while offset + header <= bytes.count {
            let watch = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            guard length <= bytes.count - offset - header else { break }
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(offset + header)..<(offset + header + length)])
            offset += header + length
            if mask & UInt32(IN_Q_OVERFLOW) != 0 || mask & UInt32(IN_IGNORED) != 0 {
                if mask & UInt32(IN_IGNORED) != 0, let path = directories.removeValue(forKey: watch) { watches[path] = nil }
                changes.rescan = true
                continue
            }
            if mask & Self.rescanEvents != 0 { changes.rescan = true }
            guard mask & Self.fileEvents != 0, mask & UInt32(IN_ISDIR) == 0, let directory = directories[watch] else { continue }
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            guard !name.isEmpty else { continue }
            changes.modified.insert(directory == "/" ? "/" + name : directory + "/" + name)
        }
    }

    /// The directories to watch for `patterns` (globs): each pattern's directory, expanded when
    /// it has wildcards, plus the directory its wildcards start in (to see new subdirectories),
    /// or for a directory that does not exist yet, its nearest existing ancestor.
    static func directories(for patterns: [String], expand: ([String]) -> [String]) -> Set<String> {
        var wanted = Set<String>()
        for pattern in patterns {
            let directory = parent(of: pattern)
            if hasWildcard(directory) {
                var literal: [Substring] = []
                for component in directory.split(separator: "/", omittingEmptySubsequences: true) {
                    if hasWildcard(String(component)) { break }
                    literal.append(component)
                }
                let root = directory.hasPrefix("/") ? "/" : ""
                let prefix = literal.isEmpty ? (root.isEmpty ? "." : root) : root + literal.joined(separator: "/")
                wanted.insert(existingAncestor(prefix))
                for expanded in expand([directory]) where isDirectory(expanded) { wanted.insert(expanded) }
            } else {
                wanted.insert(existingAncestor(directory))
            }
        }
        return wanted
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func hasWildcard(_ text: String) -> Bool {
        text.contains { $0 == "*" || $0 == "?" || $0 == "[" }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    private static func existingAncestor(_ path: String) -> String {
        var current = path
        while !isDirectory(current), current != "/", current != "." { current = parent(of: current) }
        return current
    }
}

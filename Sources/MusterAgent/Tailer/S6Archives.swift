import Foundation

/// s6-log's archives for the patterns that name its `current` file.
///
/// s6-log renames `current` to `@<tai64n>.s` (`.u` when it was not finished cleanly) and starts
/// a new one. The tailer follows a renamed file by its inode, but only a file it has seen: a
/// `current` that filled up and was rotated between two scans (a busy service, or reading
/// paused because the collector is slow) is only ever an archive. So for each `…/current`
/// pattern the archives next to it are looked at too, and read when they were rotated after the
/// tailer began following that directory (the archive's name is its rotation time). Older ones
/// are what the user did not ask for, except one the checkpoint says was being read and is not
/// finished: that is the `current` the agent was reading when it stopped.
struct S6Archives {
    /// `<dir>/@*.[su]` for each pattern whose last component is `current`.
    let patterns: [String]
    /// UTC nanoseconds from which archives of a directory are new, by directory.
    var following: [String: Int64] = [:]

    init(for patterns: [String]) {
        self.patterns = patterns.compactMap { pattern in
            guard (pattern as NSString).lastPathComponent == "current" else { return nil }
            let directory = (pattern as NSString).deletingLastPathComponent
            return directory.isEmpty ? "@*.[su]" : directory + "/@*.[su]"
        }
    }

    static func isCurrent(_ path: String) -> Bool {
        (path as NSString).lastPathComponent == "current"
    }

    /// `@<tai64n>.s` or `.u`: a file s6-log will not write to again.
    static func isArchive(_ path: String) -> Bool {
        rotationTime(path) != nil && (path.hasSuffix(".s") || path.hasSuffix(".u"))
    }

    /// The rotation time in an archive's name, e.g. `@400000006553f125075bcd15.s`.
    static func rotationTime(_ path: String) -> Int64? {
        let name = Array((path as NSString).lastPathComponent.utf8)
        guard name.count == TAI64N.labelLength + 2 else { return nil }
        return TAI64N.decode(Array(name[0..<TAI64N.labelLength]) + Array(" .".utf8))
    }

    /// Whether the archive at `path` was rotated since its directory has been followed; the
    /// first time a directory is seen, following starts now.
    mutating func isNew(_ path: String, now: Int64) -> Bool {
        let directory = (path as NSString).deletingLastPathComponent
        let since = following[directory] ?? now
        following[directory] = since
        guard let rotated = Self.rotationTime(path) else { return false }
        return rotated >= since
    }

    /// Starts following the directories of the `current` files seen (so that their next
    /// rotation counts as new even when no archive was there yet).
    mutating func follow(_ currentPath: String, now: Int64) {
        let directory = (currentPath as NSString).deletingLastPathComponent
        if following[directory] == nil { following[directory] = now }
    }
}

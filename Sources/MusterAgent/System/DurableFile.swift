import Foundation

/// Replaces a file's contents so that a crash at any moment leaves either the old file or the
/// new one, never a torn mix: write a temporary file, fsync it, rename it over the old one,
/// fsync the directory (without which the rename itself may not survive a power loss).
public enum DurableFile {
    /// Returns a description of what failed, or nil on success.
    public static func replace(_ path: String, with data: Data, mode: mode_t = 0o644) -> String? {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { return "\(temporary): \(String(cString: strerror(errno)))" }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == data.count, synced == 0 else { return "\(temporary): \(String(cString: strerror(errno)))" }
        guard rename(temporary, path) == 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        let parent = (path as NSString).deletingLastPathComponent
        let directory = open(parent.isEmpty ? "." : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        return nil
    }
}

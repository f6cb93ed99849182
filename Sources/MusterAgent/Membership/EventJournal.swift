import Foundation
import MusterWire

/// The node's event journal: Serf's handler, reconciliation and inventory append JSON lines
/// here, and the agent tails it as source `events`.
///
/// Several processes append at once (a handler per Serf event, the agent itself), so each
/// append takes an exclusive `flock`, writes all its lines with one `write` on an `O_APPEND`
/// descriptor, and `fsync`s before returning: once `append` returns, the event survives a
/// crash of the machine, and the handler can tell Serf it is done.
public struct EventJournal: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func append(_ entries: [JournalEntry]) throws(JournalError) {
        guard !entries.isEmpty else { return }
        var text = ""
        for entry in entries {
            text += entry.encodedLine()
            text += "\n"
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw .cannotWrite(path, "cannot create \(directory): \(error.localizedDescription)")
            }
        }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .cannotWrite(path, String(cString: strerror(errno))) }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw .cannotWrite(path, "flock: \(String(cString: strerror(errno)))") }
        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { throw .cannotWrite(path, String(cString: strerror(errno))) }
            written += result
        }
        guard fsync(descriptor) == 0 else { throw .cannotWrite(path, "fsync: \(String(cString: strerror(errno)))") }
    }
}

public enum JournalError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(String, String)
    case badInput(String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let detail): "cannot append to event journal \(path): \(detail)"
        case .badInput(let detail): detail
        }
    }
}

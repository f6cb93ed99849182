import Foundation
import MusterWire
#if canImport(Glibc)
import Glibc
#endif

/// Acknowledged file positions, persisted crash-safely: written to a temporary file, fsynced,
/// renamed over the old one, and the directory fsynced, so a crash at any moment leaves
/// either the old or the new checkpoint, never a torn one.
///
/// Positions only move once the lines before them are fsynced in the spool; a crash between
/// the spool append and the next save makes the agent read and send a little again, which the
/// collector recognises by origin coordinates and ignores.
public struct CheckpointStore: Sendable {
    public let path: String
    public private(set) var positions: [Key: FilePosition] = [:]
    /// Keeps the file bounded when many files come and go.
    public var maxEntries = 10_000
    private var order: [Key] = []
    /// The end of the last spool entry whose lines these positions include: damage before it
    /// in the spool is lost lines, damage after it only an append that never finished.
    public var spooledThrough: Spool.Mark?

    /// A file as read by one source.
    public struct Key: Hashable, Sendable {
        public var source: String?
        public var identity: FileIdentity
    }

    private struct FileFormat: Codable {
        var version: Int
        var files: [FilePosition]
        var spool: Spool.Mark?
    }

    /// Loads the checkpoint file; a missing file means a first start.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, detail: error.localizedDescription)
        }
        do {
            let decoded = try JSONDecoder().decode(FileFormat.self, from: data)
            guard decoded.version == 1 else { throw CheckpointError.unsupportedVersion(path: path, version: decoded.version) }
            // The file is ours, but a disk or a person may have changed it: values out of range
            // make it corrupt (set aside, files read again) rather than traps later.
            for position in decoded.files
            where !Origin.offsetRange.contains(position.offset) || !(0...Int(Int32.max)).contains(position.truncations) {
                throw CheckpointError.corrupt(
                    path: path, detail: "a file position is out of range (offset \(position.offset), truncations \(position.truncations))")
            }
            if let mark = decoded.spool, !Spool.segmentIDs.contains(mark.segment) || !Origin.offsetRange.contains(mark.end) {
                throw CheckpointError.corrupt(path: path, detail: "the spool mark is out of range (segment \(mark.segment), end \(mark.end))")
            }
            for position in decoded.files {
                positions[Key(position)] = position
                order.append(Key(position))
            }
            spooledThrough = decoded.spool
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw .corrupt(path: path, detail: "\(error)")
        }
    }

    /// Loads the checkpoint file, or, when it is corrupt, moves it aside (to
    /// `<path>.corrupt-<unix seconds>`) and starts empty. Starting empty means files are read
    /// again from their start; the collector recognises every line it already has, so this
    /// costs traffic, never a duplicate, and the agent does not crash-loop on a bad file.
    public static func loadOrSetAside(path: String) throws(CheckpointError) -> (store: CheckpointStore, setAside: String?) {
        do {
            return (try CheckpointStore(path: path), nil)
        } catch .corrupt, .unsupportedVersion {
            let aside = path + ".corrupt-" + String(Int(Date().timeIntervalSince1970))
            guard rename(path, aside) == 0 else {
                throw .unwritable(path: aside, detail: String(cString: strerror(errno)))
            }
            return (try CheckpointStore(path: path), aside)
        }
    }

    /// Where `source` got to in the file; a position saved before sources were told apart
    /// counts for every source.
    public func position(of identity: FileIdentity, source: String? = nil) -> FilePosition? {
        positions[Key(source: source, identity: identity)] ?? positions[Key(source: nil, identity: identity)]
    }

    /// Records a spooled position; never moves a file backwards within a generation.
    public mutating func advance(_ position: FilePosition) {
        let key = Key(position)
        if let current = positions[key] {
            if current.truncations > position.truncations { return }
            if current.truncations == position.truncations, current.offset >= position.offset { return }
            order.removeAll { $0 == key }
        }
        positions[key] = position
        order.append(key)
        while order.count > maxEntries {
            positions[order.removeFirst()] = nil
        }
    }

    /// Writes the positions durably (see the type's comment).
    public func save() throws(CheckpointError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(FileFormat(version: 1, files: order.compactMap { positions[$0] }, spool: spooledThrough))
        } catch {
            throw .unwritable(path: path, detail: "\(error)")
        }
        if let failure = DurableFile.replace(path, with: data) { throw .unwritable(path: path, detail: failure) }
    }
}

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, detail: String)
    case corrupt(path: String, detail: String)
    case unsupportedVersion(path: String, version: Int)
    case unwritable(path: String, detail: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let detail): "cannot read checkpoints \(path): \(detail)"
        case .corrupt(let path, let detail):
            "checkpoint file \(path) is corrupt (\(detail))"
        case .unsupportedVersion(let path, let version): "checkpoint file \(path) has unknown version \(version)"
        case .unwritable(let path, let detail): "cannot write checkpoints \(path): \(detail)"
        }
    }
}

extension CheckpointStore.Key {
    init(_ position: FilePosition) {
        self.init(source: position.source, identity: position.identity)
    }
}

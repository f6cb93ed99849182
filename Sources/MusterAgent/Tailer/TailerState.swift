import Foundation

/// What a tailer remembers across restarts besides the checkpoints: the generations it read
/// lately, what their bytes hashed to, and which files carried them.
///
/// The checkpoint says how far a generation was acknowledged, keyed by the identity of the file
/// it was read from. After copytruncate that file holds new bytes, and the old generation's
/// rest is in the copy, a file of another identity; this state is what lets a restarted agent
/// recognise the copy (by its bytes) and resume the old generation in it at the checkpoint,
/// instead of shipping the copy as a new file. Losing it is not fatal: a copy is then read as
/// a file of its own, which resends lines the collector cannot recognise as duplicates.
struct TailerState: Codable, Equatable {
    static let version = 1

    struct Generation: Codable, Equatable {
        var identity: FileIdentity
        var truncations: Int
        var marks: [ContentTrail.Mark]
        /// Identities of the files that held it (its own file, copies of it).
        var files: [FileIdentity]
    }

    var version = TailerState.version
    var generations: [Generation] = []
    /// `S6Archives.following`: since when each s6-log directory is followed. Optional, like
    /// every field added later, so that older state files still load.
    var s6Following: [String: Int64]?

    /// The state of `sourceID` under `directory`, with the file name made safe.
    static func path(directory: String, sourceID: String) -> String {
        let safe = String(sourceID.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) ? Character($0) : "_" })
        // Two ids that differ only in unsafe characters must not share a file.
        let suffix = safe == sourceID ? "" : "-" + String(FileIdentity.fnv1a(Array(sourceID.utf8)), radix: 16)
        return directory + "/tailer/" + safe + suffix + ".json"
    }

    /// Loads the file; a missing one is an empty state, an unreadable one a problem to report.
    static func load(path: String) -> (state: TailerState, problem: String?) {
        guard FileManager.default.fileExists(atPath: path) else { return (TailerState(), nil) }
        do {
            let decoded = try JSONDecoder().decode(TailerState.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            guard decoded.version == version else {
                return (TailerState(), "tailer state \(path) has unknown version \(decoded.version); starting without it")
            }
            return (decoded, nil)
        } catch {
            return (TailerState(), "tailer state \(path) is unreadable (\(error)); starting without it")
        }
    }

    /// Writes it crash-safely; returns what failed, if anything.
    func save(path: String) -> String? {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let data = try JSONEncoder().encode(self)
            return DurableFile.replace(path, with: data)
        } catch {
            return "\(path): \(error)"
        }
    }
}

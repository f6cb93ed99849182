import MusterWire

/// A named instant in the cluster's history (`logq mark task-2`): a mark starts a task, which
/// lasts until the next mark, and `logq export` writes one folder per task.
public struct Mark: Sendable, Equatable {
    public var id: Int64
    public var name: String
    /// When the collector recorded it, nanoseconds since the epoch.
    public var t: Int64
    public var note: String
    /// The `events` row that announced it.
    public var event: Int64

    public init(id: Int64, name: String, t: Int64, note: String, event: Int64) {
        self.id = id
        self.name = name
        self.t = t
        self.note = note
        self.event = event
    }

    /// A name becomes a folder name in exports, so it is a plain file name.
    public static let namePattern = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

    public static func isValidName(_ name: String) -> Bool {
        name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9._-]{0,63}/) != nil
    }

    /// Notes are one line of at most this many bytes.
    public static let maxNoteBytes = 1024
}

public enum MarkError: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case invalidNote
    case exists(Mark)

    public var description: String {
        switch self {
        case .invalidName(let name):
            "mark name must match \(Mark.namePattern) (it becomes a folder name), got '\(name)'"
        case .invalidNote:
            "a mark's note is one line of at most \(Mark.maxNoteBytes) bytes"
        case .exists(let mark):
            "a mark named '\(mark.name)' already exists (at \(Timestamp.format(mark.t))); marks name tasks once, choose another name"
        }
    }
}

import Foundation
import GRDB
import MusterWire

/// A named instant in the cluster's history (`logq mark task-2`): a mark starts a task, which
/// lasts until the next mark, and `logq export` writes one folder per task.
public struct Mark: Sendable, Equatable, FetchableRecord {
    public var id: Int64
    public var name: String
    /// When the collector recorded it, nanoseconds since the epoch.
    public var t: Int64
    public var note: String
    /// The `events` row that announced it.
    public var event: Int64

    public init(row: Row) throws {
        id = row["id"]
        name = row["name"]
        t = row["t"]
        note = row["note"]
        event = row["event"]
    }

    /// A name becomes a folder name in exports, so it is a plain file name.
    public static let namePattern = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

    public static func isValidName(_ name: String) -> Bool {
        name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9._-]{0,63}/) != nil
    }

    /// Notes are one line of at most this many bytes.
    public static let maxNoteBytes = 1024

    /// Every mark, oldest first.
    public static func all(in db: Database) throws -> [Mark] {
        try Mark.fetchAll(db, sql: "SELECT id, name, t, note, event FROM marks ORDER BY t, id")
    }

    /// Records a mark at `t` and announces it on the event stream.
    /// Throws `MarkError.exists` when the name is taken: a task is marked once.
    public static func record(name: String, note: String, at t: Int64, in db: Database) throws -> Mark {
        guard isValidName(name) else { throw MarkError.invalidName(name) }
        guard note.utf8.count <= maxNoteBytes, !note.contains(where: \.isNewline) else { throw MarkError.invalidNote }
        if let existing = try Mark.fetchOne(db, sql: "SELECT id, name, t, note, event FROM marks WHERE name = ?", arguments: [name]) {
            throw MarkError.exists(existing)
        }
        let event = try ClusterLedger.appendEvent(kind: .mark, t: t, body: ["name": name, "note": note], in: db)
        try db.execute(sql: "INSERT INTO marks(name, t, note, event) VALUES (?, ?, ?, ?)", arguments: [name, t, note, event])
        return try Mark.fetchOne(db, sql: "SELECT id, name, t, note, event FROM marks WHERE id = ?", arguments: [db.lastInsertedRowID])!
    }
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

import Foundation
import GRDB
import MusterStore
import MusterWire

extension Mark: FetchableRecord {
    public init(row: Row) throws {
        self.init(id: row["id"], name: row["name"], t: row["t"], note: row["note"], event: row["event"])
    }

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
        let event = try ClusterLedger.appendEvent(kind: .mark, t: t, body: MarkEvent(name: name, note: note), in: db)
        try db.execute(sql: "INSERT INTO marks(name, t, note, event) VALUES (?, ?, ?, ?)", arguments: [name, t, note, event])
        return try Mark.fetchOne(db, sql: "SELECT id, name, t, note, event FROM marks WHERE id = ?", arguments: [db.lastInsertedRowID])!
    }
}

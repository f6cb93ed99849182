import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterWire
import Testing

@testable import LogQuery

/// `logq export` on a small history: two marks, two nodes' lines, a join and a leave, a config.
@Suite struct EvidenceExportTests {
    let path: String
    let export: EvidenceExport
    let out: String

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/store.sqlite"
        out = directory + "/out"
        let pool = try Schema.openForWriting(path: path, synchronous: .normal)
        func line(_ node: String, _ t: Int64, _ offset: Int64, _ message: String, source: String = "webapp") -> LogRecord {
            LogRecord(time: t, node: node, origin: Origin(agent: node, source: source, generation: "g", offset: offset), message: message)
        }
        func member(_ event: JournalEvent, _ name: String, _ t: Int64) -> JournalEntry {
            JournalEntry(t: t, event: event, observer: "ha", member: Member(name: name, address: "10.0.0.\(name.dropFirst())", role: "web", tags: [:]))
        }
        try pool.write { db in
            _ = try Mark.record(name: "task-0", note: "start", at: 1_000, in: db)
            _ = try LogWriter.insert(
                [[line("s1", 1_500, 0, "GET / 200"), line("s2", 1_600, 0, "GET / 200"), line("s1", 2_500, 10, "GET /x 404"),
                  line("ha", 2_600, 0, "{\"event\":\"member-join\"}", source: JournalEntry.sourceID)]], into: db)
            _ = try ClusterLedger().apply([member(.memberJoin, "s1", 1_100), member(.memberJoin, "s2", 1_200)], in: db)
            _ = try Mark.record(name: "task-1", note: "s2 leaves", at: 2_000, in: db)
            _ = try ClusterLedger().apply([member(.memberLeave, "s2", 2_100)], in: db)
        }
        export = EvidenceExport(store: try SQLiteHistoryReader(path: path))
    }

    func read(_ relative: String) -> String? {
        try? String(contentsOfFile: out + "/" + relative, encoding: .utf8)
    }

    @Test func oneFolderPerMarkWithEachNodesLinesOfThatTask() throws {
        let summaries = try export.export(to: out).summaries
        #expect(summaries.map(\.task.name) == ["task-0", "task-1"])
        #expect(summaries.map(\.nodes) == [["s1", "s2"], ["s1"]])
        #expect(read("task-0/s1.log") == "1970-01-01T00:00:00.000001500Z s1 webapp: GET / 200\n")
        #expect(read("task-1/s1.log") == "1970-01-01T00:00:00.000002500Z s1 webapp: GET /x 404\n")
        #expect(read("task-1/s2.log") == nil, "s2 logged nothing in task-1")
        #expect(read("task-1/ha.log") == nil, "journal lines are membership and events, not a node's log")
        #expect(read("task-1/membership.log")?.contains("s2      left") == true)
        #expect(read("task-0/mark.json") == #"{"from":"1970-01-01T00:00:00.000001000Z","name":"task-0","note":"start","until":"1970-01-01T00:00:00.000002000Z"}"# + "\n")
        #expect(read("task-1/nodes.log")?.contains("after s2 left") == true)
        #expect(read("index.log")?.split(separator: "\n").count == 3)
    }

    @Test func exportingTwiceGivesIdenticalFilesAndNoStaleOnes() throws {
        _ = try export.export(to: out)
        let first = try FileManager.default.subpathsOfDirectory(atPath: out).sorted()
        let contents = first.map { read($0) }
        try "stale".write(toFile: out + "/task-0/stale.log", atomically: true, encoding: .utf8)
        _ = try export.export(to: out)
        #expect(try FileManager.default.subpathsOfDirectory(atPath: out).sorted() == first)
        #expect(first.map { read($0) } == contents)
    }

    @Test func refusesAFolderItDidNotMakeAndUnknownMarks() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try "mine".write(toFile: out + "/notes.txt", atomically: true, encoding: .utf8)
        #expect(throws: QueryError.self) { try export.export(to: out) }
        #expect(read("notes.txt") == "mine")
        do {
            _ = try export.export(to: out + "-2", tasks: ["task-9"])
            Issue.record("an unknown mark was accepted")
        } catch {
            #expect(error == .badArgument("no mark named 'task-9' (marks: task-0, task-1)"))
            #expect(error.exitCode == 65)
        }
    }

    @Test func aMarkNameIsAFolderNameAndIsUsedOnce() throws {
        let pool = try DatabasePool(path: path)
        #expect(throws: MarkError.invalidName("../x")) { try pool.write { db in try Mark.record(name: "../x", note: "", at: 5, in: db) } }
        #expect(throws: MarkError.invalidNote) { try pool.write { db in try Mark.record(name: "ok", note: "a\nb", at: 5, in: db) } }
        #expect(throws: MarkError.self) { try pool.write { db in try Mark.record(name: "task-0", note: "", at: 5, in: db) } }
    }
}

import Foundation
import MusterWire
import NIOCore

/// Rows as ClickHouse's `JSONEachRow` takes them: one JSON object per line.
struct JSONRows {
    var bytes: [UInt8] = []
    private var first = true

    mutating func begin() {
        bytes.append(UInt8(ascii: "{"))
        first = true
    }

    mutating func end() {
        bytes.append(UInt8(ascii: "}"))
        bytes.append(UInt8(ascii: "\n"))
    }

    mutating func number(_ key: StaticString, _ value: some BinaryInteger) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func string(_ key: StaticString, _ value: String) {
        self.key(key)
        JSONText.append(value, to: &bytes)
    }

    private mutating func key(_ key: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: "\":".utf8)
    }
}

/// Reading `JSONEachRow` answers: one object per line, each decoded on its own, so a row that
/// does not decode names its line.
enum JSONAnswer {
    static func rows<Row: Decodable>(_ type: Row.Type, _ answer: ByteBuffer, from server: String) throws(ClickHouseError) -> [Row] {
        let decoder = JSONDecoder()
        var rows: [Row] = []
        var lineNumber = 0
        for line in answer.readableBytesView.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            lineNumber += 1
            // An error after the answer began: the status was 200 already, the message follows the rows.
            if line.starts(with: "Code: ".utf8) {
                throw .refused(server: server, code: nil, message: String(decoding: line.prefix(2_000), as: UTF8.self))
            }
            do {
                rows.append(try decoder.decode(Row.self, from: Data(line)))
            } catch {
                throw .unexpectedAnswer(server: server, detail: "row \(lineNumber) is not a \(Row.self): \(error)")
            }
        }
        return rows
    }
}

/// Which identities of a set of records a table holds.
enum IdentityQuery {
    /// Conditions that hold for every row whose identity is one of `identities` (and for a
    /// few more): per file (agent, source, generation), the range of its offsets, which
    /// `ids_local`'s primary key reads directly (10 ms for 10,000 lines where a list of 2,000
    /// offsets took 30 ms to parse). Callers keep the identities they asked about. Files are
    /// asked `filesPerStatement` at a time, so a statement stays far below the server's
    /// `max_query_size` whatever the group.
    static func conditions(_ identities: [LineIdentity]) -> [String] {
        struct File: Hashable {
            var agent: String
            var source: String
            var generation: String
        }
        var ranges: [File: ClosedRange<Int64>] = [:]
        for identity in identities {
            let file = File(agent: identity.agent, source: identity.source, generation: identity.generation)
            let range = ranges[file].map { min($0.lowerBound, identity.offset)...max($0.upperBound, identity.offset) }
            ranges[file] = range ?? identity.offset...identity.offset
        }
        let disjuncts = ranges.map { file, range in
            "(agent = \(ClickHouseSQL.literal(file.agent)) AND src = \(ClickHouseSQL.literal(file.source)) "
                + "AND gen = \(ClickHouseSQL.literal(file.generation)) AND off >= \(range.lowerBound) AND off <= \(range.upperBound))"
        }
        return stride(from: 0, to: disjuncts.count, by: filesPerStatement).map { start in
            disjuncts[start..<min(start + filesPerStatement, disjuncts.count)].joined(separator: " OR ")
        }
    }

    static let filesPerStatement = 500

    /// A row of `agent, src, gen, off`, and the line's id when asked for.
    struct Row: Decodable {
        var agent: String
        var src: String
        var gen: String
        var off: Int64
        var id: Int64?

        var identity: LineIdentity { LineIdentity(agent: agent, source: src, generation: gen, offset: off) }
    }

    static func decode(_ answer: ByteBuffer, from server: String) throws(ClickHouseError) -> Set<LineIdentity> {
        Set(try JSONAnswer.rows(Row.self, answer, from: server).map(\.identity))
    }
}

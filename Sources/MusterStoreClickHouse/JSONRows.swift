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
    /// Rows whose identity is one of `identities`: one disjunct per file (agent, source,
    /// generation) with its offsets, which `ids_local`'s primary key answers directly.
    static func condition(_ identities: [LineIdentity]) -> String {
        struct File: Hashable {
            var agent: String
            var source: String
            var generation: String
        }
        var offsets: [File: [Int64]] = [:]
        for identity in identities {
            offsets[File(agent: identity.agent, source: identity.source, generation: identity.generation), default: []]
                .append(identity.offset)
        }
        return offsets.map { file, offsets in
            "(agent = \(ClickHouseSQL.literal(file.agent)) AND src = \(ClickHouseSQL.literal(file.source)) "
                + "AND gen = \(ClickHouseSQL.literal(file.generation)) AND off IN (\(offsets.map(String.init).joined(separator: ","))))"
        }.joined(separator: " OR ")
    }

    /// Identities per lookup statement: the statement stays well under the server's
    /// `max_query_size` (256 KiB) and `max_ast_elements` whatever the group's size.
    static let identitiesPerStatement = 2_000

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

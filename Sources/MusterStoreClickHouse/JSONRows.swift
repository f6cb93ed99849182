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
    /// Rows of a small answer (counts, partitions, identities), through `Decodable`.
    static func rows<Row: Decodable>(_ type: Row.Type, _ answer: ByteBuffer, from server: String) throws(ClickHouseError) -> [Row] {
        let decoder = JSONDecoder()
        return try rows(answer, from: server, named: "\(Row.self)") { line in
            try decoder.decode(Row.self, from: Data(line))
        }
    }

    /// Rows of `LogTables.lineColumns`, read with the wire's JSON scanner: through
    /// `JSONDecoder` a row cost ~20 µs, most of what `logq export` spent on this store.
    static func lines(_ answer: ByteBuffer, from server: String) throws(ClickHouseError) -> [StoredLine] {
        try rows(answer, from: server, named: "line") { line in try StoredLine(jsonRow: line) }
    }

    private static func rows<Row>(
        _ answer: ByteBuffer, from server: String, named name: String, _ decode: (UnsafeRawBufferPointer) throws -> Row
    ) throws(ClickHouseError) -> [Row] {
        let newline = UInt8(ascii: "\n")
        let outcome: Result<[Row], ClickHouseError> = answer.withUnsafeReadableBytes { bytes in
            var rows: [Row] = []
            var lineNumber = 0
            var start = 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: newline) ?? bytes.count
                defer { start = end + 1 }
                guard end > start else { continue }
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                lineNumber += 1
                // An error after the answer began: the status was 200 already, the message follows the rows.
                if line.starts(with: "Code: ".utf8) {
                    return .failure(.refused(server: server, code: nil, message: String(decoding: line.prefix(2_000), as: UTF8.self)))
                }
                do {
                    rows.append(try decode(line))
                } catch {
                    return .failure(.unexpectedAnswer(server: server, detail: "row \(lineNumber) is not a \(name): \(error)"))
                }
            }
            return .success(rows)
        }
        return try outcome.get()
    }
}

extension StoredLine {
    /// One `JSONEachRow` row (the readers' settings write 64-bit integers unquoted). Unknown
    /// columns are skipped; a missing one or one of the wrong kind is an error naming it. Where
    /// `JSONDecoder` differed (none of it occurs in rows a collector wrote): invalid UTF-8 in a
    /// string becomes U+FFFD, as in the agents' batches (ClickHouse does not check UTF-8), a
    /// repeated key takes its last value, and `1.0` is not an integer.
    init(jsonRow bytes: UnsafeRawBufferPointer) throws(JSONScanner.Failure) {
        var id: Int64?, t: Int64?, off: Int64?
        var node: String?, src: String?, agent: String?, gen: String?, msg: String?, fields: String?
        var scanner = JSONScanner(bytes, brokenSurrogatePair: .replaced)
        try scanner.wholeObject { key, scanner throws(JSONScanner.Failure) in
            func integer() throws(JSONScanner.Failure) -> Int64 {
                guard case .int(let value)? = try scanner.number() else { throw .field(key, "not a 64-bit integer") }
                return value
            }
            func text() throws(JSONScanner.Failure) -> String {
                guard scanner.peek() == UInt8(ascii: "\"") else { throw .field(key, "not a string") }
                return try scanner.string()
            }
            switch key {
            case "id": id = try integer()
            case "t": t = try integer()
            case "off": off = try integer()
            case "node": node = try text()
            case "src": src = try text()
            case "agent": agent = try text()
            case "gen": gen = try text()
            case "msg": msg = try text()
            case "fields": fields = try text()
            default: try scanner.skipValue()
            }
        }
        guard let id else { throw .syntax("no 'id' column") }
        guard let t else { throw .syntax("no 't' column") }
        guard let off else { throw .syntax("no 'off' column") }
        guard let node else { throw .syntax("no 'node' column") }
        guard let src else { throw .syntax("no 'src' column") }
        guard let agent else { throw .syntax("no 'agent' column") }
        guard let gen else { throw .syntax("no 'gen' column") }
        guard let msg else { throw .syntax("no 'msg' column") }
        guard let fields else { throw .syntax("no 'fields' column") }
        self.init(id: id, t: t, node: node, src: src, agent: agent, gen: gen, off: off, msg: msg, fields: fields)
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

import Foundation
import MusterWire

/// How logq prints rows: one place for text, JSON lines and CSV.
public enum OutputFormat: String, CaseIterable, Sendable {
    case text, json, csv

    public func header() -> String? {
        self == .csv ? "time,node,source,message" : nil
    }

    public func render(_ line: LogLine, nodeWidth: Int = 0) -> String {
        let time = Timestamp.format(line.time)
        switch self {
        case .text:
            let node = line.node.padding(toLength: max(nodeWidth, line.node.count), withPad: " ", startingAt: 0)
            return "\(time) \(node) \(line.source): \(line.message)"
        case .json:
            var object = "{\"time\":\(JSONText.quoted(time)),\"t\":\(line.time),\"node\":\(JSONText.quoted(line.node)),"
            object += "\"source\":\(JSONText.quoted(line.source)),\"message\":\(JSONText.quoted(line.message))"
            if let fields = line.fields { object += ",\"fields\":\(fields)" }
            return object + "}"
        case .csv:
            return [time, line.node, line.source, line.message].map(Self.csvField).joined(separator: ",")
        }
    }

    /// RFC 4180: quote when needed, double the quotes.
    static func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A result that is a table (members, nodes, timeline): one renderer for the three formats,
/// so every subcommand prints text, JSON lines and CSV the same way.
public struct Table: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int64)
        /// Already JSON (an object or array); printed as is in JSON, as text elsewhere.
        case json(String)
        case null

        var plain: String {
            switch self {
            case .text(let value), .json(let value): value
            case .integer(let value): String(value)
            case .null: ""
            }
        }

        var jsonText: String {
            switch self {
            case .text(let value): JSONText.quoted(value)
            case .integer(let value): String(value)
            case .json(let value): value
            case .null: "null"
            }
        }
    }

    public var columns: [String]
    public var rows: [[Value]]

    public init(columns: [String], rows: [[Value]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// Lines to print: text is aligned columns under an upper-case header (`docker ps` style);
    /// JSON is one object per row keyed by column; CSV has a header row.
    public func render(_ format: OutputFormat) -> [String] {
        switch format {
        case .text:
            let cells = [columns.map { $0.uppercased() }] + rows.map { $0.map(\.plain) }
            var widths = Array(repeating: 0, count: columns.count)
            for row in cells { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
            return cells.map { row in
                row.enumerated().map { index, cell in
                    index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
            }
        case .json:
            return rows.map { row in
                "{" + zip(columns, row).map { "\(JSONText.quoted($0)):\($1.jsonText)" }.joined(separator: ",") + "}"
            }
        case .csv:
            return [columns.joined(separator: ",")] + rows.map { $0.map { OutputFormat.csvField($0.plain) }.joined(separator: ",") }
        }
    }
}

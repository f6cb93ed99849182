import Foundation
import MusterStore
import MusterWire

/// How logq prints rows: one place for text, JSON lines and CSV.
public enum OutputFormat: String, CaseIterable, Sendable {
    case text, json, csv

    public func header() -> String? {
        self == .csv ? "time,node,source,message" : nil
    }

    /// One line as printed. `colors` paints the node's name (text only); a context line
    /// (`logq logs --context`) is marked like grep marks one: `source-` instead of `source:` in
    /// text, `"context":true` in JSON. Text and CSV show control characters as `\xNN`
    /// (`DisplayText`); a message's line feeds stay, so a multi-line event prints as its lines.
    public func render(_ line: LogLine, nodeWidth: Int = 0, colors: NodeColors? = nil, context: Bool = false) -> String {
        let time = Timestamp.format(line.time)
        switch self {
        case .text:
            let name = DisplayText.escapingControls(line.node, keepingLineFeeds: false)
            let padding = String(repeating: " ", count: max(0, nodeWidth - name.count))
            let node = (colors?.paint(name, as: line.node) ?? name) + padding
            let source = DisplayText.escapingControls(line.source, keepingLineFeeds: false)
            return "\(time) \(node) \(source)\(context ? "-" : ":") \(DisplayText.escapingControls(line.message, keepingLineFeeds: true))"
        case .json:
            var object = "{\"time\":\(JSONText.quoted(time)),\"t\":\(line.time),\"node\":\(JSONText.quoted(line.node)),"
            object += "\"source\":\(JSONText.quoted(line.source)),\"message\":\(JSONText.quoted(line.message))"
            if let fields = line.fields { object += ",\"fields\":\(fields)" }
            if context { object += ",\"context\":true" }
            return object + "}"
        case .csv:
            return [time, line.node, line.source, line.message].map(DisplayText.csvCell).joined(separator: ",")
        }
    }
}

/// A result that is a table (members, nodes, timeline): one renderer for the three formats,
/// so every subcommand prints text, JSON lines and CSV the same way.
public struct Table: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int64)
        case real(Double)
        /// Already JSON (an object or array); printed as is in JSON, as text elsewhere.
        case json(String)
        case null

        var plain: String {
            switch self {
            case .text(let value), .json(let value): value
            case .integer(let value): String(value)
            case .real(let value): String(value)
            case .null: ""
            }
        }

        var csvCell: String {
            switch self {
            case .text(let value), .json(let value): DisplayText.csvCell(value)
            case .integer, .real, .null: plain
            }
        }

        var jsonText: String {
            switch self {
            case .text(let value): JSONText.quoted(value)
            case .integer(let value): String(value)
            case .real(let value): value.isFinite ? String(value) : "null"
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

    /// Columns that hold node names, which `colors` paints in text: `node`, `member`, and
    /// `name` in a table of nodes (one with an `address` column).
    var nodeColumns: Set<Int> {
        Set(columns.indices.filter { ["node", "member"].contains(columns[$0]) || (columns[$0] == "name" && columns.contains("address")) })
    }

    /// Lines to print: text is aligned columns under an upper-case header (`docker ps` style),
    /// node names painted when `colors` is given; JSON is one object per row keyed by column;
    /// CSV has a header row. A text cell is one line: its control characters, line feeds
    /// included, are shown as `\xNN`; CSV text cells are `DisplayText.csvCell`s, numbers stay
    /// as they are.
    public func render(_ format: OutputFormat, colors: NodeColors? = nil) -> [String] {
        switch format {
        case .text:
            let cells = ([columns.map { $0.uppercased() }] + rows.map { $0.map(\.plain) }).map { row in
                row.map { DisplayText.escapingControls($0, keepingLineFeeds: false) }
            }
            var widths = Array(repeating: 0, count: columns.count)
            for row in cells { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
            let painted = colors == nil ? [] : nodeColumns
            return cells.enumerated().map { rowIndex, row in
                row.enumerated().map { index, cell in
                    let padding = index == row.count - 1 ? "" : String(repeating: " ", count: widths[index] - cell.count)
                    let paint = rowIndex > 0 && painted.contains(index) && !cell.isEmpty
                    return (paint ? colors!.paint(cell) : cell) + padding
                }.joined(separator: "  ")
            }
        case .json:
            return rows.map { row in
                "{" + zip(columns, row).map { "\(JSONText.quoted($0)):\($1.jsonText)" }.joined(separator: ",") + "}"
            }
        case .csv:
            return [columns.map(DisplayText.csvCell).joined(separator: ",")] + rows.map { $0.map(\.csvCell).joined(separator: ",") }
        }
    }
}

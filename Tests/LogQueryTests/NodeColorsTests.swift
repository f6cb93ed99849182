import Foundation
import MusterStore
import Testing

@testable import LogQuery

@Suite struct NodeColorsTests {
    /// The SGR codes in a string: what follows each ESC [ up to its `m`.
    func codes(_ text: String) -> [String] {
        text.components(separatedBy: "\u{1B}[").dropFirst().map { String($0.prefix { $0 != "m" }) }
    }

    @Test func aNameAlwaysGetsTheSameColour() {
        // FNV-1a of the UTF-8 bytes: these values hold in every run on every machine.
        #expect(NodeColors.code(for: "s1") == 34)
        #expect(NodeColors.code(for: "s2") == 32)
        #expect(NodeColors.code(for: "ha") == 35)
        #expect(NodeColors().paint("s1") == "\u{1B}[34ms1\u{1B}[0m")
        #expect(NodeColors().paint("s1  ", as: "s1") == "\u{1B}[34ms1  \u{1B}[0m")
    }

    @Test func neverRedOrYellow() {
        let names = (0..<500).map { "node-\($0)" } + ["s1", "s2", "s3", "s4", "ha", "collector", "é", ""]
        let used = Set(names.map(NodeColors.code(for:)))
        #expect(used.isDisjoint(with: [31, 33, 91, 93]))
        #expect(used == Set(NodeColors.palette), "the hash spreads names over the whole palette")
        for name in names {
            #expect(codes(NodeColors().paint(name)).allSatisfy { !["31", "33", "91", "93"].contains($0) })
        }
    }

    @Test func onlyOnATerminalAndNotWithNO_COLOR() {
        #expect(NodeColors.resolve(.auto, environment: [:], isTerminal: true) != nil)
        #expect(NodeColors.resolve(.auto, environment: [:], isTerminal: false) == nil)
        #expect(NodeColors.resolve(.auto, environment: ["NO_COLOR": "1"], isTerminal: true) == nil)
        #expect(NodeColors.resolve(.auto, environment: ["NO_COLOR": ""], isTerminal: true) == nil, "set to any value")
        #expect(NodeColors.resolve(.never, environment: [:], isTerminal: true) == nil)
        #expect(NodeColors.resolve(.always, environment: ["NO_COLOR": "1"], isTerminal: false) != nil)
    }

    @Test func logLinesAndTablesColourTheNodeOnlyInText() {
        let colors = NodeColors()
        let line = LogLine(id: 1, time: 0, node: "s1", source: "webapp", message: "hi", fields: nil)
        #expect(OutputFormat.text.render(line, nodeWidth: 4, colors: colors) == "1970-01-01T00:00:00.000000000Z \u{1B}[34ms1\u{1B}[0m   webapp: hi")
        #expect(!OutputFormat.json.render(line, colors: colors).contains("\u{1B}"))
        #expect(!OutputFormat.csv.render(line, colors: colors).contains("\u{1B}"))

        let table = Table(columns: ["node", "lines", "note"], rows: [[.text("s1"), .integer(3), .text("s1")], [.text("collector"), .integer(10), .null]])
        let painted = table.render(.text, colors: colors)
        #expect(painted[0] == "NODE       LINES  NOTE", "the header is not painted")
        #expect(painted[1] == "\u{1B}[34ms1\u{1B}[0m         3      s1", "only the node column, still aligned")
        #expect(painted.map { $0.replacingOccurrences(of: "\u{1B}\\[[0-9]+m", with: "", options: .regularExpression) } == table.render(.text))
        #expect(table.render(.json, colors: colors) == table.render(.json))
        #expect(table.render(.csv, colors: colors) == table.render(.csv))
        let members = Table(columns: ["name", "address"], rows: [[.text("s2"), .text("10.0.0.2")]])
        #expect(members.render(.text, colors: colors)[1].hasPrefix("\u{1B}[32ms2"), "a table of nodes: name is the node")
        let queries = Table(columns: ["name", "description"], rows: [[.text("s2"), .text("x")]])
        #expect(queries.render(.text, colors: colors)[1] == "s2    x")
    }
}

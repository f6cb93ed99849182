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

import Foundation
import GRDB
import MusterWire
import Testing

/// The real agent and collector over one container's output written three ways: as plain
/// lines, as dockerd's json-file writes it and as containerd writes CRI logs. Whatever the
/// format, the same messages are stored in the same order; the container formats add the
/// stream and the runtime's time, which is also the record's time.
@Suite(.serialized) final class ContainerLogFormatTests {
    let pipeline: LoopbackPipeline

    init() throws {
        pipeline = try LoopbackPipeline("containers")
    }

    /// What the container wrote, in order: `(stream, text)`.
    static let messages: [(stream: String, text: String)] = {
        var messages: [(String, String)] = []
        for index in 0..<200 {
            let stream = index % 7 == 3 ? "stderr" : "stdout"
            messages.append((stream, "line \(index) <b>&amp;</b> \"quoted\" \\ tab\there café ☕ \u{2028}"))
            if index == 50 {
                // Longer than dockerd's and containerd's 16 KiB entries: split into partial entries.
                messages.append(("stdout", "L" + String(repeating: "0123456789abcdef", count: 2500)))
                messages.append(("stderr", "E" + String(repeating: "zyxwvutsrqponmlk", count: 1500)))
            }
        }
        return messages
    }()

    static let entryBytes = 16 * 1024
    static let containerID = "7c1e4b2f9a0d3e5c7c1e4b2f9a0d3e5c7c1e4b2f9a0d3e5c7c1e4b2f9a0d3e5c"
    static let start = Timestamp.parseRFC3339("2026-12-04T11:20:02Z")!

    /// A runtime entry: the message it belongs to, its stream, its text and whether it ends it.
    struct Entry {
        var message: Int
        var stream: String
        var text: String
        var last: Bool
        var time: String
    }

    /// The entries as a runtime writes them: messages over 16 KiB in pieces, and the pieces of
    /// the two long messages interleaved (each stream has its own copier), each with its time.
    static func entries() -> [Entry] {
        var pieces: [[Entry]] = []
        for (index, message) in messages.enumerated() {
            var text = Substring(message.text)
            var parts: [Entry] = []
            repeat {
                parts.append(Entry(message: index, stream: message.stream, text: String(text.prefix(entryBytes)), last: false, time: ""))
                text = text.dropFirst(entryBytes)
            } while !text.isEmpty
            parts[parts.count - 1].last = true
            pieces.append(parts)
        }
        var ordered: [Entry] = []
        var index = 0
        while index < pieces.count {
            if pieces[index].count > 1, index + 1 < pieces.count, pieces[index + 1].count > 1 {
                // a1 b1 a2 b2 a3: the stderr message completes before the stdout one.
                let (a, b) = (pieces[index], pieces[index + 1])
                for step in 0..<max(a.count, b.count) {
                    if step < a.count { ordered.append(a[step]) }
                    if step < b.count { ordered.append(b[step]) }
                }
                index += 2
            } else {
                ordered += pieces[index]
                index += 1
            }
        }
        for position in ordered.indices {
            ordered[position].time = goRFC3339Nano(start + Int64(position) * 1_234_500)
        }
        return ordered
    }

    /// Go's `time.RFC3339Nano`, which both runtimes write: trailing zeros of the fraction dropped.
    static func goRFC3339Nano(_ nanos: Int64) -> String {
        var text = Timestamp.format(nanos).dropLast()
        while text.last == "0" { text.removeLast() }
        if text.last == "." { text.removeLast() }
        return text + "Z"
    }

    /// A JSON string as Go's encoding/json writes it (`<`, `>`, `&`, U+2028 escaped too).
    static func goQuoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}": quoted += String(format: "\\u%04x", scalar.value)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    func write(_ text: String, to relativePath: String) throws {
        let path = pipeline.logs + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// Stored rows of `source` in stored order (time, then arrival).
    func stored(_ source: String) throws -> [(t: Int64, message: String, fields: [String: String])] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: pipeline.database, configuration: configuration)
        let rows = try queue.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT l.t, l.msg, coalesce(l.fields, '{}') AS f FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = ? ORDER BY l.t, l.id",
                arguments: [source])
        }
        return rows.map { row in
            let text: String = row["f"]
            let fields = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String] ?? [:]
            return (row["t"], row["msg"], fields)
        }
    }

    @Test func plainDockerAndCRIFilesStoreTheSameMessagesInTheSameOrder() throws {
        let entries = Self.entries()
        #expect(entries.count == Self.messages.count + 3, "the long messages are in 3 and 2 entries")
        try write(Self.messages.map { $0.text + "\n" }.joined(), to: "plain/app.log")
        try write(
            entries.map { entry in
                #"{"log":\#(Self.goQuoted(entry.text + (entry.last ? "\n" : ""))),"stream":"\#(entry.stream)","time":"\#(entry.time)"}"# + "\n"
            }.joined(),
            to: "docker/containers/\(Self.containerID)/\(Self.containerID)-json.log")
        try write(
            entries.map { "\($0.time) \($0.stream) \($0.last ? "F" : "P") \($0.text)\n" }.joined(),
            to: "pods/default_web-5d8f_0a1b/app/0.log")
        try """
            sources:
              - id: plain
                paths: ["\(pipeline.logs)/plain/*.log"]
              - id: docker
                paths: ["\(pipeline.logs)/docker/containers/*/*-json.log"]
                parse: docker-json
              - id: cri
                paths: ["\(pipeline.logs)/pods/*/*/*.log"]
                parse: cri
            """.write(toFile: pipeline.directory + "/agent.yaml", atomically: true, encoding: .utf8)
        try pipeline.startCollector()
        let agent = try pipeline.startAgent(sources: [], extra: ["--config", pipeline.directory + "/agent.yaml"])
        for source in ["plain", "docker", "cri"] {
            let arrived = try waitUntil(timeout: 60, interval: 0.25) { try pipeline.storedCount(source: source) >= Self.messages.count }
            let stored = try pipeline.storedCount(source: source)
            try #require(arrived, "\(source): stored \(stored)\nagent:\n\(agent.log().suffix(3000))")
        }
        Thread.sleep(forTimeInterval: 1)  // anything extra would show up now

        let texts = Self.messages.map(\.text)
        #expect(try stored("plain").map(\.message) == texts)
        // Each message's first entry: its time and stream.
        var firstEntries: [Int: Entry] = [:]
        for entry in entries where firstEntries[entry.message] == nil { firstEntries[entry.message] = entry }
        for source in ["docker", "cri"] {
            let rows = try stored(source)
            #expect(rows.count == texts.count, "\(source)")
            #expect(rows.map(\.message) == texts, "\(source): same messages, same order")
            for (index, row) in rows.enumerated() where index < texts.count {
                let first = try #require(firstEntries[index])
                #expect(row.fields["stream"] == first.stream && row.fields["time"] == first.time, "\(source) \(index): \(row.fields)")
                #expect(row.t == Timestamp.parseRFC3339(first.time), "\(source) \(index): the runtime's time")
                #expect(row.fields["container_id"] == (source == "docker" ? Self.containerID : nil))
            }
        }
        pipeline.stopAgent()
    }
}

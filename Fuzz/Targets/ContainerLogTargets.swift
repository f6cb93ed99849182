import Foundation
import MusterAgent
import MusterWire

extension FuzzTarget {
    /// The input's lines as one file of a `parse: docker-json` source.
    static let dockerJSON = FuzzTarget(
        name: "docker-json", maxLength: 4096,
        summary: "ContainerLogEntry(dockerJSON:) and ContainerLogJoiner over the input's lines (64-byte messages)"
    ) { input in
        joinLines(of: input.text, format: .dockerJSON)
    }

    /// The input's lines as one file of a `parse: cri` source.
    static let cri = FuzzTarget(
        name: "cri", maxLength: 4096, summary: "ContainerLogEntry(cri:) and ContainerLogJoiner over the input's lines (64-byte messages)"
    ) { input in
        joinLines(of: input.text, format: .cri)
    }

    /// A line of a source with `parse: json`, with the default message keys and with `level`.
    static let jsonLines = FuzzTarget(
        name: "json-lines", maxLength: 2048, summary: "JSONLines (an application's JSON lines) into message and fields"
    ) { input in
        let line = input.text
        for parser in [JSONLines(), JSONLines(messageKey: "level")] {
            guard let parsed = parser.parse(line) else { continue }
            for (key, value) in parsed.fields {
                // The wire has no infinity or NaN: such a field would get the whole batch refused.
                if case .double(let number) = value { precondition(number.isFinite, "field \(key) is \(number)") }
            }
        }
    }

    /// A generation for the fuzzed file (FileIdentity is built by the tailer, not by hand).
    private static let generation: FilePosition.Generation = {
        let identity = try! JSONDecoder().decode(FileIdentity.self, from: Data(#"{"device":1,"inode":2,"fingerprint":3}"#.utf8))
        return FilePosition.Generation(identity: identity, truncations: 0)
    }()

    /// Feeds the lines to a joiner, then checks what the source relies on: origins unique and
    /// within the lines read; messages within the limit; nothing held after the partial
    /// timeout; and reading again from a position a record reported makes only records made
    /// the first time (so a restart there loses nothing and the collector drops the repeats).
    private static func joinLines(of text: String, format: LineParser) {
        var lines: [TailedLine] = []
        var offset: Int64 = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let end = offset + Int64(line.utf8.count) + 1
            lines.append(TailedLine(
                generation: generation, offset: offset, endOffset: end, time: receivedAt, message: String(line),
                path: "/var/lib/docker/containers/abc/abc-json.log"))
            offset = end
        }
        let limit = 64
        let records = join(lines, format: format, limit: limit)
        var origins = Set<Int64>()
        for record in records {
            precondition(origins.insert(record.offset).inserted, "origin \(record.offset) twice")
            precondition((0..<max(offset, 1)).contains(record.offset), "origin \(record.offset) outside the lines read")
            precondition((0...offset).contains(record.resume?.offset ?? -1), "resume \(record.resume?.offset ?? -1)")
            if record.fields["stream"] != nil {
                precondition(record.message.utf8.count <= limit, "a message of \(record.message.utf8.count) bytes")
                precondition(record.time == receivedAt || Timestamp.supportedRange.contains(record.time), "time \(record.time)")
            }
        }
        let made = Set(records.map { "\($0.offset) \($0.message)" })
        for resume in Set(records.compactMap(\.resume?.offset)).sorted().prefix(16) {
            for record in join(lines.filter { $0.offset >= resume }, format: format, limit: limit) {
                precondition(made.contains("\(record.offset) \(record.message)"), "resuming at \(resume) made \(record.offset) \(record.message)")
            }
        }
    }

    /// Every record the lines make, the partial messages left flushed after the timeout.
    private static func join(_ lines: [TailedLine], format: LineParser, limit: Int) -> [SourceRecord] {
        var joiner = ContainerLogJoiner(format: format, maxMessageBytes: limit)
        var records: [SourceRecord] = []
        let start = ContinuousClock.now
        for line in lines { joiner.add(line, now: start) { records.append($0) } }
        joiner.flushWaiting(now: start + ContainerLogJoiner.partialTimeout) { records.append($0) }
        precondition(!joiner.holdsPartialMessages, "a partial message outlived its timeout")
        return records
    }
}

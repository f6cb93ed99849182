import Foundation
import Logging
import MusterWire
import NIOCore
import Testing

@testable import MusterAgent

/// `parse: docker-json`, `parse: cri` and `parse: json`: entries, joining, positions, config.
@Suite struct ContainerLogFormatTests {
    static let generation = FilePosition.Generation(identity: FileIdentity(device: 1, inode: 2, fingerprint: 3), truncations: 0)
    static let readTime: Int64 = 1_800_000_000_000_000_000
    static let dockerPath = "/var/lib/docker/containers/4f2a/4f2a-json.log"

    /// Lines of one file, with offsets as the tailer gives them.
    struct File {
        var lines: [TailedLine] = []
        var end: Int64 = 0
        var path = ContainerLogFormatTests.dockerPath

        mutating func add(_ text: String) {
            let next = end + Int64(text.utf8.count) + 1
            lines.append(TailedLine(
                generation: ContainerLogFormatTests.generation, offset: end, endOffset: next, time: ContainerLogFormatTests.readTime,
                message: text, path: path))
            end = next
        }
    }

    static func docker(_ log: String, _ stream: String = "stdout", time: String = "2026-12-04T11:20:02.123456789Z") -> String {
        #"{"log":\#(JSONText.quoted(log)),"stream":"\#(stream)","time":"\#(time)"}"#
    }

    /// The records a joiner makes of `file`, with what it held after each line.
    static func join(
        _ file: File, format: LineParser = .dockerJSON, limit: Int = 1024, flushAfter: Duration? = nil
    ) -> (records: [SourceRecord], joiner: ContainerLogJoiner) {
        var joiner = ContainerLogJoiner(format: format, maxMessageBytes: limit)
        var records: [SourceRecord] = []
        let start = ContinuousClock.now
        for line in file.lines { joiner.add(line, now: start) { records.append($0) } }
        if let flushAfter { joiner.flushWaiting(now: start + flushAfter) { records.append($0) } }
        return (records, joiner)
    }

    // MARK: Entries

    @Test func dockerEntries() throws {
        let full = try #require(ContainerLogEntry(dockerJSON: #"{"log":"GET /health 200\r\n","stream":"stdout","time":"2026-12-04T11:20:02.123456789Z"}"#))
        #expect(full.text == "GET /health 200" && full.complete && full.stream == "stdout" && full.attrs == nil)
        #expect(full.timeText == "2026-12-04T11:20:02.123456789Z" && full.time == Timestamp.parseRFC3339("2026-12-04T11:20:02.123456789Z"))
        let partial = try #require(ContainerLogEntry(
            dockerJSON: #"{ "stream" : "stderr", "log" : "caf\u00e9 \ud83d\ude00 \"q\"\ttab", "attrs": { "tag" : "web", "n": [1, 2] }, "time": "2026-12-04T12:20:02.5+01:00" }"#))
        #expect(partial.text == "café 😀 \"q\"\ttab" && !partial.complete && partial.stream == "stderr")
        #expect(partial.attrs == #"{"tag":"web","n":[1,2]}"#)
        #expect(partial.time == Timestamp.parseRFC3339("2026-12-04T11:20:02.5Z"))
        let noTime = try #require(ContainerLogEntry(dockerJSON: #"{"log":"x\n","stream":"stdout","time":"yesterday"}"#))
        #expect(noTime.timeText == "yesterday" && noTime.time == nil)
        for line in [
            "plain text", #"{"log":"x\n","stream":"stdin"}"#, #"{"stream":"stdout"}"#, #"{"log":1,"stream":"stdout"}"#,
            #"{"log":"x\n","stream":"stdout"} trailing"#, #"{"log":"x\n","stream":"stdout""#, #"{"log":"\x","stream":"stdout"}"#,
            #"["log"]"#, "", #"{"log":"x\n","stream":"stdout","time":"2026-12-04T11:20:02Z","attrs":{"a":}}"#,
            #"{"log":"x\n","stream":"stdout","n":-}"#, #"{"log":"x\n","stream":"stdout","n":1.}"#,
        ] {
            #expect(ContainerLogEntry(dockerJSON: line) == nil, "\(line)")
        }
        // Nesting is bounded: deep input is refused, not a stack overflow.
        let deep = #"{"log":"x\n","stream":"stdout","attrs":"# + String(repeating: "[", count: 10_000) + "}"
        #expect(ContainerLogEntry(dockerJSON: deep) == nil)
    }

    @Test func criEntries() throws {
        let full = try #require(ContainerLogEntry(cri: "2026-12-04T11:20:02.123456789Z stdout F GET /health 200"))
        #expect(full.text == "GET /health 200" && full.complete && full.stream == "stdout")
        #expect(full.time == Timestamp.parseRFC3339("2026-12-04T11:20:02.123456789Z"))
        let partial = try #require(ContainerLogEntry(cri: "2026-12-04T11:20:02.1-07:00 stderr P:x  two  spaces "))
        #expect(partial.text == " two  spaces " && !partial.complete && partial.stream == "stderr")
        #expect(partial.time == Timestamp.parseRFC3339("2026-12-04T18:20:02.1Z"))
        #expect(ContainerLogEntry(cri: "2026-12-04T11:20:02Z stdout F")?.text == "")
        #expect(ContainerLogEntry(cri: "2026-12-04T11:20:02Z stdout F ")?.text == "")
        #expect(ContainerLogEntry(cri: "2262-12-04T11:20:02Z stdout F x")?.time == nil, "past the supported years")
        for line in ["2026-12-04T11:20:02Z stdin F x", "2026-12-04T11:20:02Z stdout X x", "2026-12-04T11:20:02Z stdout", "plain", ""] {
            #expect(ContainerLogEntry(cri: line) == nil, "\(line)")
        }
    }

    // MARK: Joining and positions

    @Test func aWholeEntryIsARecordWithTheRuntimesTimeAndFields() throws {
        var file = File()
        file.add(Self.docker("hello\n"))
        file.add(#"{"log":"attrs\n","stream":"stderr","attrs":{"tag":"web"},"time":"2026-12-04T11:20:03Z"}"#)
        let (records, joiner) = Self.join(file)
        #expect(records.map(\.message) == ["hello", "attrs"])
        #expect(records[0].time == Timestamp.parseRFC3339("2026-12-04T11:20:02.123456789Z"))
        #expect(records[0].fields == [
            "stream": .string("stdout"), "time": .string("2026-12-04T11:20:02.123456789Z"), "container_id": .string("4f2a"),
        ])
        #expect(records[1].fields["attrs"] == .string(#"{"tag":"web"}"#) && records[1].fields["stream"] == .string("stderr"))
        #expect(records.map(\.offset) == [file.lines[0].offset, file.lines[1].offset])
        #expect(records.map(\.resume?.offset) == [file.lines[0].endOffset, file.lines[1].endOffset])
        #expect(!joiner.holdsPartialMessages)
    }

    /// dockerd splits a long line into 16 KiB entries; stdout's and stderr's interleave.
    @Test func partialEntriesAreJoinedPerStreamAndHoldBackTheOtherStreamsPositions() throws {
        var file = File()
        file.add(Self.docker("before\n"))
        file.add(Self.docker("out-1 ", "stdout"))
        file.add(Self.docker("err-1 ", "stderr"))
        file.add(Self.docker("whole err\n", "stderr", time: "2026-12-04T11:20:05Z"))
        file.add(Self.docker("out-2 ", "stdout", time: "2026-12-04T11:20:06Z"))
        file.add(Self.docker("out-3\n", "stdout", time: "2026-12-04T11:20:07Z"))
        file.add(Self.docker("err-2\n", "stderr"))
        let (records, joiner) = Self.join(file)
        #expect(records.map(\.message) == ["before", "err-1 whole err", "out-1 out-2 out-3", "err-2"])
        let offsets = file.lines.map(\.offset)
        let ends = file.lines.map(\.endOffset)
        // A joined record has its first entry's offset and time, and resumes after its last entry...
        #expect(records.map(\.offset) == [offsets[0], offsets[2], offsets[1], offsets[6]])
        #expect(records[2].time == Timestamp.parseRFC3339("2026-12-04T11:20:02.123456789Z"))
        #expect(records[2].fields["time"] == .string("2026-12-04T11:20:02.123456789Z"))
        // ...unless the other stream holds a partial message: then no later than its first entry.
        #expect(records.map(\.resume?.offset) == [ends[0], offsets[1], ends[5], ends[6]])
        #expect(!joiner.holdsPartialMessages)
    }

    /// Resuming at any position a record reported, and reading on, loses no message and makes
    /// no new one: each comes again whole, with the origin it had (the collector keeps one).
    @Test(arguments: [false, true]) func resumingAtAnyReportedPositionMakesTheSameRecords(inPieces: Bool) throws {
        var file = File()
        let long = inPieces ? String(repeating: "0123456789", count: 70) : ""
        file.add(Self.docker("a-1 " + long, "stdout"))
        file.add(Self.docker("b\n", "stderr"))
        file.add(Self.docker("c-1 " + long, "stderr"))
        file.add(Self.docker("a-2" + long + "\n", "stdout"))
        file.add(Self.docker("d\n", "stdout"))
        file.add(Self.docker("c-2\n", "stderr"))
        file.add(Self.docker("e\n", "stdout"))
        let all = Self.join(file).records
        #expect(all.contains { $0.fields["line_part"] != nil } == inPieces)
        let expected = Set(all.map { "\($0.offset) \($0.message)" })
        for (index, record) in all.enumerated() {
            let resume = try #require(record.resume?.offset)
            var rest = File()
            rest.lines = file.lines.filter { $0.offset >= resume }
            let again = Self.join(rest).records
            #expect(Set((all[...index] + again).map { "\($0.offset) \($0.message)" }) == expected, "resuming at \(resume)")
        }
        #expect(all.last?.resume?.offset == file.end, "once nothing is held, the position moves on")
    }

    @Test func aMessageOverTheLimitIsSentInPiecesCutAtCharacters() throws {
        var file = File()
        file.add(Self.docker("x", "stderr"))
        // 3-byte characters: the limit (1024) falls inside one of them.
        let chunk = String(repeating: "€", count: 200)
        for _ in 0..<5 { file.add(Self.docker(chunk, "stdout")) }
        file.add(Self.docker("end\n", "stdout"))
        file.add(Self.docker("y\n", "stderr"))
        let (records, joiner) = Self.join(file, limit: 1024)
        let pieces = records.filter { $0.fields["stream"] == .string("stdout") }
        #expect(pieces.map { $0.fields["line_part"] } == [.string("1"), .string("2"), .string("3/3")])
        #expect(pieces.allSatisfy { $0.message.utf8.count <= 1024 })
        #expect(pieces.map(\.message).joined() == String(repeating: chunk, count: 5) + "end")
        #expect(pieces[0].message.utf8.count == 1023, "cut before the character the limit falls in")
        #expect(pieces[0].offset == file.lines[1].offset)
        // A later piece starts inside an entry: its offset plus the piece's start in its text.
        #expect(pieces[1].offset == file.lines[2].offset + 423 && pieces[2].offset == file.lines[4].offset + 246)
        #expect(Set(records.map(\.offset)).count == records.count, "origins are unique")
        // The stderr partial held all along keeps every position at its entry.
        #expect(pieces.allSatisfy { $0.resume?.offset == file.lines[0].offset })
        #expect(records.last?.message == "xy" && records.last?.resume?.offset == file.end)
        #expect(!joiner.holdsPartialMessages)
    }

    @Test func onePieceEntryLongerThanTheLimitIsCutToo() throws {
        var file = File(path: "/var/log/pods/ns_pod_uid/app/0.log")
        file.add("2026-12-04T11:20:02Z stdout F " + String(repeating: "a", count: 2500))
        let records = Self.join(file, format: .cri).records
        #expect(records.map(\.message.utf8.count) == [1024, 1024, 452])
        #expect(records.map { $0.fields["line_part"] } == [.string("1"), .string("2"), .string("3/3")])
        #expect(records.map(\.offset) == [0, 1024, 2048], "the line's offset plus the piece's start in its text")
        #expect(records.allSatisfy { $0.fields["container_id"] == nil })
    }

    @Test func aPartialMessageWithoutContinuationIsFlushedAfterTheTimeout() throws {
        var file = File()
        file.add(Self.docker("last words", "stdout"))
        file.add(Self.docker("other\n", "stderr"))
        let early = Self.join(file, flushAfter: .seconds(1))
        #expect(early.records.map(\.message) == ["other"] && early.joiner.holdsPartialMessages)
        #expect(early.records[0].resume?.offset == 0)
        let late = Self.join(file, flushAfter: ContainerLogJoiner.partialTimeout)
        #expect(late.records.map(\.message) == ["other", "last words"] && !late.joiner.holdsPartialMessages)
        #expect(late.records[1].offset == 0 && late.records[1].resume?.offset == file.end)
    }

    @Test func criPartialsAreJoined() throws {
        var file = File(path: "/var/log/containers/web_default_app-0123.log")
        file.add("2026-12-04T11:20:02.000000001Z stdout P one ")
        file.add("2026-12-04T11:20:02.000000002Z stderr F err")
        file.add("2026-12-04T11:20:02.000000003Z stdout P two ")
        file.add("2026-12-04T11:20:02.000000004Z stdout F three")
        let records = Self.join(file, format: .cri).records
        #expect(records.map(\.message) == ["err", "one two three"])
        #expect(records[1].time == Timestamp.parseRFC3339("2026-12-04T11:20:02.000000001Z"))
        #expect(records[1].fields == ["stream": .string("stdout"), "time": .string("2026-12-04T11:20:02.000000001Z")])
        #expect(records.map(\.resume?.offset) == [0, file.end])
    }

    @Test func linesThatAreNoEntryAreKeptAndCounted() throws {
        var file = File()
        file.add(Self.docker("held ", "stdout"))
        file.add("not json")
        file.add(Self.docker("bad time\n", "stderr", time: "soon"))
        file.add(Self.docker("done\n", "stdout"))
        let joined = Self.join(file)
        let records = joined.records
        var joiner = joined.joiner
        #expect(records.map(\.message) == ["not json", "bad time", "held done"])
        #expect(records[0].fields.isEmpty && records[0].time == Self.readTime && records[0].offset == file.lines[1].offset)
        #expect(records[1].time == Self.readTime && records[1].fields["time"] == .string("soon"))
        #expect(records.map(\.resume?.offset) == [0, 0, file.end], "held back behind the partial message")
        let counts = joiner.takeCounts()
        #expect(counts.undecodable == 1 && counts.unreadableTimes == 1)
        #expect(joiner.takeCounts().undecodable == 0)
    }

    @Test func theContainerIDComesFromDockersLayoutOnly() throws {
        for (path, id) in [
            ("/var/lib/docker/containers/4f2a/4f2a-json.log", "4f2a"), ("/data/docker/containers/ab/ab-json.log.3", "ab"),
            ("/var/lib/docker/containers/ab/cd-json.log", nil), ("/var/log/app-json.log", nil),
            ("/var/lib/docker/containers/ab/ab-json.log.x", nil),
        ] as [(String, String?)] {
            var file = File(path: path)
            file.add(Self.docker("x\n"))
            #expect(Self.join(file).records.first?.fields["container_id"] == id.map(FieldValue.string), "\(path)")
        }
    }

    // MARK: JSON lines

    @Test func jsonLinesBecomeMessageAndFields() throws {
        let line = #"{"level":"info","msg":"listening","port":8080,"ratio":0.5,"ok":true,"gone":null,"req":{"id": 7, "tags": ["a", "b"]},"big":1e999}"#
        let parsed = try #require(JSONLines().parse(line))
        #expect(parsed.message == "listening")
        #expect(parsed.fields == [
            "level": .string("info"), "port": .int(8080), "ratio": .double(0.5), "ok": .bool(true),
            "req": .string(#"{"id":7,"tags":["a","b"]}"#), "big": .string("1e999"),
        ])
        // The first present of msg, message, log; the others stay fields.
        #expect(JSONLines().parse(#"{"log":"l","message":"m"}"#)?.message == "m")
        #expect(JSONLines().parse(#"{"log":"l","message":"m"}"#)?.fields == ["log": .string("l")])
        #expect(JSONLines().parse(#"{"message":"m","msg":"first"}"#)?.fields == ["message": .string("m")])
        #expect(JSONLines(messageKey: "event").parse(#"{"event":"start","msg":"x"}"#)?.message == "start")
        #expect(JSONLines(messageKey: "code").parse(#"{"code":42}"#)?.message == "42")
        // Without a message key the line is its own message.
        #expect(JSONLines().parse(#"{"a":1}"#)?.message == #"{"a":1}"#)
        #expect(JSONLines().parse(#"{"msg":null,"a":1}"#)?.message == #"{"msg":null,"a":1}"#)
        #expect(JSONLines().parse(#"{"n":-9223372036854775808,"m":9223372036854775808}"#)?.fields == [
            "n": .int(Int64.min), "m": .double(9223372036854775808),
        ])
        for line in ["not json", "[1]", #"{"a":1"#, #"{"a":01}"#, #"{"a":"\u12"}"#, "{\"a\":\"tab\there\"}", "{} {}"] {
            #expect(JSONLines().parse(line) == nil, "\(line)")
        }
    }

    // MARK: A file source

    @Test func aFileSourceJoinsDockerEntriesAndCountsWhatItCannotRead() throws {
        let dir = try ScratchDirectory()
        try FileManager.default.createDirectory(atPath: dir.path + "/containers/c1", withIntermediateDirectories: true)
        let text = [
            Self.docker("one\n"), Self.docker("two-a ", "stderr"), "garbage", Self.docker("three\n"), Self.docker("two-b\n", "stderr"),
        ].joined(separator: "\n") + "\n"
        try dir.append(text, to: "containers/c1/c1-json.log")
        var config = AgentConfig.FileSourceConfig(id: "docker", paths: [dir.path + "/containers/*/*-json.log"], parse: .dockerJSON)
        config.maxLineBytes = 1024
        let source = FileSource(
            config: config,
            context: SourceContext(agentID: "a1", stateDirectory: dir.path, logger: Logger(label: "test"), runGeneration: "run-1"))
        var batch = BatchBuilder(node: "n", agent: "a1")
        source.scan()
        _ = source.read(budget: 1 << 20, into: &batch)
        let closed = batch.close()
        let records = try BatchCodec.decode(ByteBuffer(bytes: closed.ndjson))
        #expect(records.map(\.message) == ["one", "garbage", "three", "two-a two-b"])
        #expect(records.map { $0.fields["container_id"] } == [.string("c1"), nil, .string("c1"), .string("c1")])
        #expect(closed.positions.map(\.offset) == [Int64(text.utf8.count)])
        let metrics = AgentMetrics()
        var report = SourceReport()
        source.report(into: &report, metrics: metrics)
        var exposition = [UInt8]()
        metrics.registry.emit(into: &exposition)
        #expect(String(decoding: exposition, as: UTF8.self).contains(#"muster_agent_parse_failures_total{parser="docker-json"} 1"#))
        source.stop()
    }

    // MARK: Configuration

    func problem(_ sources: String) -> String {
        do {
            let dir = try ScratchDirectory()
            try dir.append("collector: {token: t}\nsources:\n" + sources, to: "agent.yaml")
            try AgentConfig.load(path: dir.path + "/agent.yaml").validate()
            return "valid"
        } catch {
            return "\(error)"
        }
    }

    @Test func whereEachParserMayBeUsed() {
        #expect(problem("  - {id: d, paths: [/x], parse: docker-json}") == "valid")
        #expect(problem("  - {id: c, paths: [/x], parse: cri}") == "valid")
        #expect(problem("  - {id: j, paths: [/x], parse: json, message_key: event}") == "valid")
        #expect(problem("  - {id: j, type: syslog, listen: [udp://127.0.0.1:5514], parse: json}") == "valid")
        #expect(problem("  - {id: d, type: syslog, listen: [udp://127.0.0.1:5514], parse: docker-json}").contains(
            "syslog source 'd': parse: docker-json is for file sources"))
        #expect(problem("  - {id: c, paths: [/x], parse: cri, multiline: {start: '^x'}}").contains(
            "source 'c': parse: cri joins the runtime's partial entries itself; remove multiline:"))
        #expect(problem("  - {id: h, paths: [/x], parse: haproxy-httplog, message_key: m}").contains(
            "source 'h': message_key: names the message's key of parse: json; this source has parse: haproxy-httplog"))
        #expect(problem("  - {id: p, paths: [/x], message_key: m}").contains("this source has no parse:"))
        #expect(problem("  - {id: j, paths: [/x], parse: json, message_key: ''}").contains("message_key: is empty"))
        #expect(problem("  - {id: x, paths: [/x], parse: xml}").contains("(known: haproxy-httplog, docker-json, cri, json)"))
    }

    @Test func aSyslogSourceReadsJSONMessages() throws {
        var config = AgentConfig.SyslogSourceConfig(id: "s", listen: ["udp://127.0.0.1:5514"], parse: .json)
        config.messageKey = "event"
        let parsed = try #require(config.parse?.parseLine(#"{"event":"up","n":1}"#, messageKey: config.messageKey))
        #expect(parsed.message == "up" && parsed.fields == ["n": .int(1)])
    }
}

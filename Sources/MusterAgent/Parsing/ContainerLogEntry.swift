import MusterWire

/// One line of a container runtime's log file: a piece of what a container wrote to its
/// standard output or error, with the time the runtime received it.
///
/// A runtime writes a long message (over 16 KiB) as several entries; all but the last are
/// partial (`complete` false), and their texts joined are the message (`ContainerLogJoiner`).
public struct ContainerLogEntry: Sendable, Equatable {
    /// `stdout` or `stderr`; an entry naming another stream is not read as an entry, so that a
    /// file can hold at most two partial messages at a time.
    public var stream: String
    /// The entry's text, without the newline ending a complete entry (nor a carriage return
    /// before it).
    public var text: String
    /// false: the message continues in the next entry of the same stream.
    public var complete: Bool
    /// The runtime's time as written, nil when the entry has none (`time` field of the record).
    public var timeText: String?
    /// `timeText` in Unix nanoseconds; nil when there is none or it is not RFC 3339 within the
    /// supported years (the record keeps its read time).
    public var time: Int64?
    /// Docker's `attrs` (labels and environment variables picked by `--log-opt labels=…`) as
    /// compact JSON text.
    public var attrs: String?

    static func isStream(_ name: some StringProtocol) -> Bool { name == "stdout" || name == "stderr" }

    /// A line of Docker's json-file log driver:
    ///
    /// ```
    /// {"log":"GET /health 200\n","stream":"stdout","time":"2026-12-04T11:20:02.123456789Z"}
    /// {"log":"…16 KiB…","stream":"stderr","attrs":{"tag":"web"},"time":"2026-12-04T11:20:02.2Z"}
    /// ```
    ///
    /// `log` ends with a newline unless the entry is partial. Other keys are skipped. nil when
    /// the line is not such an object (no string `log`, no `stdout`/`stderr` `stream`).
    public init?(dockerJSON line: String) {
        var log: String?
        var stream: String?
        var timeText: String?
        var attrs: String?
        let decoded: Bool = JSONScanner.scanning(line, brokenSurrogatePair: .replaced) { scanner in
            do {
                try scanner.wholeObject { key, scanner throws(JSONScanner.Failure) in
                    switch key {
                    case "log" where scanner.atString: log = try scanner.string()
                    case "stream" where scanner.atString: stream = try scanner.string()
                    case "time" where scanner.atString: timeText = try scanner.string()
                    case "attrs": attrs = try scanner.compactText()
                    default: try scanner.skipValue()
                    }
                }
                return true
            } catch {
                return false
            }
        }
        guard decoded, var text = log, let stream, Self.isStream(stream) else { return nil }
        complete = text.utf8.last == UInt8(ascii: "\n")
        if complete {
            text.removeLast()
            if text.utf8.last == UInt8(ascii: "\r") { text.removeLast() }
        }
        self.stream = stream
        self.text = text
        self.timeText = timeText
        time = timeText.flatMap(Timestamp.parseRFC3339)
        self.attrs = attrs == "null" ? nil : attrs
    }

    /// A line of the CRI log format (containerd, CRI-O; what kubelet reads):
    ///
    /// ```
    /// 2026-12-04T11:20:02.123456789Z stdout F GET /health 200
    /// 2026-12-04T11:20:02.123456789+01:00 stderr P …16 KiB…
    /// ```
    ///
    /// The time, the stream, the tag (`P` partial or `F` full, possibly followed by more tags
    /// after a `:`) and the text, separated by single spaces; the line's newline ends the entry.
    /// nil when the line does not have that shape.
    public init?(cri line: String) {
        let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard words.count >= 3, Self.isStream(words[1]) else { return nil }
        let tag = words[2].prefix { $0 != ":" }
        guard tag == "P" || tag == "F" else { return nil }
        let timeText = String(words[0])
        self.timeText = timeText
        time = Timestamp.parseRFC3339(timeText)
        stream = String(words[1])
        complete = tag == "F"
        text = words.count == 4 ? String(words[3]) : ""
        attrs = nil
    }
}

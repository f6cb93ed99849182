import MusterConfigFile

/// How a file source joins physical lines into one record, e.g. a Java stack trace: a line
/// matching `start` begins a record, the lines after it that do not match are appended to it.
public struct MultilineSettings: Sendable, Equatable {
    /// Regular expression a record's first line matches (see `LinePattern` for the syntax).
    public var start: String
    /// A pending record is sent once its file has had no new line for this long.
    public var timeoutMilliseconds: Int = 1000
    public var maxLines: Int = 500
    /// Joined message size at which the record is sent and the next line starts a new one.
    public var maxBytes: Int = 256 << 10

    public init(start: String, timeoutMilliseconds: Int = 1000, maxLines: Int = 500, maxBytes: Int = 256 << 10) {
        self.start = start
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxLines = maxLines
        self.maxBytes = maxBytes
    }

    /// Compiles the pattern and checks the limits; `source` names the source in the message.
    public func validate(source: String) throws(AgentConfigError) {
        do {
            _ = try LinePattern(start)
        } catch {
            throw .invalid("source '\(source)': multiline.start \(error)")
        }
        do {
            try YAMLConfigFile.check(
                timeoutMilliseconds, in: 1...AgentConfig.dayMilliseconds, key: "source '\(source)': multiline.timeout_ms")
            try YAMLConfigFile.check(maxLines, in: 1...1_000_000, key: "source '\(source)': multiline.max_lines")
            try YAMLConfigFile.check(maxBytes, in: 1...(1 << 30), key: "source '\(source)': multiline.max_bytes")
        } catch {
            throw .invalid(error.description)
        }
    }
}

/// A record being joined: its first line's offset and time, the last line's end.
struct PendingRecord {
    var offset: Int64
    var end: Int64
    var time: Int64
    var bytes: [UInt8]
    var lines: Int
    var lastLineAt: ContinuousClock.Instant
}

/// The joining rule, compiled once per tailer; the pending record lives with its generation.
///
/// A record's offset is its first line's offset and its end the last line's end, so the
/// checkpoint (which follows what was handed on) never passes a line still pending here.
struct MultilineJoiner {
    let pattern: LinePattern
    let timeout: Duration
    let maxLines: Int
    let maxBytes: Int

    init(_ settings: MultilineSettings) throws(LinePatternError) {
        pattern = try LinePattern(settings.start)
        timeout = .milliseconds(settings.timeoutMilliseconds)
        maxLines = max(1, settings.maxLines)
        maxBytes = max(1, settings.maxBytes)
    }

    /// Adds one line; `emit` gets every record it completes. `continuation`: a later piece of
    /// a line cut at the line limit, never the start of a record.
    func add(
        _ line: UnsafeBufferPointer<UInt8>, offset: Int64, end: Int64, time: Int64, continuation: Bool,
        now: ContinuousClock.Instant, pending: inout PendingRecord?, emit: (PendingRecord) -> Void
    ) {
        let starts = !continuation && pattern.matches(line)
        // No `if let`: a second reference to the bytes would make each append copy them.
        if pending != nil {
            if starts || pending!.bytes.count + 1 + line.count > maxBytes {
                emit(pending!)
                pending = nil
            } else {
                // Mutated in place (no copy of the bytes so far).
                pending!.bytes.append(UInt8(ascii: "\n"))
                pending!.bytes.append(contentsOf: line)
                pending!.lines += 1
                pending!.end = end
                pending!.lastLineAt = now
                if pending!.lines >= maxLines {
                    emit(pending!)
                    pending = nil
                }
                return
            }
        }
        // Lines before the first start line (a file that begins mid-record) form a record too.
        var bytes = [UInt8]()
        bytes.reserveCapacity(max(line.count, 256))
        bytes.append(contentsOf: line)
        let record = PendingRecord(offset: offset, end: end, time: time, bytes: bytes, lines: 1, lastLineAt: now)
        if maxLines == 1 || bytes.count >= maxBytes {
            emit(record)
        } else {
            pending = record
        }
    }

    func expired(_ pending: PendingRecord, now: ContinuousClock.Instant) -> Bool {
        now - pending.lastLineAt >= timeout
    }
}

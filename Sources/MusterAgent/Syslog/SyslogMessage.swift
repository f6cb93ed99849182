import MusterWire

/// One syslog datagram, parsed: RFC 5424, RFC 3164 (BSD, including HAProxy's variant without
/// a hostname), a bare `<PRI>MSG`, or anything else.
///
/// Parsing never fails: a datagram that fits none of the formats is kept whole, timestamped
/// with its receive time, and marked `.malformed` so the source can count it. A syslog sender
/// cannot be asked to resend, so dropping what we do not understand would lose it for good.
public struct SyslogMessage: Sendable, Equatable {
    public enum Format: String, Sendable {
        /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`
        case rfc5424
        /// `<PRI>Mmm dd hh:mm:ss [HOST] TAG[PID]: MSG` (also with an RFC 3339 timestamp)
        case rfc3164
        /// `<PRI>MSG`: a priority and nothing else we recognise (HAProxy's `format short`).
        case bare
        /// No valid `<PRI>`, or a broken RFC 5424 header: `message` is the whole datagram.
        case malformed
    }

    public var format: Format
    /// 0…23; nil when the datagram has no valid `<PRI>`.
    public var facility: Int?
    /// 0 (emerg) … 7 (debug); nil when the datagram has no valid `<PRI>`.
    public var severity: Int?
    /// Unix nanoseconds: the message's own timestamp when it has one we can read, else receive time.
    public var time: Int64
    /// The header has a timestamp that names no time we keep (not a date, or a year outside
    /// `Timestamp.supportedYears`): `time` is the receive time, and the source counts it.
    public var timeUnreadable: Bool
    public var hostname: String?
    /// RFC 5424 APP-NAME, or RFC 3164's TAG without its `[PID]`.
    public var appName: String?
    public var procID: String?
    public var msgID: String?
    /// RFC 5424 STRUCTURED-DATA as received (`[id k="v"]…`); nil for `-` and the other formats.
    public var structuredData: String?
    /// What the sender logged (the MSG part), without header, BOM or trailing newline/NUL.
    public var message: String

    public static let facilityNames = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
        "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]
    public static let severityNames = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    public init(
        format: Format, facility: Int? = nil, severity: Int? = nil, time: Int64, timeUnreadable: Bool = false,
        hostname: String? = nil, appName: String? = nil, procID: String? = nil, msgID: String? = nil,
        structuredData: String? = nil, message: String
    ) {
        self.format = format
        self.facility = facility
        self.severity = severity
        self.time = time
        self.timeUnreadable = timeUnreadable
        self.hostname = hostname
        self.appName = appName
        self.procID = procID
        self.msgID = msgID
        self.structuredData = structuredData
        self.message = message
    }

    public init(parsing text: String, receivedAt: Int64) {
        var text = text
        self = text.withUTF8 { SyslogMessage(parsing: UnsafeRawBufferPointer($0), receivedAt: receivedAt) }
    }

    /// Parses one datagram's bytes. Invalid UTF-8 is decoded with U+FFFD, never rejected.
    public init(parsing datagram: UnsafeRawBufferPointer, receivedAt: Int64) {
        var parser = Parser(bytes: datagram.assumingMemoryBound(to: UInt8.self), receivedAt: receivedAt)
        self = parser.parse()
    }

    /// The header as record fields: `facility`, `severity` (names), `host`, `app`, `procid`,
    /// `msgid` and `sd`, each only when the message has it.
    public var fields: [String: FieldValue] {
        var fields: [String: FieldValue] = [:]
        if let facility { fields["facility"] = .string(Self.facilityNames[facility]) }
        if let severity { fields["severity"] = .string(Self.severityNames[severity]) }
        if let hostname { fields["host"] = .string(hostname) }
        if let appName { fields["app"] = .string(appName) }
        if let procID { fields["procid"] = .string(procID) }
        if let msgID { fields["msgid"] = .string(msgID) }
        if let structuredData { fields["sd"] = .string(structuredData) }
        return fields
    }
}

/// A single pass over the datagram's bytes; strings are made only for the parts kept.
private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    let receivedAt: Int64
    /// Past the last byte that is not a trailing newline, CR or NUL.
    let end: Int
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64) {
        self.bytes = bytes
        self.receivedAt = receivedAt
        var end = bytes.count
        while end > 0, [0x0A, 0x0D, 0x00].contains(bytes[end - 1]) { end -= 1 }
        self.end = end
    }

    private static let space = UInt8(ascii: " ")

    /// A header's timestamp: a time, or one that is there but names no time we keep.
    private enum Stamp {
        case time(Int64)
        case unreadable
    }

    /// The message's time and whether it had to be the receive time for want of a readable stamp.
    private func timing(of stamp: Stamp) -> (time: Int64, unreadable: Bool) {
        switch stamp {
        case .time(let time): (time, false)
        case .unreadable: (receivedAt, true)
        }
    }

    mutating func parse() -> SyslogMessage {
        guard let priority = parsePriority() else { return malformed(priority: nil) }
        let facility = priority / 8
        let severity = priority % 8
        let afterPriority = index
        if startsWith("1 ") {
            index += 2
            guard var message = parseRFC5424() else { return malformed(priority: priority) }
            message.facility = facility
            message.severity = severity
            return message
        }
        if var message = parseRFC3164() {
            message.facility = facility
            message.severity = severity
            return message
        }
        index = afterPriority
        return SyslogMessage(format: .bare, facility: facility, severity: severity, time: receivedAt, message: text(index, end))
    }

    private func malformed(priority: Int?) -> SyslogMessage {
        SyslogMessage(
            format: .malformed, facility: priority.map { $0 / 8 }, severity: priority.map { $0 % 8 }, time: receivedAt,
            message: text(0, end))
    }

    // MARK: Pieces

    /// `<` 1-3 digits `>`, 0…191 (facility 0…23 × 8 + severity 0…7).
    private mutating func parsePriority() -> Int? {
        guard end >= 3, bytes[0] == UInt8(ascii: "<") else { return nil }
        var value = 0
        var position = 1
        while position < end, position <= 3, let digit = Self.digit(bytes[position]) {
            value = value * 10 + digit
            position += 1
        }
        guard position > 1, position < end, bytes[position] == UInt8(ascii: ">"), value <= 191 else { return nil }
        index = position + 1
        return value
    }

    /// After `<PRI>1 `: five space-separated header words, then structured data, then the message.
    private mutating func parseRFC5424() -> SyslogMessage? {
        var words: [String?] = []
        for _ in 0..<5 {
            guard let word = nextWord(), index < end, bytes[index] == Self.space else { return nil }
            index += 1
            words.append(word == "-" ? nil : word)
        }
        // A timestamp we cannot read is not worth losing the message over: receive time instead.
        let (time, timeUnreadable) = words[0].map { timing(of: Timestamp.parseRFC3339($0).map(Stamp.time) ?? .unreadable) }
            ?? (receivedAt, false)
        var structuredData: String?
        if index < end, bytes[index] == UInt8(ascii: "-") {
            index += 1
        } else {
            let start = index
            guard skipStructuredData() else { return nil }
            structuredData = text(start, index)
        }
        if index < end {
            guard bytes[index] == Self.space else { return nil }
            index += 1
        }
        // RFC 5424 marks a UTF-8 message with a byte order mark; it is not part of the text.
        if end - index >= 3, bytes[index] == 0xEF, bytes[index + 1] == 0xBB, bytes[index + 2] == 0xBF { index += 3 }
        return SyslogMessage(
            format: .rfc5424, time: time, timeUnreadable: timeUnreadable, hostname: words[1], appName: words[2], procID: words[3], msgID: words[4],
            structuredData: structuredData, message: text(index, end))
    }

    /// One or more `[ID param="value" …]`; inside quotes `\"`, `\\` and `\]` are escapes, so a
    /// `]` there does not end the element.
    private mutating func skipStructuredData() -> Bool {
        var elements = 0
        while index < end, bytes[index] == UInt8(ascii: "[") {
            index += 1
            var quoted = false
            var closed = false
            while index < end {
                let byte = bytes[index]
                index += 1
                if quoted {
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                    } else if byte == UInt8(ascii: "\"") {
                        quoted = false
                    }
                } else if byte == UInt8(ascii: "\"") {
                    quoted = true
                } else if byte == UInt8(ascii: "]") {
                    closed = true
                    break
                }
            }
            guard closed else { return false }
            elements += 1
        }
        return elements > 0 && index <= end
    }

    /// `Mmm dd hh:mm:ss` (or an RFC 3339 timestamp), then an optional HOST, then TAG[PID]: .
    /// HAProxy sends no HOST unless `log-send-hostname` is set, so a first word that looks
    /// like a tag is taken as the tag.
    private mutating func parseRFC3164() -> SyslogMessage? {
        let start = index
        let stamp: Stamp
        if let bsd = parseBSDTimestamp() {
            stamp = bsd
        } else if let word = nextWord(), let rfc3339 = Self.rfc3339Stamp(word) {
            stamp = rfc3339
        } else {
            index = start
            return nil
        }
        guard index == end || bytes[index] == Self.space else {
            index = start
            return nil
        }
        skipSpaces()
        let (time, timeUnreadable) = timing(of: stamp)
        var message = SyslogMessage(format: .rfc3164, time: time, timeUnreadable: timeUnreadable, message: "")
        let firstStart = index
        guard let first = nextWord() else { return message }
        if takeTag(first, into: &message) {
            skipOneSpace()
        } else if index < end {
            // First word is the host; the tag, when the next word looks like one, follows.
            message.hostname = first
            skipSpaces()
            let secondStart = index
            if let second = nextWord(), takeTag(second, into: &message) {
                skipOneSpace()
            } else {
                index = secondStart
            }
        } else {
            // One word and no tag: that word is the message, not a host.
            index = firstStart
        }
        message.message = text(index, end)
        return message
    }

    /// `name:` or `name[pid]:`
    private func takeTag(_ word: String, into message: inout SyslogMessage) -> Bool {
        guard word.count > 1, word.hasSuffix(":") else { return false }
        let tag = word.dropLast()
        if tag.hasSuffix("]"), let open = tag.firstIndex(of: "[") {
            let name = tag[..<open]
            let pid = tag[tag.index(after: open)..<tag.index(before: tag.endIndex)]
            guard !name.isEmpty, !name.contains("]"), !pid.isEmpty, !pid.contains("[") else { return false }
            message.appName = String(name)
            message.procID = String(pid)
            return true
        }
        guard !tag.contains("["), !tag.contains("]") else { return false }
        message.appName = String(tag)
        return true
    }

    /// `Nov 22 04:19:28` or `Nov  2 04:19:28`. BSD syslog has no year or zone: the year is the
    /// receive time's (UTC), or the one before when that would put the message more than a
    /// day in the future (a December message received in January).
    private mutating func parseBSDTimestamp() -> Stamp? {
        guard end - index >= 15 else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let month = months.firstIndex(where: { name in
            name.utf8.elementsEqual(UnsafeBufferPointer(rebasing: bytes[index..<index + 3]))
        }).map({ $0 + 1 }), bytes[index + 3] == Self.space
        else { return nil }
        let tens = bytes[index + 4] == Self.space ? 0 : Self.digit(bytes[index + 4])
        guard let tens, let ones = Self.digit(bytes[index + 5]), bytes[index + 6] == Self.space,
            let hour = number(at: index + 7), bytes[index + 9] == UInt8(ascii: ":"),
            let minute = number(at: index + 10), bytes[index + 12] == UInt8(ascii: ":"),
            let second = number(at: index + 13)
        else { return nil }
        let day = tens * 10 + ones
        guard (1...31).contains(day), hour < 24, minute < 60, second <= 60 else { return nil }
        index += 15
        let received = receivedAt / Timestamp.nanosPerSecond
        let year = Timestamp.year(ofUnixSeconds: received)
        // A date that does not exist that year (Feb 29) or falls outside the supported years
        // is unreadable: the message keeps its receive time.
        guard var stamp = Timestamp.nanos(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return .unreadable }
        if stamp / Timestamp.nanosPerSecond > received + 86_400 {
            guard let earlier = Timestamp.nanos(year: year - 1, month: month, day: day, hour: hour, minute: minute, second: second)
            else { return .unreadable }
            stamp = earlier
        }
        return .time(stamp)
    }

    /// An RFC 3339 timestamp in place of BSD's: its time, `.unreadable` when the word has the
    /// shape of one (`2026-11-21T…`) but names no time we keep (year 9999), nil when it is
    /// not a timestamp at all.
    private static func rfc3339Stamp(_ word: String) -> Stamp? {
        if let time = Timestamp.parseRFC3339(word) { return .time(time) }
        let shape = Array(word.utf8.prefix(11))
        guard shape.count == 11, shape[4] == UInt8(ascii: "-"), shape[7] == UInt8(ascii: "-"),
            "Tt".utf8.contains(shape[10]),
            [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ digit(shape[$0]) != nil })
        else { return nil }
        return .unreadable
    }

    // MARK: Bytes

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= 48 && byte <= 57 ? Int(byte - 48) : nil
    }

    private func number(at position: Int) -> Int? {
        guard let tens = Self.digit(bytes[position]), let ones = Self.digit(bytes[position + 1]) else { return nil }
        return tens * 10 + ones
    }

    private func startsWith(_ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard end - index >= count else { return false }
        return (0..<count).allSatisfy { bytes[index + $0] == prefix.utf8Start[$0] }
    }

    /// The bytes up to the next space (or the end); nil when there are none.
    private mutating func nextWord() -> String? {
        let start = index
        while index < end, bytes[index] != Self.space { index += 1 }
        return index > start ? text(start, index) : nil
    }

    private mutating func skipSpaces() {
        while index < end, bytes[index] == Self.space { index += 1 }
    }

    private mutating func skipOneSpace() {
        if index < end, bytes[index] == Self.space { index += 1 }
    }

    private func text(_ from: Int, _ to: Int) -> String {
        guard from < to else { return "" }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self)
    }
}

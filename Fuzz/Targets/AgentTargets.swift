import MusterAgent
import MusterWire

extension FuzzTarget {
    /// A fixed receive time, so that a corpus input replays the same way every time.
    static let receivedAt: Int64 = 1_795_293_110_250_000_000

    /// The start of a line the agent tails: an s6-log label is recognised under `format: auto`.
    static let tai64n = FuzzTarget(
        name: "tai64n", maxLength: 64, summary: "TAI64N.decode (s6-log labels at the start of a tailed line)"
    ) { input in
        guard let nanos = TAI64N.decode(input) else { return }
        // The line's time goes on the wire, where the collector refuses anything else.
        precondition(Timestamp.supportedRange.contains(nanos), "decoded \(nanos), outside the supported range")
    }

    /// One UDP datagram or one TCP/Unix-socket frame: RFC 5424, RFC 3164 and what lies between.
    static let syslog = FuzzTarget(
        name: "syslog", maxLength: 2048, summary: "SyslogMessage (RFC 5424 and RFC 3164 datagrams) and its fields"
    ) { input in
        let message = SyslogMessage(parsing: input, receivedAt: receivedAt)
        _ = message.fields
        precondition(Timestamp.supportedRange.contains(message.time), "message time \(message.time), outside the supported range")
    }

    /// A line of a source with `parse: haproxy-httplog`, raw or behind a syslog header.
    static let httplog = FuzzTarget(
        name: "httplog", maxLength: 1024, summary: "HAProxyHTTPLog (option httplog lines) and its fields"
    ) { input in
        _ = LineParser.haproxyHTTPLog.parseLine(input.text)
    }
}

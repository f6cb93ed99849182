import MusterConfigFile
import MusterWire

extension AgentConfig {
    /// A `sources:` entry of `type: syslog`: a listener for syslog datagrams, e.g. HAProxy's
    /// `log` lines.
    public struct SyslogSourceConfig: SourceConfig {
        public var id: String
        /// `udp://HOST:PORT` and/or `unix:///absolute/path` (see `SyslogListenAddress`).
        public var listen: [String]
        /// Applied to each message's MSG part (the header becomes fields of its own).
        public var parse: LineParser?
        /// `message_key:` of `parse: json`: the key holding the message (nil: `msg`, `message`, `log`).
        public var messageKey: String?
        /// Messages held in memory for the batcher; when full, the socket is not read.
        public var bufferMessages: Int = 50_000

        public init(id: String, listen: [String], parse: LineParser? = nil, bufferMessages: Int = 50_000) {
            self.id = id
            self.listen = listen
            self.parse = parse
            self.bufferMessages = bufferMessages
        }

        public static let type = "syslog"
        public static let keys = ["listen", "buffer_messages"]

        public struct Section: Decodable, Sendable {
            var listen: [String]?
            var buffer_messages: Int?
        }

        public init(entry: SourceEntry, section: Section, relativeTo directory: String) throws(AgentConfigError) {
            guard let listen = section.listen else {
                throw .invalid("source '\(entry.id)': type syslog needs listen: [udp://HOST:PORT, unix:///path]")
            }
            try entry.refuseKeysOfOtherTypes(takes: "listen")
            self.init(id: entry.id, listen: listen, parse: entry.parse)
            messageKey = entry.messageKey
            if let value = section.buffer_messages { bufferMessages = value }
        }

        /// Listen addresses well-formed, and each bound by one source only.
        public func validate(claims: inout SourceClaims) throws(AgentConfigError) {
            if let parse, parse.joinsEntries {
                throw .invalid(
                    "syslog source '\(id)': parse: \(parse.rawValue) is for file sources: it joins a container's partial entries, which follow each other in its log file, not in datagrams")
            }
            guard !listen.isEmpty else {
                throw .invalid("syslog source '\(id)' has no listen addresses (e.g. listen: [udp://127.0.0.1:5514])")
            }
            for text in listen {
                let address: SyslogListenAddress
                do {
                    address = try SyslogListenAddress(parsing: text)
                } catch {
                    throw .invalid("syslog source '\(id)': \(error)")
                }
                // Port 0 (any free port) is for tests; HAProxy's `log` line needs a known port.
                if case .udp(_, 0) = address {
                    throw .invalid("syslog source '\(id)': invalid listen address '\(text)': the port must be a number from 1 to 65535")
                }
                guard claims.claim(resource: address.description) else {
                    throw .invalid("syslog source '\(id)': listen address '\(text)' is used twice")
                }
            }
        }

        public func checkRanges() throws(YAMLConfigFile.OutOfRange) {
            try YAMLConfigFile.check(bufferMessages, in: 1...10_000_000, key: "syslog source '\(id)': buffer_messages")
        }

        /// A listening source: its addresses are bound now, or the error says which could not be.
        public func makeSource(_ context: SourceContext) throws -> any LogSource {
            let source = SyslogSource(
                config: self, agentID: context.agentID, logger: context.logger, runGeneration: context.runGeneration)
            try source.start()
            return source
        }
    }

    /// The syslog sources among `sources`.
    public var syslogSources: [SyslogSourceConfig] { sources.compactMap { $0 as? SyslogSourceConfig } }
}

/// A syslog source in the pipeline: its input does not wait (a datagram not received is
/// dropped by the kernel), so it is drained every round, and once more after `stop`.
extension SyslogSource: LogSource {
    public var id: String { sourceID }
    public var inputWaits: Bool { false }

    public func scan() {}

    public func read(budget: Int, into batch: inout BatchBuilder) -> Int {
        read(budget: budget) { line in
            batch.append(
                SourceRecord(time: line.time, generation: runGeneration, offset: line.sequence, message: line.message, fields: line.fields),
                source: sourceID)
        }
    }

    public func report(into report: inout SourceReport, metrics: AgentMetrics) {
        let (now, before) = countersSinceLastReport()
        metrics.syslogReceived.increment(by: Int64(now.received - before.received))
        metrics.syslogMalformed.increment(by: Int64(now.malformed - before.malformed))
        metrics.syslogUnreadableTimes.increment(by: Int64(now.unreadableTimes - before.unreadableTimes))
        metrics.syslogKernelDrops.increment(by: Int64(now.kernelDrops - before.kernelDrops))
    }
}

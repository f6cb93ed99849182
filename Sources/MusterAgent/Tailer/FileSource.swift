import Logging
import MusterConfigFile
import MusterWire

extension AgentConfig {
    /// A `sources:` entry of `type: file` (the default): files named by paths and globs.
    public struct FileSourceConfig: SourceConfig {
        public var id: String
        public var paths: [String]
        public var format: LineFormat = .auto
        /// Lines parsed into structured fields as they are read (none: the message only).
        public var parse: LineParser?
        /// `message_key:` of `parse: json`: the key holding the message (nil: `msg`, `message`, `log`).
        public var messageKey: String?
        /// Joins lines into records (stack traces); off unless configured.
        public var multiline: MultilineSettings?
        /// How long a renamed or deleted file is kept open at most, even while still written to.
        public var maxOrphanOpenMilliseconds: Int = 60_000
        /// Longest line kept in one record; see `overlongLines` for what happens to a longer one.
        public var maxLineBytes: Int = 256 << 10
        /// What a line longer than `maxLineBytes` becomes.
        public var overlongLines: OverlongLines = .split

        public init(
            id: String, paths: [String], format: LineFormat = .auto, parse: LineParser? = nil,
            multiline: MultilineSettings? = nil, maxOrphanOpenMilliseconds: Int = 60_000
        ) {
            self.id = id
            self.paths = paths
            self.format = format
            self.parse = parse
            self.multiline = multiline
            self.maxOrphanOpenMilliseconds = maxOrphanOpenMilliseconds
        }

        public static let type = "file"
        public static let label = "source"
        public static let keys = ["paths", "format", "multiline", "max_orphan_open_ms", "max_line_bytes", "overlong_lines"]

        public struct Section: Decodable, Sendable {
            /// `multiline:`.
            struct Multiline: Decodable {
                var start: String
                var timeout_ms: Int?
                var max_lines: Int?
                var max_bytes: Int?
            }
            var paths: [String]?
            var format: LineFormat?
            var multiline: Multiline?
            var max_orphan_open_ms: Int?
            var max_line_bytes: Int?
            var overlong_lines: OverlongLines?
        }

        public init(entry: SourceEntry, section: Section, relativeTo directory: String) throws(AgentConfigError) {
            guard let paths = section.paths else { throw .invalid("source '\(entry.id)': type file needs paths: [...]") }
            try entry.refuseKeysOfOtherTypes(takes: "paths")
            self.init(id: entry.id, paths: paths, format: section.format ?? .auto, parse: entry.parse)
            messageKey = entry.messageKey
            if let multiline = section.multiline {
                var settings = MultilineSettings(start: multiline.start)
                if let value = multiline.timeout_ms { settings.timeoutMilliseconds = value }
                if let value = multiline.max_lines { settings.maxLines = value }
                if let value = multiline.max_bytes { settings.maxBytes = value }
                // A bad pattern is reported now, naming the source, not when the first line arrives.
                try settings.validate(source: entry.id)
                self.multiline = settings
            }
            if let value = section.max_orphan_open_ms { maxOrphanOpenMilliseconds = value }
            if let value = section.max_line_bytes { maxLineBytes = value }
            if let value = section.overlong_lines { overlongLines = value }
        }

        public func validate(claims: inout SourceClaims) throws(AgentConfigError) {
            guard !paths.isEmpty else { throw .invalid("source '\(id)' has no paths") }
            try multiline?.validate(source: id)
            if let parse, parse.joinsEntries, multiline != nil {
                throw .invalid(
                    "source '\(id)': parse: \(parse.rawValue) joins the runtime's partial entries itself; remove multiline:, which joins raw lines")
            }
        }

        public func checkRanges() throws(YAMLConfigFile.OutOfRange) {
            try YAMLConfigFile.check(
                maxOrphanOpenMilliseconds, in: 1...AgentConfig.dayMilliseconds, key: "source '\(id)': max_orphan_open_ms")
            // Below the collector's default limit on one NDJSON line (1 MiB), with room for escaping.
            try YAMLConfigFile.check(maxLineBytes, in: 1024...(512 << 10), key: "source '\(id)': max_line_bytes")
        }

        public func makeSource(_ context: SourceContext) -> any LogSource {
            FileSource(config: self, context: context)
        }
    }

    /// What a file source does with a line longer than its `max_line_bytes`.
    public enum OverlongLines: String, Sendable, Codable {
        /// Cut into records of `max_line_bytes`, each marked with its `line_part`.
        case split
        /// Keep the first `max_line_bytes` in one record marked `truncated`; skip the rest.
        case truncate
    }

    /// The file sources among `sources`.
    public var fileSources: [FileSourceConfig] { sources.compactMap { $0 as? FileSourceConfig } }
}

/// A file source: its `FileTailer`, whose lines go through the source's parser into the batch.
/// Unread lines wait in their files; where each file resumes is its checkpoint.
public final class FileSource: LogSource {
    public let config: AgentConfig.FileSourceConfig
    let tailer: FileTailer
    /// `tailer.overlongLinesSeen` when last added to the metrics.
    private var overlongLinesReported = 0
    /// With `parse: docker-json` or `cri`: the runtime's partial entries joined into records.
    private var joiner: ContainerLogJoiner?
    /// Lines the parser did not recognise since the last report (the joiner counts its own).
    private var undecodableLines = 0

    /// Follows the files of `config`, with its state under the context's state directory.
    public init(config: AgentConfig.FileSourceConfig, context: SourceContext) {
        self.config = config
        let positions = context.positions
        let id = config.id
        tailer = FileTailer(
            source: config, stateDirectory: context.stateDirectory, settings: context.tailing,
            descriptors: context.descriptors, logger: context.logger
        ) {
            positions.position(of: $0, source: id)
        }
        if let parser = config.parse, parser.joinsEntries {
            joiner = ContainerLogJoiner(format: parser, maxMessageBytes: config.maxLineBytes)
        }
    }

    public var id: String { config.id }
    public var inputWaits: Bool { true }

    public func scan() { tailer.scan() }

    public func read(budget: Int, into batch: inout BatchBuilder) -> Int {
        let id = config.id
        guard let parser = config.parse else {
            return tailer.read(budget: budget) { line in batch.append(SourceRecord(marking: line), source: id) }
        }
        guard var joiner else {
            let messageKey = config.messageKey
            return tailer.read(budget: budget) { line in
                guard line.piece == nil, let parsed = parser.parseLine(line.message, messageKey: messageKey) else {
                    if line.piece == nil { undecodableLines += 1 }
                    batch.append(SourceRecord(marking: line), source: id)
                    return
                }
                var record = SourceRecord(line, fields: parsed.fields)
                record.message = parsed.message
                batch.append(record, source: id)
            }
        }
        // Taken out while reading, so that it is changed in place, not copied.
        self.joiner = nil
        defer { self.joiner = joiner }
        let now = ContinuousClock.now
        let taken = tailer.read(budget: budget) { line in
            // A piece of an overlong line is no whole entry: kept as it is.
            guard line.piece == nil else {
                batch.append(joiner.passing(SourceRecord(marking: line), of: line.position), source: id)
                return
            }
            joiner.add(line, now: now) { batch.append($0, source: id) }
        }
        // Read to the end of every file: a partial message still waiting may wait for nothing.
        if taken < budget, joiner.holdsPartialMessages {
            joiner.flushWaiting(now: now) { batch.append($0, source: id) }
        }
        return taken
    }

    public func report(into report: inout SourceReport, metrics: AgentMetrics) {
        if let parser = config.parse {
            var undecodable = undecodableLines
            var unreadableTimes = 0
            if let counts = joiner?.takeCounts() {
                undecodable += counts.undecodable
                unreadableTimes = counts.unreadableTimes
            }
            undecodableLines = 0
            if undecodable > 0 { metrics.parseFailures(parser).increment(by: Int64(undecodable)) }
            if unreadableTimes > 0 { metrics.unreadableEntryTimes(parser)?.increment(by: Int64(unreadableTimes)) }
        }
        report.filesOpen += tailer.openFiles
        report.filesFollowed += tailer.followedFiles
        metrics.overlongLines.increment(by: Int64(tailer.overlongLinesSeen - overlongLinesReported))
        overlongLinesReported = tailer.overlongLinesSeen
        report.orphanedFilesOpen += tailer.orphanedOpen
        report.lagBytes.merge(tailer.lagBytes) { max($0, $1) }
    }

    /// Files are not closed here (the tailer closes them when it goes); what matters is the
    /// tailer's state, saved now.
    public func stop() { tailer.saveState(force: true) }
}

extension SourceRecord {
    /// A line of a file, resuming after its newline.
    init(_ line: TailedLine, fields: [String: FieldValue] = [:]) {
        self.init(
            time: line.time, generation: line.position.name, offset: line.offset, message: line.message, fields: fields,
            resume: ResumePoint(generation: line.position, offset: line.endOffset))
    }

    /// A line as it is, marked when it is a piece of an overlong line (whatever the parser:
    /// a piece is never parsed).
    init(marking line: TailedLine) {
        self.init(line, fields: line.piece.map { [$0.field.key: .string($0.field.value)] } ?? [:])
    }
}

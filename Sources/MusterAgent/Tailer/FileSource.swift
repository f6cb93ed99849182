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
        /// Joins lines into records (stack traces); off unless configured.
        public var multiline: MultilineSettings?
        /// How long a renamed or deleted file is kept open at most, even while still written to.
        public var maxOrphanOpenMilliseconds: Int = 60_000

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
        public static let keys = ["paths", "format", "multiline", "max_orphan_open_ms"]

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
        }

        public init(entry: SourceEntry, section: Section, relativeTo directory: String) throws(AgentConfigError) {
            guard let paths = section.paths else { throw .invalid("source '\(entry.id)': type file needs paths: [...]") }
            try entry.refuseKeysOfOtherTypes(takes: "paths")
            self.init(id: entry.id, paths: paths, format: section.format ?? .auto, parse: entry.parse)
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
        }

        public func validate(claims: inout SourceClaims) throws(AgentConfigError) {
            guard !paths.isEmpty else { throw .invalid("source '\(id)' has no paths") }
            try multiline?.validate(source: id)
        }

        public func checkRanges() throws(YAMLConfigFile.OutOfRange) {
            try YAMLConfigFile.check(
                maxOrphanOpenMilliseconds, in: 1...AgentConfig.dayMilliseconds, key: "source '\(id)': max_orphan_open_ms")
        }

        public func makeSource(_ context: SourceContext) -> any LogSource {
            FileSource(config: self, context: context)
        }
    }

    /// The file sources among `sources`.
    public var fileSources: [FileSourceConfig] { sources.compactMap { $0 as? FileSourceConfig } }
}

/// A file source: its `FileTailer`, whose lines go through the source's parser into the batch.
/// Unread lines wait in their files; where each file resumes is its checkpoint.
public final class FileSource: LogSource {
    public let config: AgentConfig.FileSourceConfig
    let tailer: FileTailer

    /// Follows the files of `config`, with its state under the context's state directory.
    public init(config: AgentConfig.FileSourceConfig, context: SourceContext) {
        self.config = config
        let positions = context.positions
        let id = config.id
        tailer = FileTailer(source: config, stateDirectory: context.stateDirectory, logger: context.logger) {
            positions.position(of: $0, source: id)
        }
    }

    public var id: String { config.id }
    public var inputWaits: Bool { true }

    public func scan() { tailer.scan() }

    public func read(budget: Int, into batch: inout BatchBuilder) -> Int {
        let id = config.id
        guard let parser = config.parse else {
            return tailer.read(budget: budget) { batch.append(SourceRecord($0), source: id) }
        }
        return tailer.read(budget: budget) { line in
            batch.append(SourceRecord(line, fields: parser.fields(line.message)), source: id)
        }
    }

    public func report(into report: inout SourceReport, metrics: AgentMetrics) {
        report.filesOpen += tailer.trackedPaths.count
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
}

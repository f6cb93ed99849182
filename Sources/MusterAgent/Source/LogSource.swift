import Logging
import MusterWire
import Synchronization

/// Where records come from: a set of files, a syslog socket, the event journal. A
/// `SourceConfig` builds one; the pipeline's batcher then scans and reads it until the agent
/// stops. A new kind of source is a type conforming to this and a `SourceConfig` that builds
/// it, registered in `AgentComponents`.
///
/// What the pipeline relies on, and what it promises in return:
///
/// - **Ownership.** Once built, a source belongs to the batcher task: `scan`, `read`, `report`
///   and `stop` are called from it, one at a time, never concurrently, so a source keeps its
///   state without locks. Work a source does on a thread of its own (a socket's receive loop)
///   it hands over to these calls itself, safely.
/// - **Records.** `read` appends records to the batch in the order of their input (each
///   file's lines in file order; datagrams in receive order). A record's origin (generation
///   and offset, see `SourceRecord`) is unique within the source and comes out the same
///   whenever the same input is read again, after a crash or a restart: that is how the
///   collector recognises a record sent twice and keeps it once.
/// - **Positions.** A record that can be read again carries its `resume` point: where reading
///   resumes once that record, and every record before it from the same input, is stored. A
///   source reports a position only with a record it hands to the batch, never for input it
///   has read ahead (the start of a line, a multiline record still open), so resuming at any
///   reported position loses nothing. A position is durable once the spool entry holding its
///   record is fsynced and the checkpoint saved after it; the pipeline does both, in that
///   order. Until then a restart resumes at an earlier position, and the collector drops what
///   it receives twice. A record that cannot be read again (a datagram) carries no position:
///   once spooled it is as durable as any other, but what such a source has received and not
///   yet handed over is lost in a crash.
/// - **Budget.** `read(budget:into:)` takes in about `budget` bytes of input (more when one
///   record is longer), hands over the records complete in it, and returns the bytes taken in,
///   which may include the start of a record kept for the next call; 0 means nothing new. The
///   batcher calls it again, with a budget of at least 64 KiB, while the batch has room.
/// - **Waiting.** `inputWaits` says where unread input waits: in its files (true), which the
///   batcher reads in turns, one batch's worth per source and round, so a busy source cannot
///   starve the others; or nowhere (false: datagrams), which the batcher drains every round,
///   closing batches as they fill, and once more after `stop`.
/// - **Stop.** `stop()` ends intake (sockets closed, state saved) and may be called more than
///   once. What was received before it stays readable: after stopping a source whose input
///   does not wait, the batcher reads it until `read` returns 0, and never again.
public protocol LogSource: AnyObject {
    /// The source's id: the `source` of its records' origin and of its checkpoints.
    var id: String { get }
    /// Whether unread input waits safely outside the agent (see the protocol's comment).
    var inputWaits: Bool { get }
    /// Called about once a second, before reading: looks for new input (files that appeared,
    /// rotated, truncated or went away).
    func scan()
    /// Appends the records in about `budget` bytes of new input to `batch`; the bytes taken in.
    func read(budget: Int, into batch: inout BatchBuilder) -> Int
    /// Adds what it has to show on `/metrics`: gauges into `report`, counters into `metrics`.
    func report(into report: inout SourceReport, metrics: AgentMetrics)
    /// Ends intake; see the protocol's comment.
    func stop()
}

/// One record as a source hands it to the batch.
public struct SourceRecord: Sendable {
    /// Unix nanoseconds.
    public var time: Int64
    /// With `offset`, where the record is in its source: the same record read again gets the
    /// same pair. For a file, its generation's name and the record's byte offset; for input
    /// that cannot be read again, the agent's run and a sequence number.
    public var generation: String
    public var offset: Int64
    public var message: String
    public var fields: [String: FieldValue]
    /// Where reading resumes once this record is stored; nil when it cannot be read again.
    public var resume: ResumePoint?

    public init(
        time: Int64, generation: String, offset: Int64, message: String, fields: [String: FieldValue] = [:],
        resume: ResumePoint? = nil
    ) {
        self.time = time
        self.generation = generation
        self.offset = offset
        self.message = message
        self.fields = fields
        self.resume = resume
    }
}

/// Where a file source resumes after a record: the file's generation and the byte after the
/// record. The batch keeps the last one per generation, and the checkpoints move to it once
/// the batch is spooled.
public struct ResumePoint: Hashable, Sendable {
    public var generation: FilePosition.Generation
    public var offset: Int64

    public init(generation: FilePosition.Generation, offset: Int64) {
        self.generation = generation
        self.offset = offset
    }
}

/// What the sources show on `/metrics` as gauges, summed over all of them once a second.
public struct SourceReport: Sendable, Equatable {
    /// Files open for reading.
    public var filesOpen = 0
    /// Files followed, open or closed until they change.
    public var filesFollowed = 0
    /// Files open although renamed away or deleted, to be read to their end.
    public var orphanedFilesOpen = 0
    /// Bytes written and not read yet, by path (the larger when two sources read one file).
    public var lagBytes: [String: Int64] = [:]

    public init() {}
}

/// What a source is built with.
public struct SourceContext: Sendable {
    /// Identifies this agent in origin coordinates.
    public var agentID: String
    /// Where the agent keeps its state; a source keeps its own under it.
    public var stateDirectory: String
    public var logger: Logger
    /// This run of the agent (`run-<start time>`): the generation of records that cannot be
    /// read again, numbered from 0 in each run, so that two runs never collide.
    public var runGeneration: String
    /// Where each input resumes, per the checkpoints.
    public var positions: ResumePositions
    /// How file sources learn about changes.
    public var tailing: TailingSettings
    /// The files all file sources together may hold open; nil: no limit (tests).
    public var descriptors: DescriptorBudget?

    public init(
        agentID: String, stateDirectory: String, logger: Logger, runGeneration: String,
        positions: ResumePositions = ResumePositions(), tailing: TailingSettings = TailingSettings(),
        descriptors: DescriptorBudget? = nil
    ) {
        self.agentID = agentID
        self.stateDirectory = stateDirectory
        self.logger = logger
        self.runGeneration = runGeneration
        self.positions = positions
        self.tailing = tailing
        self.descriptors = descriptors
    }

    /// `run-` and the current time in hex nanoseconds.
    public static func newRunGeneration() -> String { "run-" + String(Timestamp.now(), radix: 16) }
}

/// Where each file a source reads got to: the pipeline's checkpoints as they are now.
///
/// Sources are built before the pipeline runs, the checkpoints are loaded when it starts: until
/// then it knows no position (every file would be read from its start). From then on the spool
/// loop keeps the checkpoints here and moves them as batches are spooled, so that a source built
/// later (added or changed by a reload) resumes where its files got to, not where they were at
/// start.
public final class ResumePositions: Sendable {
    private let checkpoints = Mutex<CheckpointStore?>(nil)

    public init() {}

    /// Called by the pipeline with the checkpoints it loaded.
    func load(_ store: CheckpointStore) {
        checkpoints.withLock { $0 = store }
    }

    /// Moves the checkpoints past a spooled batch's positions; `mark` is the end of its entry.
    /// Called by the spool loop, once the entry is fsynced.
    func advance(_ positions: [FilePosition], spooledThrough mark: Spool.Mark) {
        checkpoints.withLock { store in
            for position in positions { store?.advance(position) }
            store?.spooledThrough = mark
        }
    }

    /// The checkpoints as they are now, to be saved.
    func current() -> CheckpointStore? {
        checkpoints.withLock { $0 }
    }

    /// Where `source` got to in the file; nil: read it from its start.
    public func position(of identity: FileIdentity, source: String) -> FilePosition? {
        checkpoints.withLock { $0?.position(of: identity, source: source) }
    }
}

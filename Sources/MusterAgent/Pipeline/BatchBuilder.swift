import MusterWire

/// The batch being filled: encodes the records sources hand it, and remembers the last
/// position of each file generation among them, which the checkpoints move to once the
/// batch is spooled. Positions come only with records (see `LogSource`), so a closed batch
/// never carries a position past a record it does not hold.
public struct BatchBuilder {
    let node: String
    let agent: String
    /// Bytes reserved for each batch's NDJSON, so that it is usually allocated once.
    private let capacity: Int
    private var encoder: BatchEncoder
    private var positions: [CheckpointStore.Key: FilePosition] = [:]
    /// The position after the last record, kept aside until a record from another file comes:
    /// records arrive in runs per file, so most cost a comparison instead of a hash.
    private var latest: FilePosition?

    init(node: String, agent: String, capacity: Int = BatchEncoder.defaultCapacity) {
        self.node = node
        self.agent = agent
        self.capacity = capacity
        encoder = BatchEncoder(capacity: capacity)
    }

    /// Records in the batch.
    public var count: Int { encoder.count }
    /// Its size as NDJSON, uncompressed.
    public var bytes: Int { encoder.bytes.count }

    /// Adds `record`, read by source `source`.
    public mutating func append(_ record: SourceRecord, source: String) {
        encoder.append(
            time: record.time, node: node,
            origin: Origin(agent: agent, source: source, generation: record.generation, offset: record.offset),
            message: record.message, fields: record.fields)
        guard let resume = record.resume else { return }
        let identity = resume.generation.identity
        let truncations = resume.generation.truncations
        if let latest, latest.identity == identity, latest.truncations == truncations, latest.source == source {
            self.latest!.offset = resume.offset
        } else {
            if let latest { positions[CheckpointStore.Key(latest)] = latest }
            latest = FilePosition(identity: identity, source: source, truncations: truncations, offset: resume.offset)
        }
    }

    /// The batch so far, with its positions; the builder starts over empty.
    mutating func close() -> EncodedBatch {
        if let latest { positions[CheckpointStore.Key(latest)] = latest }
        latest = nil
        let batch = EncodedBatch(ndjson: encoder.bytes, records: encoder.count, positions: Array(positions.values))
        encoder = BatchEncoder(capacity: capacity)
        positions = [:]
        return batch
    }
}

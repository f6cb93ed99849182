import Foundation
import MusterWire
import Synchronization

/// The agent's own notices (the spool was full, damage was found) as records of source
/// `agent`, so they land in the store beside the lines they are about.
///
/// Each run is its own generation (its start time) and numbers its notices, so a notice
/// resent after a crash is recognised like any other line and two runs never collide.
final class NoticeWriter: Sendable {
    static let sourceID = "agent"

    private let node: String
    private let agent: String
    let generation: String
    private let compressionLevel: Int
    private let sequence = Mutex<Int64>(0)

    /// `generation`: this run's (see `SourceContext.runGeneration`).
    init(node: String, agent: String, generation: String, compressionLevel: Int) {
        self.node = node
        self.agent = agent
        self.generation = generation
        self.compressionLevel = compressionLevel
    }

    /// A batch holding one notice, ready for the spool.
    func batch(_ message: String, fields: [String: String]) throws -> OutgoingBatch {
        let offset = sequence.withLock { value in
            defer { value += 1 }
            return value
        }
        var encoder = BatchEncoder(capacity: 512)
        encoder.append(
            time: Timestamp.now(), node: node,
            origin: Origin(agent: agent, source: Self.sourceID, generation: generation, offset: offset),
            message: message, fields: fields.mapValues { .string($0) })
        let encoded = EncodedBatch(ndjson: encoder.bytes, records: encoder.count, positions: [])
        return try encoded.compressed(with: BatchCompressor(level: compressionLevel))
    }
}

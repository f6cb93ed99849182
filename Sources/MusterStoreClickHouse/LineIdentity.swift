import MusterWire

/// A line's identity as the store keys it: (agent, source, generation, offset). Every copy of
/// a line, whichever collector received it, has the same identity.
struct LineIdentity: Hashable, Sendable {
    var agent: String
    var source: String
    var generation: String
    var offset: Int64

    init(_ origin: Origin) {
        self.init(agent: origin.agent, source: origin.source, generation: origin.generation, offset: origin.offset)
    }

    init(agent: String, source: String, generation: String, offset: Int64) {
        self.agent = agent
        self.source = source
        self.generation = generation
        self.offset = offset
    }

    /// The shard (0..<shards) this line is stored on: FNV-1a over the identity, so every
    /// collector sends every copy of a line to the same shard without asking anyone, and lines
    /// spread evenly whatever their sources. From the hash's high half: FNV-1a's low bits mix
    /// poorly (its last byte is XORed into bit 0 and the multiplier is odd, so the parity of
    /// the hash is the parity of the bytes' XOR: with two shards, consecutive offsets always
    /// alternated).
    func shard(of shards: Int) -> Int {
        var hash = fileHash
        var offset = UInt64(bitPattern: offset)
        for _ in 0..<8 {
            hash.add(UInt8(truncatingIfNeeded: offset))
            offset >>= 8
        }
        return Int((hash.value >> 32) % UInt64(max(shards, 1)))
    }

    /// FNV-1a over agent, source and generation, each followed by a 0 byte so that ("ab", "c")
    /// and ("a", "bc") differ.
    private var fileHash: FNV1a {
        var hash = FNV1a()
        for part in [agent, source, generation] {
            hash.add(part.utf8)
            hash.add(0)
        }
        return hash
    }

    /// The stream number readers give lines of this file (`LogLine.stream`): the same for
    /// every line of one agent, source and generation, on every reader.
    var stream: Int64 {
        // Positive, so it reads like the SQLite store's stream numbers.
        return Int64(bitPattern: fileHash.value >> 1)
    }
}

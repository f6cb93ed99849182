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
    /// spread evenly whatever their sources.
    func shard(of shards: Int) -> Int {
        var hash = FNV1a()
        hash.add(agent, source, generation)
        var offset = UInt64(bitPattern: offset)
        for _ in 0..<8 {
            hash.add(UInt8(truncatingIfNeeded: offset))
            offset >>= 8
        }
        return Int(hash.value % UInt64(max(shards, 1)))
    }

    /// The stream number readers give lines of this file (`LogLine.stream`): the same for
    /// every line of one agent, source and generation, on every reader.
    var stream: Int64 {
        var hash = FNV1a()
        hash.add(agent, source, generation)
        // Positive, so it reads like the SQLite store's stream numbers.
        return Int64(bitPattern: hash.value >> 1)
    }
}

/// 64-bit FNV-1a: small, fast, and the same on every machine (Swift's `Hasher` is seeded per
/// process).
private struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ byte: UInt8) {
        value ^= UInt64(byte)
        value = value &* 0x0000_0100_0000_01b3
    }

    /// Each string followed by a 0 byte, so ("ab", "c") and ("a", "bc") differ.
    mutating func add(_ parts: String...) {
        for part in parts {
            for byte in part.utf8 { add(byte) }
            add(0)
        }
    }
}

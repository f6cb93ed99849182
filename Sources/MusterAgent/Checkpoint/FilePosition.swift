/// How far a file has been read into the spool: reading resumes here after a restart.
public struct FilePosition: Hashable, Sendable, Codable {
    public var identity: FileIdentity
    /// The source that read it: two sources may tail the same file, each at its own pace.
    /// Nil in checkpoints written before sources were told apart.
    public var source: String?
    /// Times the file was seen truncated in place; part of the generation.
    public var truncations: Int
    /// Offset just past the last spooled line.
    public var offset: Int64

    public init(identity: FileIdentity, source: String? = nil, truncations: Int, offset: Int64) {
        self.identity = identity
        self.source = source
        self.truncations = truncations
        self.offset = offset
    }

    /// A file's generation: identity plus truncation count, and its name on the wire.
    public struct Generation: Hashable, Sendable {
        public let identity: FileIdentity
        public let truncations: Int
        /// `inode-fingerprint`, with `.N` after the N-th truncation.
        public let name: String

        public init(identity: FileIdentity, truncations: Int) {
            self.identity = identity
            self.truncations = truncations
            self.name = truncations == 0 ? identity.generation : identity.generation + "." + String(truncations)
        }
    }
}

/// What happened to one batch: records newly stored, and records the store already had.
public struct IngestCounts: Sendable, Equatable, Codable {
    public var accepted: Int
    public var duplicates: Int

    public init(accepted: Int, duplicates: Int) {
        self.accepted = accepted
        self.duplicates = duplicates
    }
}

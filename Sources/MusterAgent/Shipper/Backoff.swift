/// Capped exponential backoff with full jitter: attempt n waits a random time in
/// [0, min(cap, initial · 2ⁿ)], so agents that lost the collector together do not all
/// come back in the same instant.
public struct Backoff: Sendable {
    public var initial: Duration
    public var cap: Duration

    public init(initial: Duration, cap: Duration) {
        self.initial = initial
        self.cap = cap
    }

    public func ceiling(attempt: Int) -> Duration {
        let factor = 1 << min(attempt, 30)
        let grown = initial * factor
        return grown > cap ? cap : grown
    }

    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        let nanos = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(1, nanos), using: &generator))
    }
}

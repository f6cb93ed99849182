import MusterWire

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
        // Doubling stops at the cap, so a large `initial` or many attempts never overflow.
        guard initial > .zero else { return .zero }
        var grown = initial
        for _ in 0..<min(max(attempt, 0), 62) where grown < cap { grown += grown }
        return grown > cap ? cap : grown
    }

    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        .nanoseconds(Int64.random(in: 0...max(1, ceiling(attempt: attempt).saturatingNanoseconds), using: &generator))
    }
}

extension Duration {
    /// Whole nanoseconds, negative durations as 0 and those past `Int64.max` nanoseconds
    /// (292 years) as `Int64.max`: for the APIs that take a nanosecond count.
    public var saturatingNanoseconds: Int64 {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .max }
        let (total, overflowAgain) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAgain ? .max : total
    }
}

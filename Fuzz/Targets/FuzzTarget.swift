/// One parser of outside input, driven with arbitrary bytes: by libFuzzer in the fuzz build
/// (`scripts/fuzz`), and over the committed corpus by the unit tests in the normal build.
///
/// A target returns normally for every input, accepted or refused. It traps (a `precondition`)
/// only when the parser broke a promise its callers rely on, such as a decoded time outside
/// `Timestamp.supportedRange`: libFuzzer reports that like any other crash.
public struct FuzzTarget: Sendable {
    /// The name `scripts/fuzz`, `MUSTER_FUZZ_TARGET` and `Fuzz/corpus/<name>` use.
    public let name: String
    /// Longest input worth generating (libFuzzer's `-max_len`): longer inputs only repeat
    /// structure the shorter ones already cover, and cost time per execution.
    public let maxLength: Int
    /// What the target feeds the bytes to, for `muster-fuzz list`.
    public let summary: String
    public let run: @Sendable (UnsafeRawBufferPointer) -> Void

    public static let all: [FuzzTarget] = [
        wireBatch, wireInflate, rfc3339, tai64n, syslog, httplog, dockerJSON, cri, jsonLines, journal, agentConfig,
        collectorConfig, logqTime, clickhouseAnswer, etcdAnswer,
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

extension UnsafeRawBufferPointer {
    /// The input as text the way a reader of that input would see it: invalid UTF-8 becomes U+FFFD.
    var text: String { String(decoding: self, as: UTF8.self) }
}

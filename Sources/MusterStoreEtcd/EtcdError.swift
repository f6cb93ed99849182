/// What went wrong talking to etcd, with what a person can act on.
public enum EtcdError: Error, Equatable, CustomStringConvertible {
    /// The client's endpoints or a request's arguments are wrong; nothing was sent.
    case configuration(String)
    /// No endpoint could serve the request: each address with why (no connection, or
    /// "unavailable": a member without a leader).
    case unreachable([String])
    /// A commit lost to other collectors' commits this many times in a row and gave up.
    case contended(attempts: Int, what: String)
    /// etcd (or whatever answered in its place) refused the request with an HTTP status other
    /// than 200: the gateway's gRPC code and message when the body is its JSON error
    /// (`{"error":…,"code":N,"message":…}`), else the start of the body. etcd's gRPC codes
    /// include 3 (invalid argument: an empty key, too many operations in a txn), 11 (out of
    /// range: a revision compacted away or not yet reached) and 14 (unavailable: no leader, or
    /// a request that timed out inside etcd and may still be applied).
    case refused(endpoint: String, code: Int?, message: String)
    /// The answer came whole and is not what the request asks for (not JSON, a revision that is
    /// not a non-negative integer, a key that is not UTF-8…).
    case unexpectedAnswer(endpoint: String, detail: String)
    /// The request reached the endpoint and the answer never came whole (a timeout, a dropped
    /// connection): it may have been applied. Not sent again anywhere.
    case interrupted(endpoint: String, detail: String)

    public var description: String {
        switch self {
        case .configuration(let detail): detail
        case .unreachable(let attempts): "no etcd endpoint could serve the request (\(attempts.joined(separator: "; ")))"
        case .contended(let attempts, let what):
            "\(what) lost \(attempts) times in a row to other collectors' transactions on the same keys; giving up (is another process rewriting seq?)"
        case .refused(let endpoint, let code, let message):
            "etcd at \(endpoint) refused the request\(code.map { " (code \($0))" } ?? ""): \(message)"
        case .unexpectedAnswer(let endpoint, let detail): "unexpected answer from etcd at \(endpoint): \(detail)"
        case .interrupted(let endpoint, let detail):
            "etcd at \(endpoint) did not finish answering (the request may have been applied): \(detail)"
        }
    }
}

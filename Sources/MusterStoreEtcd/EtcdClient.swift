import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// etcd's v3 key-value API over its HTTP/JSON gateway (`POST /v3/kv/range`, `POST /v3/kv/txn`),
/// the documented one etcd 3.4 and later serve on their client URLs. Keys are UTF-8 text,
/// values bytes. One instance per process; it holds AsyncHTTPClient's connection pool.
///
/// Ranges are linearizable (etcd's default): they see every write acknowledged before they
/// were sent. A request goes first to the endpoint that answered last, then to the others in
/// turn; one that cannot be connected to (refused, no route, no connection within the connect
/// timeout) or that answers "unavailable" (gRPC code 14: a member without a leader, or a
/// request that timed out inside etcd) is passed over. So every transaction sent through this
/// client must be safe to apply twice (Muster's are: each compares a revision or a version it
/// then changes). A request whose answer never came whole is not sent again
/// (`EtcdError.interrupted`), and other refusals (an empty key, a compacted revision) would be
/// the same everywhere.
///
/// `https` endpoints are checked against the system's trust roots; there are no client
/// certificates and no etcd authentication.
public final class EtcdClient: Sendable {
    /// The client URLs (`http://HOST:PORT`), in the order they are tried.
    public let endpoints: [String]
    /// The longest one endpoint may take to answer a request, including the connection.
    public let timeout: TimeAmount
    private let client: HTTPClient
    /// For watch streams, which may go quiet for as long as their session lasts: the same
    /// settings without a read timeout (`watch` bounds each session itself).
    let watchClient: HTTPClient
    /// The endpoint that answered last: a member that is down costs its connect timeout once,
    /// not on every request.
    private let preferred = Mutex(0)

    public init(endpoints: [String], timeout: TimeAmount = .seconds(10)) throws(EtcdError) {
        guard !endpoints.isEmpty else { throw .configuration("an etcd client needs at least one endpoint (http://HOST:PORT)") }
        for endpoint in endpoints {
            guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                let host = url.host, !host.isEmpty, let port = url.port, (1...65_535).contains(port),
                url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil, url.user == nil
            else {
                throw .configuration("'\(endpoint)' is not an etcd client URL (http://HOST:PORT or https://HOST:PORT, nothing after the port)")
            }
        }
        guard timeout > .zero else { throw .configuration("an etcd client's timeout must be positive, not \(timeout)") }
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        // A dead member should cost a few seconds of a request, not all of it, before the next is tried.
        configuration.timeout = .init(connect: min(timeout, .seconds(3)), read: timeout)
        // AsyncHTTPClient otherwise retries a refused connection until the connect timeout:
        // fail it at once, so the next endpoint is tried.
        configuration.connectionPool.retryConnectionEstablishment = false
        // The gateway never redirects; a redirect is something else answering, shown as a refusal.
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        configuration.timeout.read = nil
        watchClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        try? client.syncShutdown()
        try? watchClient.syncShutdown()
    }

    /// The keys from `key` up to `end` (excluded; nil: `key` alone), ascending by key:
    /// `prefixEnd(prefix)` as `end` reads a prefix.
    ///
    /// - Parameters:
    ///   - revision: read the store as it was at this revision (nil: the latest); one that
    ///     has been compacted away is `.refused` with code 11.
    ///   - minModRevision: only keys last written at this revision or later (`count` still
    ///     counts the others).
    ///   - limit: at most this many keys (0: all); `more` says some were left out.
    ///   - keysOnly: leave the values out (`value` is empty).
    ///
    /// Negative numbers are refused (`.configuration`): etcd would read them as none.
    public func range(
        _ key: String, end: String? = nil, revision: Int64? = nil, minModRevision: Int64? = nil, limit: Int = 0, keysOnly: Bool = false
    ) async throws(EtcdError) -> EtcdRange {
        let body = try Self.rangeBody(key, end, revision, minModRevision, limit, keysOnly)
        let (answer, endpoint) = try await post("/v3/kv/range", body)
        return try EtcdAnswer.range(answer, from: endpoint)
    }

    /// `range` for callers that block (logq's readers are synchronous): waits on the calling
    /// thread, which must not be one of NIO's event loops.
    public func rangeWaiting(
        _ key: String, end: String? = nil, revision: Int64? = nil, minModRevision: Int64? = nil, limit: Int = 0, keysOnly: Bool = false
    ) throws(EtcdError) -> EtcdRange {
        let body = try Self.rangeBody(key, end, revision, minModRevision, limit, keysOnly)
        let (answer, endpoint) = try postWaiting("/v3/kv/range", body)
        return try EtcdAnswer.range(answer, from: endpoint)
    }

    /// Atomically: when every comparison holds, the `success` operations, else the `failure`
    /// ones, all at one new revision (none when the branch writes nothing). etcd refuses a txn
    /// with more operations than its `--max-txn-ops` (128 by default) or a key written twice.
    public func txn(compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) async throws(EtcdError)
        -> EtcdTxnResult
    {
        let body = Self.encode(
            TxnRequest(compare: compare.map(CompareWire.init), success: success.map(OperationWire.init), failure: failure.map(OperationWire.init)))
        let (answer, endpoint) = try await post("/v3/kv/txn", body)
        let result = try EtcdAnswer.txn(answer, from: endpoint)
        let branch = result.succeeded ? success : failure
        let isRange = branch.map { if case .range = $0.kind { true } else { false } }
        guard result.ranges.map({ $0 != nil }) == isRange else {
            throw .unexpectedAnswer(
                endpoint: endpoint,
                detail: "a txn whose \(result.succeeded ? "success" : "failure") branch has \(branch.count) operations "
                    + "(\(isRange.filter { $0 }.count) ranges) answered with \(result.ranges.count) responses "
                    + "(\(result.ranges.compactMap { $0 }.count) ranges), or not in their order")
        }
        return result
    }

    /// The end of a range holding exactly the keys that start with `prefix`: etcd's
    /// `clientv3.GetPrefixRangeEnd` for UTF-8 keys. That one adds 1 to the last byte below
    /// 0xFF, which is not UTF-8 when the byte is 0x7F or 0xBF; this adds 1 to the last
    /// Unicode scalar below U+10FFFF instead (skipping the surrogates), which is the same bytes
    /// otherwise, and selects the same UTF-8 keys since UTF-8 sorts as its scalars do. "\0",
    /// etcd's "every key from `key` on", when there is no such scalar (an empty prefix).
    public static func prefixEnd(_ prefix: String) -> String {
        var scalars = Array(prefix.unicodeScalars)
        while let last = scalars.popLast() {
            guard last.value < 0x10FFFF else { continue }
            // U+D800…U+DFFF are surrogates, not scalars: no key holds them.
            scalars.append(Unicode.Scalar(last.value == 0xD7FF ? 0xE000 : last.value + 1)!)
            var end = ""
            end.unicodeScalars.append(contentsOf: scalars)
            return end
        }
        return "\0"
    }

    /// The largest answer read into memory; a range that might be larger pages with `limit`.
    static let answerLimit = 64 << 20

    /// The endpoints in the order to try them: the one that answered last first.
    var inTurn: [String] {
        let first = preferred.withLock { $0 }
        return Array(endpoints[first...] + endpoints[..<first])
    }

    /// Remembers `endpoint` as the one to try first.
    func remember(_ endpoint: String) {
        if let index = endpoints.firstIndex(of: endpoint) { preferred.withLock { $0 = index } }
    }

    /// Remembers `endpoint` as the one to try first, and returns `answer`.
    private func answered(_ endpoint: String, _ answer: Data) -> (Data, endpoint: String) {
        remember(endpoint)
        return (answer, endpoint)
    }

    /// "Unavailable" (gRPC code 14): this member cannot serve now; another may.
    static func isUnavailable(_ error: EtcdError) -> Bool {
        if case .refused(_, 14?, _) = error { return true }
        return false
    }

    private func post(_ path: String, _ body: ByteBuffer) async throws(EtcdError) -> (Data, endpoint: String) {
        var attempts: [String] = []
        for endpoint in inTurn {
            var request = HTTPClientRequest(url: endpoint + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            let status: HTTPResponseStatus
            let answer: ByteBuffer
            do {
                let response = try await client.execute(request, timeout: timeout)
                status = response.status
                answer = try await response.body.collect(upTo: Self.answerLimit)
            } catch {
                try passOver(endpoint, error, &attempts)
                continue
            }
            do {
                return answered(endpoint, try Self.accept(endpoint, status, answer))
            } catch where Self.isUnavailable(error) {
                attempts.append("\(error)")
            }
        }
        throw .unreachable(attempts)
    }

    /// `post` on the calling thread, through the EventLoopFuture API.
    private func postWaiting(_ path: String, _ body: ByteBuffer) throws(EtcdError) -> (Data, endpoint: String) {
        var attempts: [String] = []
        for endpoint in inTurn {
            let response: HTTPClient.Response
            do {
                var request = try HTTPClient.Request(url: endpoint + path, method: .POST, body: .byteBuffer(body))
                request.headers.add(name: "Content-Type", value: "application/json")
                let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.answerLimit)
                response = try client.execute(request: request, delegate: accumulator, deadline: .now() + timeout).wait()
            } catch {
                try passOver(endpoint, error, &attempts)
                continue
            }
            do {
                return answered(endpoint, try Self.accept(endpoint, response.status, response.body ?? ByteBuffer()))
            } catch where Self.isUnavailable(error) {
                attempts.append("\(error)")
            }
        }
        throw .unreachable(attempts)
    }

    /// Records why `endpoint` failed when the request never reached it (the next is tried),
    /// else throws: the request may have been applied.
    func passOver(_ endpoint: String, _ error: any Error, _ attempts: inout [String]) throws(EtcdError) {
        if error is NIOTooManyBytesError || error is ResponseAccumulator.ResponseTooBigError {
            throw .unexpectedAnswer(endpoint: endpoint, detail: "an answer over \(Self.answerLimit >> 20) MiB (read fewer keys with limit)")
        }
        guard Self.neverReachedTheServer(error) else {
            let late = [HTTPClientError.deadlineExceeded, .readTimeout].contains(error as? HTTPClientError)
            let seconds = Double(timeout.nanoseconds) / 1e9
            throw .interrupted(endpoint: endpoint, detail: late ? "no complete answer within \(seconds) s (\(error))" : "\(error)")
        }
        attempts.append("\(endpoint): \(error)")
    }

    /// The connection was never made: the request cannot have been applied. The same as
    /// `ClickHouseHTTP.neverReachedTheServer`, copied: that one is internal to
    /// MusterStoreClickHouse, which this module does not depend on.
    static func neverReachedTheServer(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError { return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) }
        return false
    }

    /// The body of a 200 answer; any other status is the gateway's refusal, a JSON
    /// `{"error":…,"code":N,"message":…}` with the gRPC code, or something else's page.
    static func accept(_ endpoint: String, _ status: HTTPResponseStatus, _ answer: ByteBuffer) throws(EtcdError) -> Data {
        let bytes = Data(answer.readableBytesView)
        guard status != .ok else { return bytes }
        struct GatewayError: Decodable {
            var code: Int?
            var message: String?
            var error: String?
        }
        if let refusal = try? JSONDecoder().decode(GatewayError.self, from: bytes), let message = refusal.message ?? refusal.error {
            throw .refused(endpoint: endpoint, code: refusal.code, message: message)
        }
        let text = String(decoding: bytes.prefix(2_000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // etcd before 3.4 serves the gateway under /v3beta or /v3alpha only.
        let hint = status == .notFound ? " (not the HTTP gateway of etcd 3.4 or later?)" : ""
        throw .refused(endpoint: endpoint, code: nil, message: "HTTP \(status.code)\(hint)\(text.isEmpty ? "" : ": \(text)")")
    }

    private static func rangeBody(
        _ key: String, _ end: String?, _ revision: Int64?, _ minModRevision: Int64?, _ limit: Int, _ keysOnly: Bool
    ) throws(EtcdError) -> ByteBuffer {
        for (name, value) in [("revision", revision), ("minModRevision", minModRevision), ("limit", Int64(limit))] {
            if let value, value < 0 { throw .configuration("an etcd range's \(name) cannot be negative (\(value))") }
        }
        return encode(RangeRequest(key, end: end, revision: revision, minModRevision: minModRevision, limit: limit, keysOnly: keysOnly))
    }

    static func encode(_ request: some Encodable) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // Structs of strings, booleans and optionals always encode.
        return ByteBuffer(bytes: try! encoder.encode(request))
    }
}

// The requests as the gateway takes them (proto3 JSON): keys and values in base64, int64s as
// decimal strings, nil fields left out (etcd's defaults).

func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

private struct RangeRequest: Encodable {
    var key: String
    var rangeEnd: String?
    var revision: String?
    var minModRevision: String?
    var limit: String?
    var keysOnly: Bool?

    init(_ key: String, end: String?, revision: Int64? = nil, minModRevision: Int64? = nil, limit: Int = 0, keysOnly: Bool = false) {
        self.key = base64(key)
        rangeEnd = end.map(base64)
        self.revision = revision.map(String.init)
        self.minModRevision = minModRevision.map(String.init)
        self.limit = limit == 0 ? nil : String(limit)
        self.keysOnly = keysOnly ? true : nil
    }
}

private struct TxnRequest: Encodable {
    var compare: [CompareWire]
    var success: [OperationWire]
    var failure: [OperationWire]
}

private struct CompareWire: Encodable {
    var key: String
    var target: String
    var result: String
    var version: String?
    var createRevision: String?
    var modRevision: String?
    var value: String?

    init(_ compare: EtcdCompare) {
        key = base64(compare.key)
        result = compare.result.rawValue
        switch compare.target {
        case .version(let operand):
            target = "VERSION"
            version = String(operand)
        case .createRevision(let operand):
            target = "CREATE"
            createRevision = String(operand)
        case .modRevision(let operand):
            target = "MOD"
            modRevision = String(operand)
        case .value(let operand):
            target = "VALUE"
            value = Data(operand).base64EncodedString()
        }
    }
}

private struct OperationWire: Encodable {
    struct Put: Encodable {
        var key: String
        var value: String
    }

    struct DeleteRange: Encodable {
        var key: String
        var rangeEnd: String?
    }

    var requestPut: Put?
    var requestDeleteRange: DeleteRange?
    var requestRange: RangeRequest?

    init(_ operation: EtcdOperation) {
        switch operation.kind {
        case .put(let value): requestPut = Put(key: base64(operation.key), value: Data(value).base64EncodedString())
        case .deleteRange(let end): requestDeleteRange = DeleteRange(key: base64(operation.key), rangeEnd: end.map(base64))
        case .range(let end): requestRange = RangeRequest(operation.key, end: end)
        }
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Statements over ClickHouse's HTTP interface (`POST /?query=…`), the documented one that
/// every version speaks. One instance per process; it holds AsyncHTTPClient's connection pool.
///
/// A statement goes to the first replica of the list that answers; a replica that cannot be
/// reached (refused, reset, timed out) is passed over, a statement the server refused is not
/// retried elsewhere (another replica would refuse it too).
public final class ClickHouseHTTP: Sendable {
    let servers: ClickHouseServers
    private let client: HTTPClient
    /// The longest a statement may take, including the connection.
    let timeout: TimeAmount

    /// `connectTimeout` bounds a connection to a server that does not answer at all (a
    /// partition, a host that is gone); one that refuses is passed over at once.
    public init(servers: ClickHouseServers, timeout: TimeAmount = .seconds(60), connectTimeout: TimeAmount = .seconds(5)) {
        self.servers = servers
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: connectTimeout, read: timeout)
        // ClickHouse closes idle keep-alive connections after 3 s (its keep_alive_timeout).
        configuration.connectionPool = .init(idleTimeout: .seconds(2))
        // AsyncHTTPClient otherwise retries a refused connection until the connect timeout:
        // with a shard's first replica down, every statement waited 5 s for it before the
        // next replica was tried (a commit, a lookup and an insert per shard: 10 s).
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        try? client.syncShutdown()
    }

    /// Runs `sql` on the first of `replicas` that takes it and returns the answer's body and
    /// the replica that gave it. `body` is sent after the statement (an insert's rows); `gzip`
    /// says it is compressed. `inDatabase: false` for statements that create or drop the
    /// database itself.
    ///
    /// Which failures move on to the next replica: one that never reached the server (refused,
    /// no route, connect timeout) always; for an insert (`body`), also one whose outcome is
    /// unknown (the connection dropped or timed out after sending, or the server failed with a
    /// 5xx): the same bytes are sent again, and the shard drops a block identical to one it
    /// stored (`LogTables.deduplicationWindow`). A read the server took is not run again.
    func run(
        _ sql: String, on replicas: [String], body: ByteBuffer? = nil, gzip: Bool = false, settings: [String: String] = [:],
        inDatabase: Bool = true
    ) async throws(ClickHouseError) -> (ByteBuffer, replica: String) {
        var attempts: [String] = []
        for replica in replicas {
            // The statement goes in the body unless rows do (an insert's statement is short;
            // a lookup of thousands of offsets is longer than the server takes in a URL).
            var request = HTTPClientRequest(url: url(replica, body == nil ? nil : sql, settings, inDatabase: inDatabase))
            request.method = .POST
            addHeaders(&request.headers, gzip: gzip)
            request.body = .bytes(body ?? ByteBuffer(string: sql))
            let response: HTTPClientResponse
            let answer: ByteBuffer
            do {
                response = try await client.execute(request, timeout: timeout)
                answer = try await response.body.collect(upTo: Self.answerLimit)
            } catch {
                attempts.append("\(replica): \(error)")
                guard Self.neverReachedTheServer(error) || body != nil else { throw .interrupted(server: replica, detail: "\(error)") }
                continue
            }
            if response.status == .ok { return (answer, replica) }
            let refusal = Self.refusal(replica, response.status, answer)
            guard body != nil, response.status.code >= 500 else { throw refusal }
            attempts.append("\(replica): \(refusal)")
        }
        throw .unreachable(attempts)
    }

    /// `run` for callers that block (logq's readers are synchronous): waits on the calling
    /// thread, which must not be one of NIO's event loops. Reads only.
    func runWaiting(_ sql: String, on replicas: [String], settings: [String: String] = [:]) throws(ClickHouseError)
        -> (ByteBuffer, replica: String)
    {
        var attempts: [String] = []
        // The server stops a read the client has given up on.
        var settings = settings
        settings["max_execution_time"] = String(timeout.nanoseconds / 1_000_000_000)
        for replica in replicas {
            let response: HTTPClient.Response
            do {
                var request = try HTTPClient.Request(url: url(replica, nil, settings), method: .POST, body: .string(sql))
                addHeaders(&request.headers, gzip: false)
                response = try client.execute(request: request, deadline: .now() + timeout).wait()
            } catch {
                attempts.append("\(replica): \(error)")
                guard Self.neverReachedTheServer(error) else { throw .interrupted(server: replica, detail: "\(error)") }
                continue
            }
            let answer = response.body ?? ByteBuffer()
            guard response.status == .ok else { throw Self.refusal(replica, response.status, answer) }
            guard answer.readableBytes <= Self.answerLimit else {
                throw .unexpectedAnswer(server: replica, detail: "an answer of \(answer.readableBytes) bytes, over \(Self.answerLimit)")
            }
            return (answer, replica)
        }
        throw .unreachable(attempts)
    }

    /// The connection was never made: the statement cannot have run.
    static func neverReachedTheServer(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError { return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) }
        return false
    }

    /// The largest answer read into memory; readers page their queries well below it.
    static let answerLimit = 256 << 20

    private func url(_ replica: String, _ sql: String?, _ settings: [String: String], inDatabase: Bool = true) -> String {
        var components = URLComponents(string: replica)!
        var items = sql.map { [URLQueryItem(name: "query", value: $0)] } ?? []
        if inDatabase { items.append(URLQueryItem(name: "database", value: servers.database)) }
        items += settings.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        components.queryItems = items
        // URLComponents leaves `+` as is, which a server decodes as a space.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.string!
    }

    private func addHeaders(_ headers: inout HTTPHeaders, gzip: Bool) {
        if let user = servers.user { headers.add(name: "X-ClickHouse-User", value: user) }
        if let password = servers.password { headers.add(name: "X-ClickHouse-Key", value: password) }
        if gzip { headers.add(name: "Content-Encoding", value: "gzip") }
    }

    /// ClickHouse answers a refused statement with `Code: N, e.displayText() = DB::Exception: …`.
    private static func refusal(_ replica: String, _ status: HTTPResponseStatus, _ answer: ByteBuffer) -> ClickHouseError {
        let text = String(decoding: answer.readableBytesView.prefix(2_000), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var code: Int?
        var message = text.isEmpty ? "HTTP \(status.code)" : text
        if text.hasPrefix("Code: "), let comma = text.firstIndex(of: ",") {
            code = Int(text[text.index(text.startIndex, offsetBy: 6)..<comma])
            if let range = text.range(of: "DB::Exception: ") {
                message = String(text[range.upperBound...])
                if let what = message.range(of: ", e.what() =") { message = String(message[..<what.lowerBound]) }
            }
        }
        return .refused(server: replica, code: code, message: message)
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Statements over ClickHouse's HTTP interface (`POST /?query=…`), the documented one that
/// every version speaks. One instance per process; it holds AsyncHTTPClient's connection pool.
///
/// A statement goes to the first replica of the list that answers; a replica that cannot be
/// reached (refused, reset, timed out) is passed over, a statement the server refused is not
/// retried elsewhere (another replica would refuse it too). A replica passed over is tried
/// after the others for a while (`ReplicaTrouble`): one that hangs costs the statement that
/// found it so, not every statement after it.
public final class ClickHouseHTTP: Sendable {
    let servers: ClickHouseServers
    private let client: HTTPClient
    /// The longest a statement may take, including the connection.
    let timeout: TimeAmount
    /// The longest a commit's statement (an identity lookup, an insert) waits for a replica to
    /// start answering before the next is tried (`run`'s `answerWithin`).
    let commitTimeout: TimeAmount
    private let trouble = Mutex(ReplicaTrouble())

    /// `connectTimeout` bounds a connection to a server that does not answer at all (a
    /// partition, a host that is gone); one that refuses is passed over at once.
    /// `commitTimeout` bounds a commit's statements on a server that takes them and does not
    /// answer (stopped, stalled); at most `timeout`.
    public init(
        servers: ClickHouseServers, timeout: TimeAmount = .seconds(60), connectTimeout: TimeAmount = .seconds(5),
        commitTimeout: TimeAmount = .seconds(5)
    ) {
        self.servers = servers
        self.timeout = timeout
        self.commitTimeout = min(commitTimeout, timeout)
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
    /// database itself. Replicas passed over lately are tried last (`inTurn`).
    ///
    /// Which failures move on to the next replica: one that never reached the server (refused,
    /// no route, connect timeout) always; for an insert (`body`), also one whose outcome is
    /// unknown (the connection dropped or timed out after sending, or the server failed with a
    /// 5xx): the same bytes are sent again, and the shard drops a block identical to one it
    /// stored (`LogTables.deduplicationWindow`); after ClickHouse's own "unknown status" (319)
    /// the retry is stored whatever the first attempt left (`insert_deduplicate=0`: a same-key
    /// copy at worst, which reads hide). A read the server took is not run again,
    /// unless `answerWithin` is given: for a statement that is cheap and safe to run again (a
    /// commit's identity lookup and insert), a replica whose answer has not started within it
    /// is passed over, as is one whose answer broke off. It bounds the wait for the answer's
    /// head, not its body.
    func run(
        _ sql: String, on replicas: [String], body: ByteBuffer? = nil, gzip: Bool = false, settings: [String: String] = [:],
        inDatabase: Bool = true, answerWithin: TimeAmount? = nil
    ) async throws(ClickHouseError) -> (ByteBuffer, replica: String) {
        var attempts: [String] = []
        var settings = settings
        for replica in inTurn(replicas) {
            // The statement goes in the body unless rows do (an insert's statement is short;
            // a lookup of thousands of offsets is longer than the server takes in a URL).
            var request = HTTPClientRequest(url: url(replica, body == nil ? nil : sql, settings, inDatabase: inDatabase))
            request.method = .POST
            addHeaders(&request.headers, gzip: gzip)
            request.body = .bytes(body ?? ByteBuffer(string: sql))
            let response: HTTPClientResponse
            let answer: ByteBuffer
            do {
                // AsyncHTTPClient's deadline is for the response's head; the idle read timeout
                // (`timeout`) bounds the body.
                response = try await client.execute(request, timeout: answerWithin ?? timeout)
                answer = try await response.body.collect(upTo: Self.answerLimit)
            } catch {
                attempts.append("\(replica): \(error)")
                passedOver(replica)
                guard Self.neverReachedTheServer(error) || body != nil || answerWithin != nil else {
                    throw .interrupted(server: replica, detail: "\(error)")
                }
                continue
            }
            if response.status == .ok {
                answered(replica)
                return (answer, replica)
            }
            let refusal = Self.refusal(replica, response.status, answer)
            guard body != nil, response.status.code >= 500 else {
                answered(replica)
                throw refusal
            }
            attempts.append("\(replica): \(refusal)")
            passedOver(replica)
            if case .refused(_, Self.unknownStatusOfInsert?, _) = refusal {
                // The first attempt may have left its block's id without its part, or without
                // its view's part: an identical block would then be dropped as a duplicate.
                settings["insert_deduplicate"] = "0"
            }
        }
        throw .unreachable(attempts)
    }

    /// ClickHouse's "Unknown status, client must retry" (`UNKNOWN_STATUS_OF_INSERT`): ZooKeeper
    /// failed while the insert committed.
    static let unknownStatusOfInsert = 319

    /// `run` for callers that block (logq's readers are synchronous): waits on the calling
    /// thread, which must not be one of NIO's event loops. Reads only.
    ///
    /// A read may rightly take long before its answer starts (a scan of a large table), so it
    /// cannot be bounded like a commit's statements. A replica that is stopped or stalled (its
    /// kernel still completes connections) would hold it for `timeout`, and so would a read
    /// through the `Distributed` tables that ClickHouse sends on to such a replica: it runs the
    /// part of the receiving replica's own shard there (`prefer_localhost_replica`) and every
    /// other shard's part on that shard's first replica (`load_balancing = in_order`), and
    /// 18.16 waits minutes for one that does not answer. So the replicas are asked `GET /ping`
    /// first (`unanswered(pings:)`: at once, each within `commitTimeout`); the read goes to a
    /// replica that answered, preferring one for which every other shard's first replica
    /// answered too (for this, each shard's replicas must be listed in `remote_servers`'
    /// order). A read that has no such replica can still wait for one that stopped.
    func runWaiting(_ sql: String, on replicas: [String], settings: [String: String] = [:]) throws(ClickHouseError)
        -> (ByteBuffer, replica: String)
    {
        var attempts: [String] = []
        // The server stops a read the client has given up on.
        var settings = settings
        settings["max_execution_time"] = String(timeout.nanoseconds / 1_000_000_000)
        let silent = unanswered(pings: servers.replicas)
        for (replica, why) in silent.sorted(by: { $0.key < $1.key }) {
            passedOver(replica)
            if replicas.contains(replica) { attempts.append("\(replica): \(why)") }
        }
        // Every replica passed over lately is among the silent ones: no ordering by trouble is left to do.
        let (safe, unsafe) = Self.readOrder(replicas, shards: servers.shards, silent: Set(silent.keys))
        for replica in safe + unsafe {
            let response: HTTPClient.Response
            do {
                var request = try HTTPClient.Request(url: url(replica, nil, settings), method: .POST, body: .string(sql))
                addHeaders(&request.headers, gzip: false)
                response = try client.execute(request: request, deadline: .now() + timeout).wait()
            } catch {
                attempts.append("\(replica): \(error)")
                passedOver(replica)
                guard Self.neverReachedTheServer(error) else {
                    let waitedFor = safe.contains(replica) ? "" : " (it sends other shards' parts to "
                        + servers.shards.compactMap(\.first).filter { silent[$0] != nil }.joined(separator: ", ")
                        + ", which did not answer /ping)"
                    throw .interrupted(server: replica, detail: "\(error)\(waitedFor)")
                }
                continue
            }
            answered(replica)
            let answer = response.body ?? ByteBuffer()
            guard response.status == .ok else { throw Self.refusal(replica, response.status, answer) }
            guard answer.readableBytes <= Self.answerLimit else {
                throw .unexpectedAnswer(server: replica, detail: "an answer of \(answer.readableBytes) bytes, over \(Self.answerLimit)")
            }
            return (answer, replica)
        }
        throw .unreachable(attempts)
    }

    /// Of `candidates` (in the order to try them), those not `silent`: first those a read through
    /// the `Distributed` tables can use without reaching a silent replica (every shard but its
    /// own read on that shard's first replica, which is not silent), then the others.
    static func readOrder(_ candidates: [String], shards: [[String]], silent: Set<String>) -> (safe: [String], unsafe: [String]) {
        let answering = candidates.filter { !silent.contains($0) }
        let safe = answering.filter { replica in
            shards.allSatisfy { shard in shard.contains(replica) || shard.first.map { !silent.contains($0) } ?? true }
        }
        return (safe, answering.filter { !safe.contains($0) })
    }

    /// The replicas of `replicas` that cannot be counted on to answer, each with why: those
    /// passed over lately (`ReplicaTrouble`, not asked again until their pause is up), and
    /// those that did not answer `GET /ping` (ClickHouse's liveness check, answered without
    /// touching a table) with 200 within `commitTimeout`. Replicas that answered in the last
    /// few seconds are not asked; the others are asked all at once.
    private func unanswered(pings replicas: [String]) -> [String: String] {
        let now = NIODeadline.now()
        var silent: [String: String] = [:]
        let toAsk = trouble.withLock { trouble in
            replicas.filter { replica in
                if trouble.isTroubled(replica, at: now) {
                    silent[replica] = "did not answer lately (not asked again before its pause is up)"
                    return false
                }
                return !trouble.answeredLately(replica, at: now)
            }
        }
        let asked = toAsk.map { replica in
            (replica, Result { try client.execute(request: HTTPClient.Request(url: replica + "/ping", method: .GET), deadline: now + commitTimeout) })
        }
        for (replica, future) in asked {
            do {
                let response = try future.get().wait()
                if response.status == .ok { answered(replica) } else { silent[replica] = "answered /ping with \(response.status.code)" }
            } catch {
                silent[replica] = "did not answer /ping within \(commitTimeout.nanoseconds / 1_000_000) ms: \(error)"
            }
        }
        return silent
    }

    /// `replicas` in the order to try them: those not passed over lately first, each group in
    /// the given order.
    func inTurn(_ replicas: [String]) -> [String] {
        let now = NIODeadline.now()
        let troubled = trouble.withLock { trouble in Set(replicas.filter { trouble.isTroubled($0, at: now) }) }
        guard !troubled.isEmpty else { return replicas }
        return replicas.filter { !troubled.contains($0) } + replicas.filter { troubled.contains($0) }
    }

    /// `replica` could not be used (it could not be reached, or it did not answer in time, or
    /// it failed an insert): tried last for a while.
    private func passedOver(_ replica: String) {
        let now = NIODeadline.now()
        trouble.withLock { $0.passedOver(replica, at: now) }
    }

    /// `replica` answered (a refusal too): tried in its turn again.
    private func answered(_ replica: String) {
        let now = NIODeadline.now()
        trouble.withLock { $0.answered(replica, at: now) }
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

/// The replicas a statement passed over lately, each tried after the others until its time is
/// up: 10 s after it was first passed over, twice as long each time it is passed over again
/// once its time is up without having answered in between, up to 160 s. (Statements that were
/// already waiting on it when it was passed over do not add to that.) A replica that stays
/// down or frozen costs one statement its timeout every so often, not every statement; one
/// that is back is preferred again at the latest 160 s after.
struct ReplicaTrouble {
    private var replicas: [String: (until: NIODeadline, times: Int)] = [:]
    /// When each replica last answered, and how long that vouches for it to a read
    /// (`ClickHouseHTTP.runWaiting` asks the others `/ping` first).
    private var heard: [String: NIODeadline] = [:]
    static let vouchedFor = TimeAmount.seconds(5)

    static let firstPause = TimeAmount.seconds(10)
    static let longestPause = TimeAmount.seconds(160)

    func isTroubled(_ replica: String, at now: NIODeadline) -> Bool {
        replicas[replica].map { now < $0.until } ?? false
    }

    mutating func passedOver(_ replica: String, at now: NIODeadline) {
        guard !isTroubled(replica, at: now) else { return }
        let times = (replicas[replica]?.times ?? 0) + 1
        let pause = min(Self.firstPause.nanoseconds << min(times - 1, 8), Self.longestPause.nanoseconds)
        replicas[replica] = (now + .nanoseconds(pause), times)
    }

    mutating func answered(_ replica: String, at now: NIODeadline) {
        replicas[replica] = nil
        heard[replica] = now
    }

    func answeredLately(_ replica: String, at now: NIODeadline) -> Bool {
        heard[replica].map { now < $0 + Self.vouchedFor } ?? false
    }
}

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Testing

@testable import MusterAgent

#if canImport(Glibc)
    import Glibc
#endif

/// What the agent's log says when the collector cannot be reached, from real failed connections.
@Suite struct ConnectionFailureTests {
    /// A loopback TCP port that is bound but not listening, for as long as the value lives: a
    /// connection to it is refused, and no other test can take the port meanwhile.
    final class ClosedPort {
        let port: Int
        let descriptor: Int32

        /// `listening`: accepts connections instead, and answers each with a plain HTTP response
        /// with `status` (`400 Bad Request` unless given).
        init(listening: Bool = false, status: String = "400 Bad Request") throws {
            let (descriptor, port) = try boundLoopbackSocket(listening: listening ? 16 : nil)
            self.descriptor = descriptor
            self.port = port
            if listening {
                let listener = descriptor
                Thread.detachNewThread {
                    while true {
                        let accepted = accept(listener, nil, nil)
                        guard accepted >= 0 else { return }
                        // What the client sent first (a TLS ClientHello) is read, so that closing
                        // does not reset the connection before the client has read the answer.
                        var buffer = [UInt8](repeating: 0, count: 4096)
                        _ = read(accepted, &buffer, buffer.count)
                        let answer = "HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        _ = answer.withCString { write(accepted, $0, strlen($0)) }
                        shutdown(accepted, Int32(SHUT_WR))
                        while read(accepted, &buffer, buffer.count) > 0 {}
                        close(accepted)
                    }
                }
            }
        }

        deinit {
            shutdown(descriptor, Int32(SHUT_RDWR))
            close(descriptor)
        }
    }

    /// The error a request to `url` fails with (within about `timeout`).
    static func failure(of url: String, timeout: TimeAmount = .seconds(1)) async throws -> any Error {
        do {
            _ = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: timeout)
        } catch {
            return error
        }
        throw TestFailure("\(url) answered")
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test func aRefusedConnectionNamesTheAddressThatRefused() async throws {
        let closed = try ClosedPort()
        let url = "http://127.0.0.1:\(closed.port)/v1/ingest"
        let error = try await Self.failure(of: url)
        #expect(ConnectionFailure.describe(error: error, url: url) == "connection refused by 127.0.0.1:\(closed.port)")
    }

    @Test func theShipperRetriesARefusedBatchSayingWhoRefusedIt() async throws {
        let closed = try ClosedPort()
        let url = "http://127.0.0.1:\(closed.port)"
        let shipper = Shipper(
            client: .shared, urls: [url], token: "t", timeout: .seconds(1),
            backoff: Backoff(initial: .milliseconds(10), cap: .milliseconds(10)), compressionLevel: 1,
            logger: Logger(label: "test"))
        let batch = try NoticeWriter(node: "n", agent: "a", generation: "run-1", compressionLevel: 1).batch("hello", fields: [:])
        guard case .retry(let reason) = await shipper.attemptOnce(batch, to: url + "/v1/ingest") else {
            Issue.record("a batch to a closed port was not retried")
            return
        }
        #expect(reason == "connection refused by 127.0.0.1:\(closed.port)")
    }

    /// With several collectors, a batch that one does not take goes on to the next, whichever
    /// the agent started at: refused connections and 5xx answers alike, and the agent never
    /// waits out its backoff while a collector answers (the backoff here is an hour).
    @Test func aBatchGoesOnToTheNextCollector() async throws {
        let refusing = try ClosedPort()
        let failing = try ClosedPort(listening: true, status: "503 Service Unavailable")
        let taking = try ClosedPort(listening: true, status: "200 OK")
        let urls = [refusing, failing, taking].map { "http://127.0.0.1:\($0.port)" }
        let batch = try NoticeWriter(node: "n", agent: "a", generation: "run-1", compressionLevel: 1).batch("hello", fields: [:])
        for rotation in 0..<3 {
            let order = Array(urls[rotation...] + urls[..<rotation])
            let shipper = Shipper(
                client: .shared, urls: order, token: "t", timeout: .seconds(5),
                backoff: Backoff(initial: .seconds(3_600), cap: .seconds(3_600)), compressionLevel: 1, logger: Logger(label: "test"))
            for _ in 0..<3 {
                #expect(try await shipper.ship(batch) == .acknowledged, "collectors in the order \(order)")
            }
        }
        // Only collectors that do not take it: the agent keeps the batch and waits.
        let shipper = Shipper(
            client: .shared, urls: Array(urls.prefix(2)), token: "t", timeout: .seconds(5),
            backoff: Backoff(initial: .seconds(3_600), cap: .seconds(3_600)), compressionLevel: 1, logger: Logger(label: "test"))
        let waiting = Task { try await shipper.ship(batch) }
        try await Task.sleep(for: .milliseconds(500))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }

    @Test func theEventStreamSaysWhyTheCollectorDidNotAnswer() async throws {
        let closed = try ClosedPort()
        let baseURL = "http://127.0.0.1:\(closed.port)"
        let stream = EventStreamClient(baseURL: baseURL, token: "t", client: .shared, openTimeout: .seconds(1))
        do {
            try await stream.events(since: 0) { _ in true }
            Issue.record("the stream from a closed port opened")
        } catch let error as EventStreamError {
            #expect("\(error)" == "cannot open the event stream from \(baseURL): connection refused by 127.0.0.1:\(closed.port)")
        }
    }

    /// The limit on opening the stream ends with the response head: a stream open for longer
    /// goes on (here until it falls silent).
    @Test func theLimitOnOpeningTheStreamDoesNotEndTheStream() async throws {
        let server = try EventStreamClientTests.SilentStreamServer(events: "id: 7\nevent: membership\ndata: {}\n\n")
        defer { server.close() }
        let baseURL = "http://127.0.0.1:\(server.port)"
        let stream = EventStreamClient(
            baseURL: baseURL, token: "t", client: .shared, openTimeout: .milliseconds(200), silenceLimit: .seconds(1))
        var ids: [Int64] = []
        do {
            try await stream.events(since: 0) { event in
                ids.append(event.id)
                return true
            }
            Issue.record("the stream ended without an error")
        } catch let error as EventStreamError {
            #expect(error == .silent(baseURL: baseURL, after: .seconds(1)))
        }
        #expect(ids == [7])
    }

    @Test func tlsToAPlainHTTPServerSaysTheServerDoesNotSpeakTLS() async throws {
        let plain = try ClosedPort(listening: true)
        let url = "https://127.0.0.1:\(plain.port)/v1/ingest"
        let error = try await Self.failure(of: url)
        let text = ConnectionFailure.describe(error: error, url: url)
        #expect(
            text == "TLS handshake with 127.0.0.1:\(plain.port) failed: the server does not speak TLS there; "
                + "is it a plain http server behind an https:// URL? (WRONG_VERSION_NUMBER)",
            "\(error)")
    }

    @Test func aHostThatDoesNotResolveIsNamed() async throws {
        // `.invalid` never resolves (RFC 6761).
        let url = "http://collector.invalid:8088/v1/ingest"
        let error = try await Self.failure(of: url, timeout: .seconds(5))
        let text = ConnectionFailure.describe(error: error, url: url)
        #expect(text.hasPrefix("cannot resolve host collector.invalid ("), "\(error)")
    }

    @Test func socketErrorsSayWhatHappenedToWhichAddress() {
        let address = "10.0.0.2:8088"
        #expect(ConnectionFailure.describe(errno: ECONNREFUSED, address: address, host: "10.0.0.2") == "connection refused by 10.0.0.2:8088")
        #expect(ConnectionFailure.describe(errno: ETIMEDOUT, address: address, host: "10.0.0.2") == "connection to 10.0.0.2:8088 timed out")
        #expect(ConnectionFailure.describe(errno: EHOSTUNREACH, address: address, host: "10.0.0.2") == "no route to host 10.0.0.2")
        #expect(ConnectionFailure.describe(errno: ENETUNREACH, address: address, host: "10.0.0.2") == "network unreachable for 10.0.0.2")
        #expect(
            ConnectionFailure.describe(error: HTTPClientError.connectTimeout, url: "http://10.0.0.2:8088/v1/ingest")
                == "connection to 10.0.0.2:8088 timed out")
        #expect(
            ConnectionFailure.describe(error: IOError(errnoCode: ECONNRESET, reason: "read"), url: "https://[fd00::2]/v1/ingest")
                == "connection reset by [fd00::2]:443")
    }
}

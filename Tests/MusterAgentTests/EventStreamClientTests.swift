import AsyncHTTPClient
import Foundation
import Testing

@testable import MusterAgent

#if canImport(Glibc)
    import Glibc
#endif

/// The stream client against a collector whose connection stops delivering without closing,
/// as a TCP connection does when the network path to it silently drops packets.
@Suite struct EventStreamClientTests {
    /// A one-connection HTTP server on loopback: answers the first request with an event
    /// stream holding `events`, then sends nothing more and keeps the connection open.
    final class SilentStreamServer: @unchecked Sendable {
        let port: Int
        private let listener: Int32
        private var connection: Int32 = -1
        private let lock = NSLock()

        init(events: String) throws {
            let (listener, port) = try boundLoopbackSocket(listening: 1)
            self.port = port
            self.listener = listener
            Thread.detachNewThread { [self] in
                let accepted = accept(listener, nil, nil)
                guard accepted >= 0 else { return }
                lock.withLock { connection = accepted }
                var request: [UInt8] = []
                var byte: UInt8 = 0
                while read(accepted, &byte, 1) == 1 {
                    request.append(byte)
                    if request.suffix(4) == Array("\r\n\r\n".utf8) { break }
                }
                let chunk = "retry: 1000\n\n" + events
                let answer =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n"
                _ = answer.withCString { write(accepted, $0, strlen($0)) }
            }
        }

        func close() {
            shutdown(listener, Int32(SHUT_RDWR))
            Glibc.close(listener)
            lock.withLock { if connection >= 0 { Glibc.close(connection) } }
        }
    }

    @Test func aStreamThatGoesSilentEndsWithAnErrorInsteadOfHangingForever() async throws {
        let server = try SilentStreamServer(events: "id: 7\nevent: membership\ndata: {}\n\n")
        defer { server.close() }
        let stream = EventStreamClient(
            baseURL: "http://127.0.0.1:\(server.port)", token: "t", client: .shared, silenceLimit: .milliseconds(500))
        let outcome = try await withThrowingTaskGroup(of: (ids: [Int64], error: EventStreamError?)?.self) { group in
            group.addTask {
                var ids: [Int64] = []
                do {
                    try await stream.events(since: 0) { event in
                        ids.append(event.id)
                        return true
                    }
                    return (ids, nil)
                } catch let error as EventStreamError {
                    return (ids, error)
                }
            }
            // Generous: the client should give up after half a second.
            group.addTask {
                try await Task.sleep(for: .seconds(15))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        let (ids, error) = try #require(outcome, "the client still waited on a silent stream after 15 s")
        #expect(ids == [7])
        #expect(error == .silent(baseURL: "http://127.0.0.1:\(server.port)", after: .milliseconds(500)))
    }
}

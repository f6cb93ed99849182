import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The collector's connection limits with the real binary on loopback: idle connections, a
/// request head that trickles in, a body that stops halfway, and more connections than the
/// limit. Before the limits, 1,100 idle connections took every descriptor and ingest stopped,
/// silently, until they closed; slow senders held their connections for ever.
@Suite(.serialized) struct CollectorConnectionLimitsTests {
    static let config = """
        limits:
          max_connections: 40
          idle_timeout_ms: 1000
          body_timeout_ms: 1000
        """

    /// A plain TCP connection to the collector, read with a timeout.
    final class RawConnection: @unchecked Sendable {  // one descriptor; send and recv are thread-safe
        let descriptor: Int32

        init(port: Int) throws {
            descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(descriptor)
                throw TestSetupError("connect to 127.0.0.1:\(port) failed: errno \(errno)")
            }
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(descriptor) }

        func send(_ text: String) {
            _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(descriptor, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        }

        /// Reads what has arrived; `closed` once the server closed its side (or reset it).
        func poll() -> (text: String, closed: Bool) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 { return (String(decoding: buffer[0..<count], as: UTF8.self), false) }
            if count == 0 { return ("", true) }
            return ("", errno != EAGAIN && errno != EWOULDBLOCK)
        }

        /// Waits until the server closes the connection; what it said before, and whether it did.
        func waitForClose(timeout: TimeInterval) -> (text: String, closed: Bool) {
            var text = ""
            let closed = waitUntil(timeout: timeout, interval: 0.01) {
                let (more, closed) = poll()
                text += more
                return closed
            }
            return (text, closed)
        }
    }

    func ingestOneLine(_ pipeline: LoopbackPipeline, message: String, offset: Int) -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(pipeline.port)/v1/ingest")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(pipeline.token)", forHTTPHeaderField: "Authorization")
        request.httpBody = Data(
            #"{"agent":"a1","node":"s1","src":"app","gen":"g","off":\#(offset),"t":1700000000000000000,"msg":"\#(message)"}"#.utf8)
        request.timeoutInterval = 30
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var status = 0
        URLSession.shared.dataTask(with: request) { _, response, _ in
            status = (response as? HTTPURLResponse)?.statusCode ?? 0
            done.signal()
        }.resume()
        done.wait()
        return status
    }

    @Test func idleAndSlowConnectionsAreClosedAndIngestGoesOn() throws {
        let pipeline = try LoopbackPipeline("connection-limits")
        pipeline.collectorConfig = Self.config
        try pipeline.startCollector()

        // More idle connections than the limit: all are closed (the last ones once they are
        // accepted), and then a batch gets through.
        let idle = try (0..<60).map { _ in try RawConnection(port: pipeline.port) }
        let allClosed = waitUntil(timeout: 30, interval: 0.05) { idle.allSatisfy { $0.poll().closed } }
        #expect(allClosed, "idle connections still open: \(idle.filter { !$0.poll().closed }.count) of 60")
        #expect(ingestOneLine(pipeline, message: "after idle", offset: 0) == 200)
        #expect((scrapeCounter("muster_http_connection_limit_reached_total", port: pipeline.port) ?? 0) >= 1)

        // A request head that trickles in, a byte at a time: closed like an idle connection.
        let slowHead = try RawConnection(port: pipeline.port)
        slowHead.send("POST /v1/ingest HTTP/1.1\r\nHost: x\r\n")
        let trickle = Thread {
            for _ in 0..<60 {
                slowHead.send("X")
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        trickle.start()
        let head = slowHead.waitForClose(timeout: 20)
        #expect(head.closed, "a request head sent a byte every 100 ms was not cut off")

        // A body that stalls is closed like an idle connection; one that trickles in, a byte
        // every 100 ms, gets 408 with a JSON error once the body timeout has passed.
        let stalledBody = try RawConnection(port: pipeline.port)
        stalledBody.send(
            "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(pipeline.token)\r\nContent-Length: 1000\r\n\r\n{")
        #expect(stalledBody.waitForClose(timeout: 20).closed, "a stalled body kept its connection")
        let slowBody = try RawConnection(port: pipeline.port)
        slowBody.send(
            "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(pipeline.token)\r\nContent-Length: 1000\r\n\r\n{")
        let bodyTrickle = Thread {
            for _ in 0..<100 {
                slowBody.send(" ")
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        bodyTrickle.start()
        var answer = ""
        let answered = waitUntil(timeout: 20, interval: 0.02) {
            answer += slowBody.poll().text
            return answer.contains("body_timeout")
        }
        #expect(answered && answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect((scrapeCounter("muster_http_body_timeouts_total", port: pipeline.port) ?? 0) >= 1)

        #expect(ingestOneLine(pipeline, message: "after slow", offset: 100) == 200)
        #expect(try pipeline.storedMessages() == ["after idle", "after slow"])
        pipeline.stopCollector()
    }

    /// With every retention limit off, the collector once never listened and spun at full CPU,
    /// deaf to SIGTERM. It must serve, and stop on SIGTERM by itself.
    @Test func retentionOffStillServesAndStopsOnSIGTERM() throws {
        let pipeline = try LoopbackPipeline("retention-off")
        pipeline.collectorConfig = """
            retention:
              logs_max_age_hours: 0
              history_max_age_hours: 0
            """
        try pipeline.startCollector()
        #expect(ingestOneLine(pipeline, message: "kept", offset: 0) == 200)
        let collector = try #require(pipeline.collector)
        kill(collector.pid, SIGTERM)
        let exited = waitUntil(timeout: 30, interval: 0.05) { !collector.process.isRunning }
        #expect(exited, "the collector did not exit on SIGTERM: \(pipeline.collectorLog().suffix(2000))")
        if exited {
            #expect(collector.process.terminationReason == .exit && collector.process.terminationStatus == 0)
        }
        #expect(try pipeline.storedMessages() == ["kept"])
    }
}

import Foundation
import Testing

/// A loopback TCP port whose connections the kernel completes and nothing ever accepts or
/// answers: a server that is stopped (SIGSTOP) or stalled, as its clients see it, until `stop`.
struct SilentListener {
    /// `http://127.0.0.1:PORT`.
    let url: String
    let descriptor: Int32

    init() throws {
        #if canImport(Glibc)
        let stream = Int32(SOCK_STREAM.rawValue)
        #else
        let stream = SOCK_STREAM
        #endif
        let listener = socket(AF_INET, stream, 0)
        try #require(listener >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        // The kernel completes connections in the backlog; nothing ever accepts or answers them.
        guard bound, listen(listener, 64) == 0 else {
            close(listener)
            throw SilentListenerError()
        }
        descriptor = listener
        url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
    }

    func stop() {
        close(descriptor)
    }

    struct SilentListenerError: Error, CustomStringConvertible {
        var description: String { "cannot listen on a loopback port: errno \(errno)" }
    }
}

/// A loopback HTTP server that gives every request the same answer, then closes the connection:
/// a replica that fails in a given way (ClickHouse's "unknown status" after a ZooKeeper
/// failure, say), as its clients see it, until `stop`.
final class AnsweringListener: Sendable {
    /// `http://127.0.0.1:PORT`.
    let url: String
    private let listener: SilentListener

    init(status: String, body: String) throws {
        listener = try SilentListener()
        url = listener.url
        let descriptor = listener.descriptor
        let answer = Array("HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        // Ends when `stop` shuts the listener down.
        let thread = Thread {
            while true {
                let connection = accept(descriptor, nil, nil)
                guard connection >= 0 else { return }  // the listener was closed
                // The request is small: read it, so the client has sent it all before the answer.
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                _ = read(connection, &buffer, buffer.count)
                _ = answer.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                shutdown(connection, Int32(SHUT_WR))
                close(connection)
            }
        }
        thread.start()
    }

    func stop() {
        // Closing the descriptor does not wake an accept blocked on it; shutting it down does.
        shutdown(listener.descriptor, Int32(SHUT_RDWR))
        listener.stop()
    }
}

import Foundation
import Testing

/// A loopback TCP port whose connections the kernel completes and nothing ever accepts or
/// answers: a server that is stopped (SIGSTOP) or stalled, as its clients see it, until `stop`.
struct SilentListener {
    /// `http://127.0.0.1:PORT`.
    let url: String
    private let listener: Int32

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
        self.listener = listener
        url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
    }

    func stop() {
        close(listener)
    }

    struct SilentListenerError: Error, CustomStringConvertible {
        var description: String { "cannot listen on a loopback port: errno \(errno)" }
    }
}

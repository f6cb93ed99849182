#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Where a syslog source listens: `udp://HOST:PORT` or `unix:///absolute/path`.
public enum SyslogListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// HOST is an IPv4 address, a bracketed IPv6 address or a name; port 0 picks a free port
    /// (for tests; the config file requires 1-65535).
    case udp(host: String, port: Int)
    case unix(path: String)

    /// The longest path a unix socket address holds (`sun_path` is 108 bytes with its NUL).
    static let maxUnixPathBytes = 107

    public init(parsing text: String) throws(SyslogError) {
        func invalid(_ reason: String) -> SyslogError { .invalidAddress(source: nil, address: text, reason: reason) }
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            guard path.hasPrefix("/") else { throw invalid("the path must be absolute: unix:///run/muster/syslog.sock") }
            guard path.utf8.count <= Self.maxUnixPathBytes else {
                throw invalid("the path is longer than \(Self.maxUnixPathBytes) bytes, the limit of a unix socket address")
            }
            guard !path.hasSuffix("/") else { throw invalid("the path names a directory, not a socket file") }
            self = .unix(path: path)
        } else if text.hasPrefix("udp://") {
            let rest = text.dropFirst("udp://".count)
            guard let colon = rest.lastIndex(of: ":") else { throw invalid("give a port: udp://HOST:PORT, e.g. udp://127.0.0.1:5514") }
            var host = String(rest[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") {
                host = String(host.dropFirst().dropLast())
            } else if host.contains(":") {
                throw invalid("write an IPv6 address in brackets: udp://[::1]:5514")
            }
            guard !host.isEmpty else { throw invalid("give a host: udp://0.0.0.0:PORT for every interface, udp://127.0.0.1:PORT for loopback") }
            guard let port = Int(rest[rest.index(after: colon)...]), (0...65535).contains(port) else {
                throw invalid("the port must be a number from 1 to 65535")
            }
            self = .udp(host: host, port: port)
        } else {
            throw invalid("use udp://HOST:PORT or unix:///absolute/path")
        }
    }

    public var description: String {
        switch self {
        case .udp(let host, let port): host.contains(":") ? "udp://[\(host)]:\(port)" : "udp://\(host):\(port)"
        case .unix(let path): "unix://" + path
        }
    }
}

/// Why a listen address cannot be used; the message names the address and says what to do.
public enum SyslogError: Error, CustomStringConvertible, Equatable {
    case invalidAddress(source: String?, address: String, reason: String)
    case cannotBind(source: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .invalidAddress(let source, let address, let reason):
            (source.map { "syslog source '\($0)': " } ?? "") + "invalid listen address '\(address)': \(reason)"
        case .cannotBind(let source, let address, let reason):
            "syslog source '\(source)': cannot bind \(address): \(reason)"
        }
    }
}

/// One bound, non-blocking datagram socket.
struct SyslogSocket: Sendable {
    let descriptor: Int32
    /// What was bound, with port 0 resolved to the port the kernel chose.
    let bound: SyslogListenAddress
    /// The receive buffer the kernel granted (it may cap what was asked for).
    let receiveBufferBytes: Int
    /// A unix socket file's inode: `close` removes the file only while it is still ours.
    private let inode: ino_t?

    struct Failure: Error {
        let reason: String
    }

    static func bind(_ address: SyslogListenAddress, receiveBufferBytes: Int) throws(Failure) -> SyslogSocket {
        switch address {
        case .udp(let host, let port): try bindUDP(host: host, port: port, receiveBufferBytes: receiveBufferBytes)
        case .unix(let path): try bindUnix(path: path, receiveBufferBytes: receiveBufferBytes)
        }
    }

    private static let datagramType = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)

    private static func bindUDP(host: String, port: Int, receiveBufferBytes: Int) throws(Failure) -> SyslogSocket {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result?.pointee else {
            throw Failure(reason: "cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        let descriptor = socket(info.ai_family, datagramType, 0)
        guard descriptor >= 0 else { throw Failure(reason: "socket(): \(errnoText())") }
        let granted = setReceiveBuffer(descriptor, bytes: receiveBufferBytes)
        // The kernel then tells us, with every datagram, how many it dropped for lack of room.
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RXQ_OVFL, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(descriptor, info.ai_addr, info.ai_addrlen) == 0 else {
            let code = errno
            let reason = String(cString: strerror(code)) + bindHint(code, port: port)
            Glibc.close(descriptor)
            throw Failure(reason: reason)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let boundPort = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> Int in
                guard getsockname(descriptor, address, &length) == 0 else { return port }
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        }
        // sin_port and sin6_port sit at the same offset, so the IPv4 view reads either.
        return SyslogSocket(descriptor: descriptor, bound: .udp(host: host, port: boundPort), receiveBufferBytes: granted, inode: nil)
    }

    private static func bindUnix(path: String, receiveBufferBytes: Int) throws(Failure) -> SyslogSocket {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw Failure(reason: "\(path) exists and is not a socket; not removing it")
            }
            guard !someoneReceives(on: path) else {
                throw Failure(reason: "another process is receiving on \(path) (Address already in use)")
            }
            // Left behind by a process that did not stop cleanly: nobody reads it any more.
            unlink(path)
        }
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw Failure(reason: "cannot create directory \(directory): \(error.localizedDescription)")
        }
        let descriptor = socket(AF_UNIX, datagramType, 0)
        guard descriptor >= 0 else { throw Failure(reason: "socket(): \(errnoText())") }
        let granted = setReceiveBuffer(descriptor, bytes: receiveBufferBytes)
        let bound = withUnixAddress(path) { address, length in Glibc.bind(descriptor, address, length) }
        guard bound == 0 else {
            let reason = errnoText()
            Glibc.close(descriptor)
            throw Failure(reason: reason)
        }
        // HAProxy logs as an unprivileged user (often chrooted): anyone local may write.
        chmod(path, 0o666)
        let inode = lstat(path, &info) == 0 ? info.st_ino : nil
        return SyslogSocket(descriptor: descriptor, bound: .unix(path: path), receiveBufferBytes: granted, inode: inode)
    }

    /// Closes the socket and removes its file, unless another process has replaced it since.
    func close() {
        Glibc.close(descriptor)
        if case .unix(let path) = bound, let inode {
            var info = stat()
            if lstat(path, &info) == 0, info.st_ino == inode { unlink(path) }
        }
    }

    enum Received {
        /// `length` bytes are in the buffer; `truncated` when the datagram was longer.
        /// `kernelDrops`: the socket's running count of datagrams the kernel dropped (UDP).
        case datagram(length: Int, truncated: Bool, kernelDrops: UInt32?)
        /// Nothing waiting (or an error not worth stopping for; the next poll tries again).
        case none
    }

    /// One datagram, without blocking.
    func receive(into buffer: UnsafeMutableRawBufferPointer, control: UnsafeMutableRawBufferPointer) -> Received {
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        return withUnsafeMutablePointer(to: &vector) { vectorPointer in
            var header = msghdr()
            header.msg_iov = vectorPointer
            header.msg_iovlen = 1
            header.msg_control = control.baseAddress
            header.msg_controllen = control.count
            let count = recvmsg(descriptor, &header, 0)
            guard count >= 0 else { return .none }
            return .datagram(
                length: min(count, buffer.count), truncated: header.msg_flags & Int32(MSG_TRUNC) != 0,
                kernelDrops: Self.dropCount(control: control, length: Int(header.msg_controllen)))
        }
    }

    /// SO_RXQ_OVFL's control message: a cmsghdr (length, level, type; 16 bytes) and a UInt32.
    private static func dropCount(control: UnsafeMutableRawBufferPointer, length: Int) -> UInt32? {
        let headerBytes = MemoryLayout<cmsghdr>.size
        var offset = 0
        while offset + headerBytes <= min(length, control.count) {
            let header = control.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
            let messageLength = Int(header.cmsg_len)
            guard messageLength >= headerBytes else { return nil }
            if header.cmsg_level == SOL_SOCKET, header.cmsg_type == SO_RXQ_OVFL, messageLength >= headerBytes + 4,
                offset + headerBytes + 4 <= control.count
            {
                return control.loadUnaligned(fromByteOffset: offset + headerBytes, as: UInt32.self)
            }
            offset += (messageLength + 7) & ~7
        }
        return nil
    }

    /// Asks for `bytes` (above the net.core.rmem_max cap when we may: SO_RCVBUFFORCE needs
    /// CAP_NET_ADMIN) and returns what the kernel granted.
    private static func setReceiveBuffer(_ descriptor: Int32, bytes: Int) -> Int {
        var size = Int32(clamping: bytes)
        let optionLength = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, optionLength) != 0 {
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, optionLength)
        }
        var granted: Int32 = 0
        var length = optionLength
        _ = getsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &granted, &length)
        // Linux reports double the size (it counts its bookkeeping); halve it to compare with the ask.
        return Int(granted) / 2
    }

    /// Whether a live socket is bound at `path`: connecting to a stale file is refused.
    private static func someoneReceives(on path: String) -> Bool {
        let probe = socket(AF_UNIX, datagramType, 0)
        guard probe >= 0 else { return false }
        defer { Glibc.close(probe) }
        return withUnixAddress(path) { address, length in connect(probe, address, length) } == 0
    }

    private static func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8.prefix(SyslogListenAddress.maxUnixPathBytes))
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    private static func bindHint(_ code: Int32, port: Int) -> String {
        switch code {
        case EADDRINUSE: " (another process listens there: `ss -ulpn` shows which)"
        case EACCES where port < 1024: " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        case EADDRNOTAVAIL: " (no interface of this host has that address)"
        default: ""
        }
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

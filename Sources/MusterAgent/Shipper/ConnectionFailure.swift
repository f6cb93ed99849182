import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// What went wrong on the way to a server, in the words an operator acts on: `connection
/// refused by 127.0.0.1:8088`, `cannot resolve host collector.example`, `TLS handshake with
/// 10.0.0.2:8443 failed: …`.
///
/// AsyncHTTPClient hands over what NIO reported: a `NIOConnectionError` holding one error per
/// address tried, an `IOError` with an errno, a `ChannelError`, an `HTTPClientError`, a TLS
/// error. Their own descriptions name the NIO call that failed (`connection reset (error set):
/// Connection refused (errno: 111)`); these name the address and what happened to it.
public enum ConnectionFailure {
    /// `error` from a request to `url`, described. An error this does not know is quoted after
    /// the address, never dropped.
    public static func describe(error: any Error, url: String) -> String {
        let server = Server(url: url)
        switch error {
        case let error as NIOConnectionError:
            return describe(error, server: server)
        case let error as SocketAddressError.UnknownHost:
            return "cannot resolve host \(error.host) (\(error.errorDescription))"
        case let error as IOError:
            return describe(errno: error.errnoCode, address: server.address, host: server.host)
        case let error as ChannelError:
            return describe(error, address: server.address)
        case let error as HTTPClientError:
            return describe(error, address: server.address)
        case let error as NIOSSLError:
            return "TLS handshake with \(server.address) failed: \(tlsReason(error))"
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return "TLS handshake with \(server.address) failed: the certificate is not for \(server.host)"
        case let error as NIOSSLExtraError:
            return "TLS handshake with \(server.address) failed: \(error)"
        default:
            return "request to \(server.address) failed: \(error)"
        }
    }

    /// Every address tried, each with what happened to it; the same outcome is said once.
    private static func describe(_ error: NIOConnectionError, server: Server) -> String {
        if error.connectionErrors.isEmpty {
            if let lookup = error.dnsAError ?? error.dnsAAAAError {
                if let unknown = lookup as? SocketAddressError.UnknownHost {
                    return "cannot resolve host \(error.host) (\(unknown.errorDescription))"
                }
                return "cannot resolve host \(error.host) (\(lookup))"
            }
            return "cannot connect to \(Server.address(host: error.host, port: error.port)): no address to try"
        }
        var described: [String] = []
        for failure in error.connectionErrors {
            let address = failure.target.ipAddress.map { Server.address(host: $0, port: failure.target.port ?? error.port) }
                ?? Server.address(host: error.host, port: error.port)
            let host = failure.target.ipAddress ?? error.host
            let text =
                switch failure.error {
                case let io as IOError: describe(errno: io.errnoCode, address: address, host: host)
                case let channel as ChannelError: describe(channel, address: address)
                default: "cannot connect to \(address): \(failure.error)"
                }
            if !described.contains(text) { described.append(text) }
        }
        return described.joined(separator: "; ")
    }

    /// A failed socket call, by its errno.
    static func describe(errno code: CInt, address: String, host: String) -> String {
        switch code {
        case ECONNREFUSED: "connection refused by \(address)"
        case ETIMEDOUT: "connection to \(address) timed out"
        case EHOSTUNREACH: "no route to host \(host)"
        case ENETUNREACH: "network unreachable for \(host)"
        case ECONNRESET: "connection reset by \(address)"
        case EPIPE: "connection to \(address) broken (closed by the other end while sending)"
        default: "connection to \(address) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    private static func describe(_ error: ChannelError, address: String) -> String {
        switch error {
        case .connectTimeout: "connection to \(address) timed out"
        case .eof, .inputClosed, .outputClosed, .ioOnClosedChannel, .alreadyClosed: "\(address) closed the connection"
        default: "connection to \(address) failed: \(error)"
        }
    }

    private static func describe(_ error: HTTPClientError, address: String) -> String {
        switch error {
        case .connectTimeout: "connection to \(address) timed out"
        case .tlsHandshakeTimeout: "TLS handshake with \(address) timed out"
        case .deadlineExceeded: "no answer from \(address) within the request's timeout"
        case .readTimeout: "\(address) stopped answering (read timeout)"
        case .remoteConnectionClosed: "\(address) closed the connection before answering"
        case .cancelled: "request to \(address) cancelled"
        default: "request to \(address) failed: \(error)"
        }
    }

    /// BoringSSL's reason, in words when it is a common one, and as BoringSSL names it (which
    /// is what one searches for).
    static func tlsReason(_ error: NIOSSLError) -> String {
        let text = "\(error)"
        let reasons = text.matches(of: /:([A-Z][A-Z0-9_]+)(?= at |\]|$|,|\))/).map { String($0.output.1) }
        if reasons.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the server's certificate could not be verified against collector.ca_file (or the system trust store) (CERTIFICATE_VERIFY_FAILED)"
        }
        if reasons.contains("WRONG_VERSION_NUMBER") {
            return "the server does not speak TLS there; is it a plain http server behind an https:// URL? (WRONG_VERSION_NUMBER)"
        }
        if text.contains("EOF during handshake") {
            return "the server closed the connection during the handshake (is it a TLS server?)"
        }
        return reasons.first ?? text
    }

    /// The server a URL names, as messages show it.
    private struct Server {
        var host: String
        var address: String

        init(url: String) {
            let parsed = URL(string: url)
            host = parsed?.host ?? url
            let port = parsed?.port ?? (parsed?.scheme == "https" ? 443 : 80)
            address = Server.address(host: host, port: port)
        }

        /// `host:port`, with an IPv6 address in brackets.
        static func address(host: String, port: Int) -> String {
            host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

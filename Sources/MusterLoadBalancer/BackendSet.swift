import Foundation
import MusterWire

/// A backend server as the rendered configuration lists it.
public struct BackendServer: Hashable, Sendable, Codable, Comparable {
    public var name: String
    public var address: String

    public init(name: String, address: String) {
        self.name = name
        self.address = address
    }

    public static func < (a: Self, b: Self) -> Bool { (a.name, a.address) < (b.name, b.address) }
}

/// What the controller knows of each member, from the event stream (or Serf, in fallback).
public struct KnownMember: Hashable, Sendable, Codable {
    public var address: String
    public var role: String
    public var status: MemberStatus
}

/// Names and addresses come from the cluster and are untrusted: only what matches these
/// patterns ever reaches the configuration, so no member can add a line or a directive to it.
public enum MemberValidation {
    /// Letters, digits, `.`, `_`, `-`; starting with a letter or digit; at most 63 characters.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...63).contains(name.utf8.count), let first = name.unicodeScalars.first, isAlphanumeric(first) else { return false }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }

    /// A literal IPv4 or IPv6 address, in network byte order; nil for anything else.
    /// `inet_pton` reads a C string, so a NUL would end the text early and let what follows
    /// it through: only hex digits, `.` and `:` are looked at.
    static func parseAddress(_ address: String) -> [UInt8]? {
        guard (1...45).contains(address.utf8.count),
            address.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") || ($0 < 0x80 && isxdigit(Int32($0)) != 0) })
        else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Why `address` cannot be a backend even though it is an IP address, or nil when it can:
    /// HAProxy would send the requests to itself (loopback, which on the backend port can be
    /// HAProxy's own frontend), to nowhere (unspecified) or to many (broadcast, multicast).
    /// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address.
    public static func unusableAddressReason(_ address: String, allowLoopback: Bool = false) -> String? {
        guard var bytes = parseAddress(address) else { return "not an IP address" }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        if bytes.count == 4 {
            switch bytes[0] {
            case 0: return "in 0.0.0.0/8, which names no host to send to"
            case 127 where !allowLoopback: return "a loopback address (set lb.allow_loopback_backends for a one-host cluster)"
            case 224...239: return "a multicast address"
            default: break
            }
            if bytes == [255, 255, 255, 255] { return "the broadcast address" }
            return nil
        }
        if bytes.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
        if !allowLoopback, bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 {
            return "a loopback address (set lb.allow_loopback_backends for a one-host cluster)"
        }
        if bytes[0] == 0xFF { return "a multicast address" }
        return nil
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar))
    }

    /// The servers the configuration should list, and the members refused with the reason.
    public static func desiredServers(
        members: [String: KnownMember], role: String, allowLoopback: Bool = false
    ) -> (servers: [BackendServer], refused: [String]) {
        var servers: [BackendServer] = []
        var refused: [String] = []
        for (name, member) in members where member.status == .alive && member.role == role {
            guard isValidName(name) else {
                refused.append("member name \(String(reflecting: name)) refused: only letters, digits, '.', '_' and '-' are allowed")
                continue
            }
            if let reason = unusableAddressReason(member.address, allowLoopback: allowLoopback) {
                refused.append("member \(name): address \(String(reflecting: member.address)) refused: \(reason)")
                continue
            }
            servers.append(BackendServer(name: name, address: member.address))
        }
        return (servers.sorted(), refused.sorted())
    }
}

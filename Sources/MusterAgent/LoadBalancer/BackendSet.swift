import Foundation

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
    public var status: String
}

/// Names and addresses come from the cluster and are untrusted: only what matches these
/// patterns ever reaches the configuration, so no member can add a line or a directive to it.
public enum MemberValidation {
    /// Letters, digits, `.`, `_`, `-`; starting with a letter or digit; at most 63 characters.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...63).contains(name.utf8.count), let first = name.unicodeScalars.first, isAlphanumeric(first) else { return false }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }

    /// A literal IPv4 or IPv6 address (no names, no ports, nothing else).
    public static func isValidAddress(_ address: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, address, &v4) == 1 || inet_pton(AF_INET6, address, &v6) == 1
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar))
    }

    /// The servers the configuration should list, and the members refused with the reason.
    public static func desiredServers(members: [String: KnownMember], role: String) -> (servers: [BackendServer], refused: [String]) {
        var servers: [BackendServer] = []
        var refused: [String] = []
        for (name, member) in members where member.status == "alive" && member.role == role {
            guard isValidName(name) else {
                refused.append("member name \(String(reflecting: name)) refused: only letters, digits, '.', '_' and '-' are allowed")
                continue
            }
            guard isValidAddress(member.address) else {
                refused.append("member \(name): address \(String(reflecting: member.address)) refused: not an IP address")
                continue
            }
            servers.append(BackendServer(name: name, address: member.address))
        }
        return (servers.sorted(), refused.sorted())
    }
}

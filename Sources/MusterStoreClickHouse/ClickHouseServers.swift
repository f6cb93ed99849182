import Foundation

/// Where a Muster store lives in a ClickHouse cluster: the replicas of each shard (their HTTP
/// interfaces), the cluster's name in the servers' `remote_servers`, and the database.
///
/// The collector writes each line to a replica of the shard its identity hashes to
/// (`LineIdentity.shard(of:)`), so the shards must be listed in the same order on every
/// collector; readers ask any replica, through the `Distributed` table.
public struct ClickHouseServers: Sendable, Equatable {
    /// Per shard, the base URLs of its replicas (`http://host:8123`), in the order to try them.
    public let shards: [[String]]
    /// The cluster's name in `remote_servers` (`ON CLUSTER` DDL and the `Distributed` table).
    public let cluster: String
    /// The database holding Muster's tables.
    public let database: String
    /// Sent as `X-ClickHouse-User` / `X-ClickHouse-Key` when set.
    public let user: String?
    public let password: String?

    public init(shards: [[String]], cluster: String = "muster", database: String = "muster", user: String? = nil, password: String? = nil)
        throws(ClickHouseError)
    {
        guard !shards.isEmpty, shards.allSatisfy({ !$0.isEmpty }) else {
            throw .configuration("a ClickHouse store needs at least one shard with at least one replica")
        }
        for url in shards.joined() {
            guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil,
                parsed.query == nil
            else {
                throw .configuration("'\(url)' is not a ClickHouse HTTP address (http://HOST:PORT)")
            }
        }
        for name in [cluster, database] where !ClickHouseSQL.isPlainName(name) {
            throw .configuration("'\(name)' is not a plain ClickHouse name (letters, digits and _, not starting with a digit)")
        }
        self.shards = shards
        self.cluster = cluster
        self.database = database
        self.user = user
        self.password = password
    }

    /// Every replica, shard by shard: readers try them in turn.
    public var replicas: [String] { Array(shards.joined()) }
}

/// What went wrong talking to ClickHouse, with what a person can act on.
public enum ClickHouseError: Error, Equatable, CustomStringConvertible {
    /// The store's settings are wrong (no shard, an address that is not one).
    case configuration(String)
    /// No replica answered: each address with why.
    case unreachable([String])
    /// The server refused the statement: its exception code and message.
    case refused(server: String, code: Int?, message: String)
    /// An answer that is not what the statement asks for (a row that does not decode).
    case unexpectedAnswer(server: String, detail: String)
    /// The server took the statement and the answer never came whole (a timeout, a dropped
    /// connection): not run again elsewhere.
    case interrupted(server: String, detail: String)

    /// ClickHouse's codes for a database or table that does not exist (81, 60): no store there.
    static let missingCodes: Set<Int> = [60, 81]

    public var description: String {
        switch self {
        case .configuration(let detail): detail
        case .unreachable(let attempts): "no ClickHouse replica answered (\(attempts.joined(separator: "; ")))"
        case .refused(let server, let code, let message):
            "ClickHouse at \(server) refused the statement\(code.map { " (code \($0))" } ?? ""): \(message)"
        case .unexpectedAnswer(let server, let detail): "unexpected answer from ClickHouse at \(server): \(detail)"
        case .interrupted(let server, let detail): "ClickHouse at \(server) did not finish answering: \(detail)"
        }
    }
}

/// Building statements for ClickHouse 18.16, which has no query parameters over HTTP: every
/// value from outside goes into the text through `literal`, which quotes it.
enum ClickHouseSQL {
    /// A string literal: single quotes, with `\` and `'` escaped (ClickHouse's escaping), and
    /// control characters as escapes so a statement stays one line in the server's log.
    static func literal(_ text: String) -> String {
        var out = "'"
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "'"
    }

    /// `column IN ('a', 'b')`, or nil for no names (no condition).
    static func isIn(_ column: String, _ names: [String]) -> String? {
        names.isEmpty ? nil : "\(column) IN (\(names.map(literal).joined(separator: ", ")))"
    }

    static func isPlainName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first), name.utf8.count <= 64 else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }
}

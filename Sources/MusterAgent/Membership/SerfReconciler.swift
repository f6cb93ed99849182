import Foundation
import Logging
import MusterWire

/// Polls `serf members` and journals a snapshot whenever the list differs from the last one,
/// so a lost or failed handler call cannot leave the cluster's view wrong for longer than
/// one interval.
struct SerfReconciler: Sendable {
    let rpcAddress: String
    let interval: Duration
    let journal: EventJournal
    let observer: String
    let logger: Logger

    func run() async {
        var last: [Member]?
        var lastError: String?
        while !Task.isCancelled {
            do {
                let members = try await SerfMembers.fetch(rpcAddress: rpcAddress)
                lastError = nil
                if members != last {
                    try journal.append([JournalEntry(t: Timestamp.now(), event: .snapshot, observer: observer, members: members)])
                    last = members
                }
            } catch {
                // Serf may not be up yet or may be restarting: say so once, not every interval.
                let text = "\(error)"
                if text != lastError { logger.warning("membership reconciliation failed", metadata: ["error": "\(text)"]) }
                lastError = text
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// `serf members -format json`, read into `Member`s sorted by name.
public enum SerfMembers {
    public static func fetch(rpcAddress: String) async throws -> [Member] {
        let output = try await Command("serf", ["members", "-format", "json", "-rpc-addr", rpcAddress]).run()
        guard output.status == 0 else {
            // Serf prints its connection errors on stdout.
            let detail = output.stderrText.isEmpty ? String(decoding: output.stdout, as: UTF8.self) : output.stderrText
            throw JournalError.badInput("serf members (rpc \(rpcAddress)): \(detail.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return try parse(output.stdout)
    }

    private struct Listing: Decodable {
        struct Entry: Decodable {
            var name: String
            var addr: String
            var tags: [String: String]?
            var status: String
        }
        var members: [Entry]
    }

    static func parse(_ json: Data) throws -> [Member] {
        let listing: Listing
        do {
            listing = try JSONDecoder().decode(Listing.self, from: json)
        } catch {
            throw JournalError.badInput("serf members printed something that is not its JSON listing: \(error)")
        }
        return listing.members.map { entry in
            let tags = entry.tags ?? [:]
            return Member(
                name: entry.name, address: hostPart(entry.addr), role: tags["role"] ?? "", tags: tags,
                status: MemberStatus(serf: entry.status) ?? .failed)
        }.sorted { $0.name < $1.name }
    }

    /// `10.0.0.3:7946` → `10.0.0.3`, `[fd00::3]:7946` → `fd00::3`: the form the handler gets.
    static func hostPart(_ address: String) -> String {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<close])
        }
        if address.filter({ $0 == ":" }).count == 1, let colon = address.lastIndex(of: ":") {
            return String(address[..<colon])
        }
        return address
    }
}

import Foundation
import Logging
import MusterWire

/// Journals what this node is — addresses, role, image, its s6 services and their state —
/// at start and whenever that changes.
struct InventoryReporter: Sendable {
    let config: AgentConfig.InventoryConfig
    let node: String
    let journal: EventJournal
    let logger: Logger

    /// The agent's own version, reported in the inventory.
    static let agentVersion = "0.4.0"

    func run() async {
        var last: Inventory?
        while !Task.isCancelled {
            let current = await collect()
            if current != last {
                do {
                    try journal.append([JournalEntry(t: Timestamp.now(), event: .inventory, observer: node, inventory: current)])
                    last = current
                } catch {
                    logger.warning("cannot journal inventory", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(config.intervalMilliseconds))
        }
    }

    func collect() async -> Inventory {
        Inventory(
            node: node, hostname: ProcessInfo.processInfo.hostName, addresses: Self.addresses(), role: config.role,
            tags: config.tags, image: config.image, agentVersion: Self.agentVersion,
            services: await services())
    }

    /// Each service directory under the s6 scan directory, with `s6-svstat`'s view of it.
    func services() async -> [ServiceState] {
        guard let scandir = config.scandir,
            let names = try? FileManager.default.contentsOfDirectory(atPath: scandir)
        else { return [] }
        var states: [ServiceState] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let directory = scandir + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory + "/run", isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            states.append(await Self.status(of: name, directory: directory))
        }
        return states
    }

    static func status(of name: String, directory: String) async -> ServiceState {
        let down = ServiceState(name: name, up: false, pid: nil, since: nil, wantedUp: false)
        guard let output = try? await Command("s6-svstat", ["-o", "up,wantedup,pid,updownsince", directory]).run(),
            output.status == 0
        else { return down }
        return parseStatus(name: name, String(decoding: output.stdout, as: UTF8.self)) ?? down
    }

    /// `true true 13380 @400000006b021d9317ccb482` (up, wantedup, pid or -1, TAI64N label).
    static func parseStatus(name: String, _ text: String) -> ServiceState? {
        let words = text.split(whereSeparator: \.isWhitespace)
        guard words.count >= 4 else { return nil }
        let pid = Int(words[2]).flatMap { $0 > 0 ? $0 : nil }
        return ServiceState(
            name: name, up: words[0] == "true", pid: pid, since: TAI64N.decode(Array((words[3] + " ").utf8)), wantedUp: words[1] == "true")
    }

    /// IPv4 addresses of this network namespace, loopback excluded.
    static func addresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var result: [String] = []
        for pointer in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let address = pointer.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0
            else { continue }
            let text = String(cString: host)
            if !text.hasPrefix("127.") { result.append(text) }
        }
        return result.sorted()
    }
}

import Foundation
import MusterWire

/// `muster-agent serf-event`: turns one invocation of Serf's event handler into journal entries.
///
/// Serf passes the event in `SERF_EVENT` and, for member events, one line per member on stdin:
/// `name<TAB>address<TAB>role<TAB>tag1=v1,tag2=v2` (it escapes tabs and newlines inside
/// values). For user events the name is in `SERF_USER_EVENT` and stdin is the payload.
/// Serf runs handlers one at a time, so this only parses and appends; the agent ships later.
public enum SerfEventHandler {
    public static func entries(environment: [String: String], stdin: Data, now: Int64 = Timestamp.now())
        throws(JournalError) -> [JournalEntry]
    {
        guard let name = environment["SERF_EVENT"], !name.isEmpty else {
            throw .badInput("SERF_EVENT is not set: this command is Serf's event handler (serf agent -event-handler \"muster-agent serf-event\")")
        }
        guard let event = JournalEvent(rawValue: name), event.isSerfEvent else {
            throw .badInput("unknown SERF_EVENT '\(name)' (expected member-join, member-leave, member-failed, member-update, member-reap, user or query)")
        }
        let observer = environment["SERF_SELF_NAME"] ?? ProcessInfo.processInfo.hostName
        switch event {
        case .user, .query:
            let eventName = (event == .user ? environment["SERF_USER_EVENT"] : environment["SERF_QUERY_NAME"]) ?? ""
            let ltime = (event == .user ? environment["SERF_USER_LTIME"] : environment["SERF_QUERY_LTIME"]).flatMap { Int64($0) }
            let payload = String(decoding: stdin, as: UTF8.self)
            return [JournalEntry(t: now, event: event, observer: observer, user: UserEvent(name: eventName, payload: payload, ltime: ltime))]
        default:
            let text = String(decoding: stdin, as: UTF8.self)
            var entries: [JournalEntry] = []
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
                guard let member = member(fromLine: line) else {
                    throw .badInput("stdin line \(index + 1): expected name<TAB>address<TAB>role<TAB>tags, got '\(line)'")
                }
                entries.append(JournalEntry(t: now, event: event, observer: observer, member: member))
            }
            return entries
        }
    }

    static func member(fromLine line: Substring) -> Member? {
        let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard columns.count >= 2, !columns[0].isEmpty else { return nil }
        let role = columns.count > 2 ? String(columns[2]) : ""
        var tags: [String: String] = [:]
        if columns.count > 3 {
            for pair in columns[3].split(separator: ",") {
                guard let equals = pair.firstIndex(of: "=") else { continue }
                tags[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
        }
        return Member(name: String(columns[0]), address: String(columns[1]), role: role, tags: tags)
    }
}

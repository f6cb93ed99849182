import Foundation
import MusterLoadBalancer
import MusterWire
import Testing

@testable import MusterAgent

@Suite struct MembershipSourceTests {
    @Test func aCoalescedMemberEventBecomesOneEntryPerMember() throws {
        let stdin = Data("s1\t10.0.0.10\tweb\trole=web,dc=lab\ns2\t10.0.0.11\t\t\n".utf8)
        let entries = try SerfEventHandler.entries(
            environment: ["SERF_EVENT": "member-failed", "SERF_SELF_NAME": "ha"], stdin: stdin, now: 42)
        #expect(entries.count == 2)
        #expect(entries[0] == JournalEntry(
            t: 42, event: .memberFailed, observer: "ha",
            member: Member(name: "s1", address: "10.0.0.10", role: "web", tags: ["role": "web", "dc": "lab"])))
        #expect(entries[1].member == Member(name: "s2", address: "10.0.0.11", role: "", tags: [:]))
        // The journal line reads back as the same entry.
        #expect(try JournalEntry.decode(line: entries[0].encodedLine()) == entries[0])
    }

    @Test func userEventsKeepTheirNamePayloadAndLamportTime() throws {
        let entries = try SerfEventHandler.entries(
            environment: ["SERF_EVENT": "user", "SERF_USER_EVENT": "deploy", "SERF_USER_LTIME": "7", "SERF_SELF_NAME": "s1"],
            stdin: Data("v2".utf8), now: 1)
        #expect(entries == [JournalEntry(t: 1, event: .user, observer: "s1", user: UserEvent(name: "deploy", payload: "v2", ltime: 7))])
    }

    @Test func inputThatIsNotASerfEventIsRefusedWithAReason() {
        #expect(throws: JournalError.self) { try SerfEventHandler.entries(environment: [:], stdin: Data()) }
        #expect(throws: JournalError.self) { try SerfEventHandler.entries(environment: ["SERF_EVENT": "snapshot"], stdin: Data()) }
        #expect(throws: JournalError.self) {
            try SerfEventHandler.entries(environment: ["SERF_EVENT": "member-join"], stdin: Data("only-a-name\n".utf8))
        }
    }

    @Test func serfMembersJSONIsReadWithStatusesAndBareAddresses() throws {
        let json = Data(#"""
            {"members":[{"name":"s2","addr":"10.0.0.11:7946","port":7946,"tags":{"role":"web"},"status":"leaving","protocol":{}},
            {"name":"ha","addr":"[fd00::3]:7946","port":7946,"tags":{},"status":"alive","protocol":{}}]}
            """#.utf8)
        let members = try SerfMembers.parse(json)
        #expect(members.map(\.name) == ["ha", "s2"])
        #expect(members[0].address == "fd00::3")
        #expect(members[1] == Member(name: "s2", address: "10.0.0.11", role: "web", tags: ["role": "web"], status: .left))
        #expect(throws: JournalError.self) { try SerfMembers.parse(Data("Error connecting".utf8)) }
    }

    @Test func s6StatusLinesAreRead() {
        let state = InventoryReporter.parseStatus(name: "serf", "true true 13380 @400000006b021d9317ccb482\n")
        #expect(state?.up == true && state?.wantedUp == true && state?.pid == 13380)
        #expect(state?.since != nil)
        let down = InventoryReporter.parseStatus(name: "webapp", "false true -1 @400000006b021d9317ccb482")
        #expect(down?.up == false && down?.pid == nil)
    }

    @Test func concurrentAppendsNeverInterleaveLines() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString).jsonl").path
        let journal = EventJournal(path: path)
        let payload = String(repeating: "x", count: 5000)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for index in 0..<25 {
                        let entry = JournalEntry(
                            t: Int64(index), event: .user, observer: "w\(writer)", user: UserEvent(name: "e", payload: payload))
                        try? journal.append([entry, entry])
                    }
                }
            }
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 8 * 25 * 2)
        for line in lines { #expect(throws: Never.self) { try JournalEntry.decode(line: String(line)) } }
    }

    /// The example's commented membership and inventory sections, uncommented, load as documented.
    @Test func membershipAndInventorySectionsLoadAndAddTheJournalSource() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("agent/agent.example.yaml").path
        var text = try String(contentsOfFile: example, encoding: .utf8)
        for key in ["membership", "inventory", "lb"] { text = text.replacingOccurrences(of: "# \(key):", with: "\(key):") }
        for key in ["journal", "serf_rpc", "reconcile_interval_ms", "scandir", "interval_ms", "role", "image", "tags", "template",
                    "config", "haproxy", "master_socket", "runtime_socket", "backend", "backend_role", "backend_port", "http_port",
                    "stats_port", "bind_address", "log_target", "quiet_ms", "max_wait_ms", "drain_timeout_ms", "stats_interval_ms"] {
            text = text.replacingOccurrences(of: "#   \(key):", with: "  \(key):")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try AgentConfig.load(path: path, components: .musterAgent)
        #expect(config.membership?.journal == "/var/lib/muster-agent/events.jsonl")
        #expect(config.membership?.reconcileIntervalMilliseconds == 5000)
        #expect(config.inventory?.scandir == "/run/service")
        #expect(config.inventory?.role == "web")
        #expect(config.inventory?.tags == ["zone": "a"])
        #expect(config.effectiveSources.last as? AgentConfig.FileSourceConfig == .init(id: "events", paths: ["/var/lib/muster-agent/events.jsonl"], format: .plain))
        #expect(config.loadBalancer?.masterSocket == "/run/haproxy/master.sock")
        #expect(config.loadBalancer?.render.runtimeSocket == "/run/haproxy/admin.sock")
        #expect(config.loadBalancer?.render.logTarget == "127.0.0.1:514")
        #expect(config.loadBalancer?.maxWaitMilliseconds == 2000)
        #expect(throws: Never.self) {
            var valid = config
            valid.collector.token = "t"
            try valid.validate()
        }
        // Without either section there is no journal.
        #expect(AgentConfig().journalPath == nil)
    }

    @Test func aFileSourceCannotTakeTheJournalsID() {
        var config = AgentConfig()
        config.collector.token = "t"
        config.sources = [AgentConfig.FileSourceConfig(id: "events", paths: ["/tmp/x"])]
        #expect(throws: AgentConfigError.self) { try config.validate() }
    }
}

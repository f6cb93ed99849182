import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real agent and collector fed lines and datagrams that once stopped the agent: it keeps
/// running and ships every line, the hostile ones stored as they came.
@Suite(.serialized) final class HostileInputAgentTests {
    let pipeline: LoopbackPipeline

    init() throws {
        pipeline = try LoopbackPipeline("hostile-agent")
    }

    /// An s6 label naming a time past 2262 (`format: auto`, the default) trapped in the label's
    /// arithmetic at every start: the node shipped nothing ever again.
    @Test func aPoisonedLabelInATailedFileIsShippedAsItIsWithEveryOtherLine() throws {
        let poisoned = ["@400000030000000000000000 x", "@ffffffffffffffff00000000 y", "@4000000000000000000000ff before 1970"]
        var lines = (0..<100).map { "line \($0)" }
        lines.insert(contentsOf: poisoned, at: 50)
        lines.append("@400000006553f125075bcd15 labelled")
        try (lines.joined(separator: "\n") + "\n").write(toFile: pipeline.logs + "/app.log", atomically: false, encoding: .utf8)
        try pipeline.startCollector()
        let agent = try pipeline.startAgent()
        let expected = lines.dropLast() + ["labelled"]
        let shipped = waitUntil(timeout: 30) { (try? pipeline.storedCount()) == expected.count }
        #expect(shipped, "stored \((try? pipeline.storedCount()) ?? -1) of \(expected.count); agent:\n\(pipeline.agentLog().suffix(3000))")
        #expect(Set(try pipeline.storedMessages()) == Set(expected))
        #expect(agent.process.isRunning, "agent:\n\(pipeline.agentLog().suffix(3000))")
    }

    /// A syslog datagram with year 9999 trapped the agent, losing the datagrams it held.
    @Test func aDatagramWithAnImpossibleYearIsStoredWithEveryOtherDatagram() throws {
        let port = unusedLoopbackPort()
        let config = pipeline.directory + "/agent.yaml"
        try "sources:\n  - {id: syslog, type: syslog, listen: [udp://127.0.0.1:\(port)]}\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        try pipeline.startCollector()
        let agent = try pipeline.startAgent(extra: ["--config", config])
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        func send(_ text: String) {
            _ = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socket, text, text.utf8.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        let bound = waitUntil(timeout: 20) { pipeline.agentLog().contains("agent started") }
        try #require(bound, "agent:\n\(pipeline.agentLog().suffix(3000))")
        var expected: [String] = []
        for number in 0..<200 {
            send("<14>1 2026-11-22T04:19:28Z host app - - - before \(number)")
            expected.append("before \(number)")
        }
        for (number, poisoned) in [
            "<14>1 9999-12-31T23:59:59Z host app - - - x", "<14>1 0000-01-01T00:00:00Z host app - - - x",
            "<14>1 2263-01-01T00:00:00Z host app - - - x", "<14>9999-12-31T23:59:59Z host app: x",
        ].enumerated() {
            send(poisoned + "\(number)")
            expected.append("x\(number)")
        }
        send("<14>1 2026-11-22T04:19:28Z host app - - - after")
        expected.append("after")
        let shipped = waitUntil(timeout: 30) { (try? pipeline.storedCount(source: "syslog")) == expected.count }
        #expect(shipped, "stored \((try? pipeline.storedCount(source: "syslog")) ?? -1) of \(expected.count); agent:\n\(pipeline.agentLog().suffix(3000))")
        #expect(Set(try pipeline.storedMessages(source: "syslog")) == Set(expected))
        #expect(agent.process.isRunning)
    }
}

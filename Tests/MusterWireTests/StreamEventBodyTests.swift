import Foundation
import MusterWire
import Testing

/// The stream's bodies are read as text by consumers outside Muster (scripts, exports diffed
/// against older ones), so each kind's JSON is pinned here byte for byte: key order (the
/// locale-aware order of every body ever stored, where tags mix cases, digits and accents),
/// escaping, and which keys an absent value leaves out.
@Suite struct StreamEventBodyTests {
    static let second: Int64 = 1_000_000_000
    static let tags = [
        "role": "web", "Zone": "b", "zone": "a", "_x": "1", "x10": "y", "x9": "z", "é": "accent", "e": "plain",
        "path": "/a/b", "q": "say \"hi\"\n\t\u{1}\u{8}\u{c}\u{7f}\u{2028}😀\\",
    ]

    /// The body encodes to exactly `json`, and `json` decodes back to the body.
    func expect<Content>(_ body: StreamEventBody<Content>, writes json: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try body.json() == json, sourceLocation: sourceLocation)
        #expect(try StreamEventBody<Content>(json: json) == body, sourceLocation: sourceLocation)
    }

    @Test func membershipChange() throws {
        let join = MembershipChangeEvent(
            member: "s1", change: .joined, status: .alive, address: "10.0.0.10", role: "web", tags: Self.tags, observer: "ha",
            cause: "member-join")
        try expect(StreamEventBody(t: 100 * Self.second, content: join), writes: #"{"address":"10.0.0.10","cause":"member-join","change":"joined","member":"s1","observer":"ha","role":"web","status":"alive","t":100000000000,"tags":{"_x":"1","e":"plain","é":"accent","path":"/a/b","q":"say \"hi\"\n\t\u0001\b\f\#u{7F}\#u{2028}😀\\","role":"web","x9":"z","x10":"y","zone":"a","Zone":"b"},"time":"1970-01-01T00:01:40.000000000Z"}"#)
        var failed = join
        failed.change = .failed
        failed.status = .failed
        failed.cause = "member-failed"
        failed.previous = .init(status: .alive, address: "10.0.0.10")
        try expect(StreamEventBody(t: 101 * Self.second, content: failed), writes: #"{"address":"10.0.0.10","cause":"member-failed","change":"failed","member":"s1","observer":"ha","previous":{"address":"10.0.0.10","status":"alive"},"role":"web","status":"failed","t":101000000000,"tags":{"_x":"1","e":"plain","é":"accent","path":"/a/b","q":"say \"hi\"\n\t\u0001\b\f\#u{7F}\#u{2028}😀\\","role":"web","x9":"z","x10":"y","zone":"a","Zone":"b"},"time":"1970-01-01T00:01:41.000000000Z"}"#)
        let untagged = MembershipChangeEvent(
            member: "s2", change: .joined, status: .alive, address: "10.0.0.10", role: "web", tags: [:], observer: "ha",
            cause: "member-join")
        try expect(StreamEventBody(t: 102 * Self.second, content: untagged), writes: #"{"address":"10.0.0.10","cause":"member-join","change":"joined","member":"s2","observer":"ha","role":"web","status":"alive","t":102000000000,"tags":{},"time":"1970-01-01T00:01:42.000000000Z"}"#)
    }

    @Test func userEventAndQuery() throws {
        let user = ObservedUserEvent(UserEvent(name: "deploy/x", payload: "v2 \"q\"\n\u{0}é", ltime: 3), observer: "s1")
        try expect(StreamEventBody(t: 103 * Self.second, content: user), writes: #"{"ltime":3,"name":"deploy/x","observer":"s1","payload":"v2 \"q\"\n\u0000é","t":103000000000,"time":"1970-01-01T00:01:43.000000000Z"}"#)
        let query = ObservedUserEvent(UserEvent(name: "q", payload: ""), observer: "s1")
        try expect(StreamEventBody(t: 104 * Self.second, content: query), writes: #"{"name":"q","observer":"s1","payload":"","t":104000000000,"time":"1970-01-01T00:01:44.000000000Z"}"#)
    }

    @Test func inventory() throws {
        let full = Inventory(
            node: "s1", hostname: "h/1", addresses: ["10.0.0.10", "fd00::1"], role: "web", tags: Self.tags, image: "muster/node:1",
            agentVersion: "t",
            services: [
                ServiceState(name: "serf", up: true, pid: 10, since: 5, wantedUp: true),
                ServiceState(name: "web", up: false, pid: nil, since: nil, wantedUp: false),
            ])
        try expect(StreamEventBody(t: 105 * Self.second, content: full), writes: #"{"addresses":["10.0.0.10","fd00::1"],"agentVersion":"t","hostname":"h/1","image":"muster/node:1","node":"s1","role":"web","services":[{"name":"serf","pid":10,"since":5,"up":true,"wantedUp":true},{"name":"web","up":false,"wantedUp":false}],"t":105000000000,"tags":{"_x":"1","e":"plain","é":"accent","path":"/a/b","q":"say \"hi\"\n\t\u0001\b\f\#u{7F}\#u{2028}😀\\","role":"web","x9":"z","x10":"y","zone":"a","Zone":"b"},"time":"1970-01-01T00:01:45.000000000Z"}"#)
        let bare = Inventory(node: "s2", hostname: "h", addresses: [], role: "", tags: [:], image: nil, agentVersion: "t", services: [])
        try expect(StreamEventBody(t: 106 * Self.second, content: bare), writes: #"{"addresses":[],"agentVersion":"t","hostname":"h","node":"s2","role":"","services":[],"t":106000000000,"tags":{},"time":"1970-01-01T00:01:46.000000000Z"}"#)
    }

    @Test func configApply() throws {
        let applied = ConfigApply(
            version: 3, sha256: "abc", text: "global\n", diff: "+x", trigger: ["s1 joined", "start"], method: "runtime",
            durationMilliseconds: 12, outcome: .appliedWithRejections, message: "member \"x\" refused / bad\n", servers: ["s1", "s2"])
        try expect(StreamEventBody(t: 107 * Self.second, content: ConfigApplyEvent(node: "ha", apply: applied)), writes: #"{"duration_ms":12,"message":"member \"x\" refused / bad\n","method":"runtime","node":"ha","outcome":"applied-with-rejections","servers":["s1","s2"],"sha256":"abc","t":107000000000,"time":"1970-01-01T00:01:47.000000000Z","trigger":["s1 joined","start"],"version":3}"#)
        let invalid = ConfigApply(
            version: 4, sha256: "def", text: "", diff: "", trigger: [], method: "none", durationMilliseconds: 0, outcome: .invalid,
            message: nil, servers: [])
        try expect(StreamEventBody(t: 108 * Self.second, content: ConfigApplyEvent(node: "ha", apply: invalid)), writes: #"{"duration_ms":0,"method":"none","node":"ha","outcome":"invalid","servers":[],"sha256":"def","t":108000000000,"time":"1970-01-01T00:01:48.000000000Z","trigger":[],"version":4}"#)
    }

    @Test func mark() throws {
        try expect(StreamEventBody(t: 109 * Self.second, content: MarkEvent(name: "task-2", note: "deploy \"v2\" / é")), writes: #"{"name":"task-2","note":"deploy \"v2\" / é","t":109000000000,"time":"1970-01-01T00:01:49.000000000Z"}"#)
        try expect(StreamEventBody(t: 110 * Self.second, content: MarkEvent(name: "task-3", note: "")), writes: #"{"name":"task-3","note":"","t":110000000000,"time":"1970-01-01T00:01:50.000000000Z"}"#)
    }

    /// A consumer asking for one kind does not take another kind's body for it.
    @Test func aBodyOfAnotherKindDoesNotDecode() throws {
        let mark = try StreamEventBody(t: 1, content: MarkEvent(name: "task-2", note: "")).json()
        #expect(throws: DecodingError.self) { try StreamEventBody<MembershipChangeEvent>(json: mark) }
    }

    /// Outcomes are stored and shipped as their words; one this version does not know (a
    /// newer agent's) is kept as it came instead of refusing the journal line.
    @Test func configOutcomesKeepTheirWordsAndUnknownOnesSurvive() throws {
        let words: [(ConfigApply.Outcome, String)] = [
            (.applied, "applied"), (.appliedWithRejections, "applied-with-rejections"), (.rejected, "rejected"),
            (.invalid, "invalid"), (.failed, "failed"), (.unrecognized("paused"), "paused"),
        ]
        for (outcome, word) in words {
            #expect(outcome.rawValue == word)
            #expect(ConfigApply.Outcome(rawValue: word) == outcome)
        }
        let line = #"{"config":{"diff":"","durationMilliseconds":0,"method":"none","outcome":"paused","servers":[],"sha256":"","text":"","trigger":[],"version":1},"event":"config","observer":"lb1","t":1}"#
        let entry = try JournalEntry.decode(line: line)
        #expect(entry.config?.outcome == .unrecognized("paused"))
        #expect(entry.encodedLine() == line)
    }
}

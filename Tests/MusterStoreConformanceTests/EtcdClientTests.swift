import Foundation
import Synchronization
@testable import MusterStoreEtcd
import Testing

/// `EtcdClient` over etcd's HTTP/JSON gateway: the decoding of answers as etcd 3.4.23 writes
/// them (and of what it never should), then requests against the real etcd that
/// `ScaleOutServers` starts, each test under a key prefix of its own that it deletes.
@Suite struct EtcdClientTests {
    // MARK: Decoding

    /// `text` in base64, as the gateway writes keys and values.
    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static let header = #""header":{"cluster_id":"15875391935852295136","member_id":"7383792418829112008","revision":"7","raft_term":"2"}"#

    /// The detail of the `.unexpectedAnswer` that decoding `json` throws, nil when it decodes.
    static func refusal(_ json: String, txn: Bool = false) -> String? {
        do throws(EtcdError) {
            if txn { _ = try EtcdAnswer.txn(Array(json.utf8), from: "e") } else { _ = try EtcdAnswer.range(Array(json.utf8), from: "e") }
            return nil
        } catch {
            guard case .unexpectedAnswer(endpoint: "e", let detail) = error else { return "not unexpectedAnswer: \(error)" }
            return detail
        }
    }

    @Test func aRangeAnswerDecodesWithTheFieldsTheGatewayLeavesOut() throws {
        // /p/a was written twice, the second time with an empty value (no "value" at all).
        let json = """
            {\(Self.header),"kvs":[\
            {"key":"\(Self.b64("/p/a"))","create_revision":"3","mod_revision":"7","version":"2"},\
            {"key":"\(Self.b64("/p/b"))","create_revision":"4","mod_revision":"4","version":"1","value":"\(Self.b64("v/p/b"))"}],\
            "more":true,"count":"4"}
            """
        let range = try EtcdAnswer.range(Array(json.utf8), from: "e")
        #expect(range.revision == 7)
        #expect(range.more)
        #expect(range.count == 4)
        #expect(range.kvs == [
            EtcdKeyValue(key: "/p/a", value: [], createRevision: 3, modRevision: 7, version: 2),
            EtcdKeyValue(key: "/p/b", value: Array("v/p/b".utf8), createRevision: 4, modRevision: 4, version: 1),
        ])
        #expect(range.kvs[1].text == "v/p/b")
    }

    @Test func anEmptyRangeIsOnlyAHeader() throws {
        let range = try EtcdAnswer.range(Array("{\(Self.header)}".utf8), from: "e")
        #expect(range == EtcdRange(kvs: [], more: false, count: 0, revision: 7))
    }

    @Test func txnAnswersDecodeOneRangeOrNilPerOperation() throws {
        let kv = #"{"key":"\#(Self.b64("/a/1"))","create_revision":"2","mod_revision":"2","version":"1","value":"\#(Self.b64("hello"))"}"#
        let succeeded = """
            {"header":{"revision":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"2"}}},\
            {"response_range":{"header":{"revision":"2"},"kvs":[\(kv)],"count":"1"}}]}
            """
        let one = EtcdKeyValue(key: "/a/1", value: Array("hello".utf8), createRevision: 2, modRevision: 2, version: 1)
        #expect(
            try EtcdAnswer.txn(Array(succeeded.utf8), from: "e")
                == EtcdTxnResult(succeeded: true, revision: 2, ranges: [nil, EtcdRange(kvs: [one], more: false, count: 1, revision: 2)]))
        // A failed txn has no "succeeded"; a delete that deleted nothing has no "deleted".
        let failed = """
            {"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[\(kv)],"count":"1"}},\
            {"response_delete_range":{"header":{"revision":"2"}}}]}
            """
        #expect(
            try EtcdAnswer.txn(Array(failed.utf8), from: "e")
                == EtcdTxnResult(succeeded: false, revision: 2, ranges: [EtcdRange(kvs: [one], more: false, count: 1, revision: 2), nil]))
        // A branch of no operations: no "responses".
        #expect(try EtcdAnswer.txn(Array("{\(Self.header),\"succeeded\":true}".utf8), from: "e").ranges == [])
    }

    @Test func answersThatAreNotEtcdsAreRefusedNamingWhatIsWrong() {
        func kv(key: String = EtcdClientTests.b64("/k"), create: String = "\"1\"", mod: String = "\"2\"", version: String = "\"1\"", value: String = "\"\"") -> String {
            "{\(Self.header),\"kvs\":[{\"key\":\"\(key)\",\"create_revision\":\(create),\"mod_revision\":\(mod),\"version\":\(version),\"value\":\(value)}],\"count\":\"1\"}"
        }
        #expect(Self.refusal(kv()) == nil)
        #expect(Self.refusal(kv(key: "L2E*")) == #"the answer has kvs[0].key "L2E*", which is not base64"#)
        #expect(Self.refusal(kv(value: "\"aGVsbG8\"")) == #"the answer has kvs[0].value "aGVsbG8", which is not base64"#)
        #expect(Self.refusal(kv(key: Data([0x2f, 0xff]).base64EncodedString())) == #"the answer has kvs[0].key "L/8=", which is not UTF-8"#)
        #expect(Self.refusal(kv(mod: "\"-1\"")) == #"the answer has kvs[0].mod_revision "-1", not an integer in 0...9223372036854775807"#)
        #expect(
            Self.refusal(kv(create: "\"9223372036854775808\""))
                == #"the answer has kvs[0].create_revision "9223372036854775808", not an integer in 0...9223372036854775807"#)
        #expect(Self.refusal(kv(version: "\" 1\"")) == #"the answer has kvs[0].version " 1", not an integer in 0...9223372036854775807"#)
        #expect(Self.refusal(kv(mod: "2"))?.hasPrefix("kvs[0].mod_revision: ") == true)  // a number, not proto3's string
        #expect(Self.refusal(kv(version: "\"0\""))?.contains("not a key that exists") == true)
        #expect(Self.refusal(kv(create: "\"3\""))?.contains("not a key that exists") == true)  // created after its last write
        #expect(Self.refusal(kv(mod: "\"8\""))?.contains("not a key that exists") == true)  // written after the answer's revision
        #expect(Self.refusal("{\"kvs\":[]}") == "the answer has no header.revision")
        #expect(Self.refusal("{\"header\":{\"revision\":\"x\"}}") == #"the answer has header.revision "x", not an integer in 0...9223372036854775807"#)
        #expect(Self.refusal("{\(Self.header),\"count\":\"-3\"}") == #"the answer has count "-3", not an integer in 0...9223372036854775807"#)
        #expect(
            Self.refusal("{\(Self.header),\"kvs\":[{\"key\":\"\(Self.b64("/b"))\",\"create_revision\":\"1\",\"mod_revision\":\"1\",\"version\":\"1\"}],\"count\":\"0\"}")
                == "the answer has count 0 with 1 kvs")
        let unordered = ["/b", "/a"].map { "{\"key\":\"\(Self.b64($0))\",\"create_revision\":\"1\",\"mod_revision\":\"1\",\"version\":\"1\"}" }
        #expect(
            Self.refusal("{\(Self.header),\"kvs\":[\(unordered.joined(separator: ","))],\"count\":\"2\"}")
                == #"the answer has kvs[1].key "/a" out of ascending order"#)
        #expect(Self.refusal("<html>502 Bad Gateway</html>")?.hasPrefix("not a JSON object") == true)
        #expect(Self.refusal("[]")?.hasPrefix("not a JSON object") == true)
        #expect(Self.refusal("") != nil)
        #expect(Self.refusal("{\(Self.header),\"more\":\"true\"}")?.hasPrefix("more: ") == true)
        #expect(
            Self.refusal("{\(Self.header),\"responses\":[{\"response_put\":{}},{}]}", txn: true)
                == "responses[1] is not exactly one of response_range, response_put, response_delete_range")
        #expect(
            Self.refusal("{\(Self.header),\"responses\":[{\"response_range\":{\"count\":\"-1\"}}]}", txn: true)
                == #"responses[0] has count "-1", not an integer in 0...9223372036854775807"#)
    }

    @Test func prefixEndIsTheKeyAfterEveryKeyWithThePrefix() {
        #expect(EtcdClient.prefixEnd("/a/") == "/a0")
        #expect(EtcdClient.prefixEnd("é") == "ê")  // 0xC3 0xA9 → 0xC3 0xAA: etcd's bytes
        // Where etcd's last byte + 1 is not UTF-8: the next scalar, which bounds the same UTF-8 keys.
        #expect(EtcdClient.prefixEnd("a\u{7F}") == "a\u{80}")
        #expect(EtcdClient.prefixEnd("a\u{BF}") == "a\u{C0}")
        #expect(EtcdClient.prefixEnd("a\u{D7FF}") == "a\u{E000}")
        #expect(EtcdClient.prefixEnd("a\u{10FFFF}") == "b")
        #expect(EtcdClient.prefixEnd("\u{10FFFF}") == "\0")
        #expect(EtcdClient.prefixEnd("") == "\0")
    }

    @Test func endpointsMustBeClientURLs() throws {
        #expect(throws: EtcdError.configuration("an etcd client needs at least one endpoint (http://HOST:PORT)")) {
            try EtcdClient(endpoints: [])
        }
        for endpoint in ["127.0.0.1:2379", "ftp://h:2379", "http://h", "http://h:2379/v3", "http://h:2379?a=1", "http://u@h:2379", "http://:2379"] {
            #expect(
                throws: EtcdError.configuration(
                    "'\(endpoint)' is not an etcd client URL (http://HOST:PORT or https://HOST:PORT, nothing after the port)")
            ) { try EtcdClient(endpoints: ["http://127.0.0.1:2379", endpoint]) }
        }
        #expect(try EtcdClient(endpoints: ["http://h:2379/", "https://h:2380"]).endpoints == ["http://h:2379", "https://h:2380"])
    }

    /// Watch messages as etcd 3.4.23 writes them (read off a `curl` of `/v3/watch`): the
    /// creation, then one message per revision with its events; a delete has no value.
    @Test func watchMessagesDecodeCreationChangesAndTheEnd() throws {
        func message(_ json: String) throws(EtcdError) -> EtcdWatchMessage { try EtcdAnswer.watch(Array(json.utf8), from: "e") }
        let created = try message(#"{"result":{\#(Self.header),"created":true}}"#)
        #expect(created == EtcdWatchMessage(created: true, canceled: false, compactRevision: 0, changes: [], revision: 7))
        let put = try message(
            #"{"result":{\#(Self.header),"events":[{"kv":{"key":"\#(Self.b64("/seq"))","create_revision":"2","mod_revision":"6","version":"3","value":"\#(Self.b64("41"))"}}]}}"#)
        #expect(put.changes == [
            EtcdWatchChange(
                key: "/seq", kv: EtcdKeyValue(key: "/seq", value: Array("41".utf8), createRevision: 2, modRevision: 6, version: 3), modRevision: 6)
        ])
        let deleted = try message(#"{"result":{\#(Self.header),"events":[{"type":"DELETE","kv":{"key":"\#(Self.b64("/seq"))","mod_revision":"7"}}]}}"#)
        #expect(deleted.changes == [EtcdWatchChange(key: "/seq", kv: nil, modRevision: 7)])
        let compacted = try message(#"{"result":{\#(Self.header),"canceled":true,"compact_revision":"5"}}"#)
        #expect(compacted.canceled && compacted.compactRevision == 5)

        func refusal(_ json: String) -> EtcdError? {
            do throws(EtcdError) {
                _ = try message(json)
                return nil
            } catch { return error }
        }
        #expect(refusal(#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}"#)
            == .refused(endpoint: "e", code: 14, message: "etcdserver: no leader"))
        for wrong in [
            #"{"result":{"created":true}}"#,  // no header
            #"{}"#,
            #"{"result":{\#(Self.header),"events":[{"type":"EXPIRE","kv":{"key":"L3M=","mod_revision":"7"}}]}}"#,
            // a change after the message's revision, and changes out of order
            #"{"result":{\#(Self.header),"events":[{"kv":{"key":"L3M=","create_revision":"8","mod_revision":"8","version":"1"}}]}}"#,
            #"{"result":{\#(Self.header),"events":[{"type":"DELETE","kv":{"key":"L3M=","mod_revision":"6"}},{"type":"DELETE","kv":{"key":"L3M=","mod_revision":"5"}}]}}"#,
        ] {
            guard case .unexpectedAnswer(endpoint: "e", _)? = refusal(wrong) else {
                Issue.record("\(wrong) decoded or failed otherwise: \(String(describing: refusal(wrong)))")
                continue
            }
        }
    }

    // MARK: Against etcd

    /// A watch replays the key's writes from its start revision, reports each write once and in
    /// order, deletes included, and ends its session on time with where to go on from; the next
    /// session from there misses nothing and repeats nothing. An endpoint that cannot be
    /// reached is passed over, as for every request.
    @Test func aWatchReportsEachWriteOnceAcrossSessions() async throws {
        try await withPrefix { client, prefix, etcd in
            let key = prefix + "seq"
            let first = try await client.txn(compare: [], success: [.put(key, value: "1")])
            _ = try await client.txn(compare: [], success: [.put(prefix + "other", value: "x")])
            _ = try await client.txn(compare: [], success: [.put(key, value: "2")])
            let seen = Mutex<[String]>([])
            let record: @Sendable (EtcdWatchChange) -> Void = { change in seen.withLock { $0.append(change.kv?.text ?? "deleted") } }
            let watcher = try EtcdClient(endpoints: ["http://127.0.0.1:1", etcd])
            let end = try await watcher.watch(key, from: first.revision, for: .milliseconds(500), changed: record)
            #expect(seen.withLock { $0 } == ["1", "2"])
            guard case .over(let next) = end else {
                Issue.record("the session ended otherwise: \(end)")
                return
            }
            // Writes while no session is open, then more during the next one.
            _ = try await client.txn(compare: [], success: [.put(key, value: "3")])
            let writer = Task {
                try await Task.sleep(for: .milliseconds(200))
                _ = try await client.txn(compare: [], success: [.delete(key)])
                _ = try await client.txn(compare: [], success: [.put(key, value: "4")])
            }
            let second = try await watcher.watch(key, from: next, for: .seconds(2), changed: record)
            try await writer.value
            #expect(seen.withLock { $0 } == ["1", "2", "3", "deleted", "4"])
            guard case .over(let after) = second else {
                Issue.record("the second session ended otherwise: \(second)")
                return
            }
            #expect(after == (try await client.range(key).kvs.first?.modRevision ?? 0) + 1)
        }
    }

    /// Runs `body` with a client of the test servers' etcd (all its members) and a fresh key
    /// prefix, deleted after; `etcd` is one member's URL, for clients that name one endpoint.
    func withPrefix(_ body: (EtcdClient, _ prefix: String, _ etcd: String) async throws -> Void) async throws {
        let members = try await ScaleOutServers.shared.servers().etcd
        let etcd = members[0]
        let client = try EtcdClient(endpoints: members)
        let prefix = "/test-\(UUID().uuidString)/"
        let clean = { () async throws in _ = try await client.txn(compare: [], success: [.deleteRange(prefix, end: EtcdClient.prefixEnd(prefix))]) }
        do {
            try await body(client, prefix, etcd)
        } catch {
            try? await clean()
            throw error
        }
        try await clean()
        #expect(try await client.range(prefix, end: EtcdClient.prefixEnd(prefix)).count == 0)
    }

    @Test func putsInATxnAreReadBackByAPrefixInKeyOrder() async throws {
        try await withPrefix { client, prefix, _ in
            let put = try await client.txn(
                compare: [], success: [.put(prefix + "b", value: "two"), .put(prefix + "a", value: [0, 1, 255]), .put(prefix + "c/d", value: "")])
            #expect(put.succeeded)
            #expect(put.ranges == [nil, nil, nil])
            let range = try await client.range(prefix, end: EtcdClient.prefixEnd(prefix))
            #expect(range.kvs.map(\.key) == [prefix + "a", prefix + "b", prefix + "c/d"])
            #expect(range.kvs.map(\.value) == [[0, 1, 255], Array("two".utf8), []])
            #expect(range.kvs.allSatisfy { $0.createRevision == put.revision && $0.modRevision == put.revision && $0.version == 1 })
            #expect(range.count == 3 && !range.more && range.revision >= put.revision)
            // One key; a key that is not there.
            #expect(try await client.range(prefix + "b").kvs.map(\.text) == ["two"])
            let absent = try await client.range(prefix + "x")
            #expect(absent.kvs.isEmpty && absent.count == 0 && !absent.more)
            // Without values.
            #expect(try await client.range(prefix, end: EtcdClient.prefixEnd(prefix), keysOnly: true).kvs.allSatisfy { $0.value.isEmpty })
        }
    }

    @Test func minModRevisionLimitAndRevisionSelectWhatIsRead() async throws {
        try await withPrefix { client, prefix, _ in
            let end = EtcdClient.prefixEnd(prefix)
            let first = try await client.txn(compare: [], success: [.put(prefix + "a", value: "1"), .put(prefix + "b", value: "1")])
            let second = try await client.txn(compare: [], success: [.put(prefix + "b", value: "2"), .put(prefix + "c", value: "2")])
            let changed = try await client.range(prefix, end: end, minModRevision: second.revision)
            #expect(changed.kvs.map(\.key) == [prefix + "b", prefix + "c"])
            #expect(changed.kvs[0].version == 2 && changed.kvs[0].createRevision == first.revision)
            #expect(changed.count == 3)  // etcd counts the keys the filter left out
            let page = try await client.range(prefix, end: end, limit: 2)
            #expect(page.kvs.map(\.key) == [prefix + "a", prefix + "b"] && page.more && page.count == 3)
            let rest = try await client.range(prefix + "c", end: end, limit: 2)
            #expect(rest.kvs.map(\.key) == [prefix + "c"] && !rest.more)
            let before = try await client.range(prefix, end: end, revision: first.revision)
            #expect(before.kvs.map(\.text) == ["1", "1"] && before.count == 2)
            #expect(before.revision >= second.revision)  // the store's revision, not the one read at
            await #expect(throws: EtcdError.configuration("an etcd range's limit cannot be negative (-1)")) {
                try await client.range(prefix, limit: -1)
            }
        }
    }

    @Test func aTxnRunsTheBranchItsComparesChoose() async throws {
        try await withPrefix { client, prefix, _ in
            let key = prefix + "seq"
            // Create if absent: the first creates, the second finds it and reads it instead.
            let created = try await client.txn(
                compare: [.version(key, equals: 0)], success: [.put(key, value: "1")], failure: [.range(key)])
            #expect(created.succeeded && created.ranges == [nil])
            let found = try await client.txn(
                compare: [.version(key, equals: 0)], success: [.put(key, value: "other")], failure: [.range(key)])
            #expect(!found.succeeded)
            let kv = try #require(found.ranges.first??.kvs.first)
            #expect(kv.text == "1" && kv.modRevision == created.revision)
            // Compare-and-swap on the revision read: the first swap wins, a second from the same read loses.
            let swapped = try await client.txn(
                compare: [.modRevision(key, equals: kv.modRevision)], success: [.put(key, value: "2"), .range(key)])
            #expect(swapped.succeeded)
            let after = try #require(swapped.ranges.last??.kvs.first)
            #expect(after.text == "2" && after.modRevision == swapped.revision && after.version == 2)
            let stale = try await client.txn(compare: [.modRevision(key, equals: kv.modRevision)], success: [.put(key, value: "3")])
            #expect(!stale.succeeded && stale.ranges == [])
            #expect(try await client.txn(compare: [EtcdCompare(key: key, target: .version(1), result: .greater)], success: []).succeeded)
            #expect(try await client.txn(compare: [.value(key, equals: Array("2".utf8))], success: []).succeeded)
            #expect(try await client.txn(compare: [.value(prefix + "absent", equals: [])], success: []).succeeded == false)
        }
    }

    @Test func deletesRemoveAKeyOrARange() async throws {
        try await withPrefix { client, prefix, _ in
            let end = EtcdClient.prefixEnd(prefix)
            _ = try await client.txn(compare: [], success: ["a", "b/1", "b/2", "c"].map { .put(prefix + $0, value: $0) })
            let deleted = try await client.txn(
                compare: [], success: [.delete(prefix + "a"), .deleteRange(prefix + "b/", end: EtcdClient.prefixEnd(prefix + "b/")), .range(prefix, end: end)])
            #expect(deleted.ranges.count == 3)
            #expect(deleted.ranges[2]?.kvs.map(\.key) == [prefix + "c"])
            #expect(try await client.range(prefix, end: end).kvs.map(\.key) == [prefix + "c"])
        }
    }

    @Test func aRefusalCarriesEtcdsCodeAndMessage() async throws {
        try await withPrefix { client, prefix, etcd in
            await #expect(
                throws: EtcdError.refused(endpoint: etcd, code: 11, message: "etcdserver: mvcc: required revision is a future revision")
            ) { try await client.range(prefix, revision: Int64.max) }
            await #expect(throws: EtcdError.refused(endpoint: etcd, code: 3, message: "etcdserver: key is not provided")) {
                try await client.range("")
            }
        }
    }

    @Test func anEndpointThatCannotBeReachedIsPassedOver() async throws {
        try await withPrefix { _, prefix, etcd in
            let client = try EtcdClient(endpoints: ["http://127.0.0.1:1", etcd])
            let put = try await client.txn(compare: [], success: [.put(prefix + "k", value: "v")])
            #expect(try await client.range(prefix + "k").kvs.map(\.text) == ["v"])
            #expect(try client.rangeWaiting(prefix, end: EtcdClient.prefixEnd(prefix)).kvs.map(\.modRevision) == [put.revision])
        }
    }

    @Test func noEndpointReachableIsUnreachableNamingEach() async throws {
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:1", "http://127.0.0.1:2"])
        for attempt in 0..<2 {
            let error: EtcdError
            do throws(EtcdError) {
                if attempt == 0 { _ = try await client.range("/k") } else { _ = try client.rangeWaiting("/k") }
                Issue.record("a range with no etcd answered")
                return
            } catch let caught {
                error = caught
            }
            guard case .unreachable(let attempts) = error else {
                Issue.record("not unreachable: \(error)")
                return
            }
            #expect(attempts.count == 2)
            #expect(attempts.first?.hasPrefix("http://127.0.0.1:1: ") == true && attempts.last?.hasPrefix("http://127.0.0.1:2: ") == true)
            #expect(error.description.hasPrefix("no etcd endpoint could serve the request (http://127.0.0.1:1: "))
        }
    }

    /// An endpoint that takes the connection and never answers: the request may have been
    /// applied there, so it is not sent to the next endpoint.
    @Test func anEndpointThatTookTheRequestIsNotPassedOver() async throws {
        let listener = try SilentListener()
        defer { listener.stop() }
        let silent = listener.url
        try await withPrefix { _, prefix, etcd in
            let client = try EtcdClient(endpoints: [silent, etcd], timeout: .milliseconds(500))
            let error: EtcdError
            do throws(EtcdError) {
                _ = try await client.txn(compare: [], success: [.put(prefix + "k", value: "v")])
                Issue.record("the silent endpoint answered")
                return
            } catch let caught {
                error = caught
            }
            guard case .interrupted(endpoint: silent, let detail) = error else {
                Issue.record("not interrupted at \(silent): \(error)")
                return
            }
            #expect(detail.hasPrefix("no complete answer within 0.5 s"))
            let etcdOnly = try EtcdClient(endpoints: [etcd])
            #expect(try await etcdOnly.range(prefix + "k").kvs.isEmpty)
        }
    }
}

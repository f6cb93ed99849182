import Foundation

/// Decoding the answers of etcd's HTTP/JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, one line of
/// `/v3/watch`), callable on
/// any bytes: an answer is outside input (another etcd version, a proxy's page), so the fuzz
/// targets feed this arbitrary bytes (`Fuzz/Targets/StoreTargets.swift`).
///
/// The gateway writes proto3 JSON: keys and values in base64, int64 fields as decimal strings,
/// and every field at its default left out (no `kvs` for an empty range, no `succeeded` for a
/// failed txn, no `value` for an empty value, no `more` for false). Everything is range-checked
/// (see `EtcdKeyValue` and `EtcdRange` for the guarantees); anything else is
/// `EtcdError.unexpectedAnswer` naming `endpoint` and what is wrong where.
public enum EtcdAnswer {
    /// The answer to `POST /v3/kv/range`.
    public static func range(_ bytes: [UInt8], from endpoint: String) throws(EtcdError) -> EtcdRange {
        try range(Data(bytes), from: endpoint)
    }

    /// The answer to `POST /v3/kv/txn`: its ranges are those of the branch that ran. Which
    /// operations the branch had is not known here; `EtcdClient.txn` checks the ranges match them.
    public static func txn(_ bytes: [UInt8], from endpoint: String) throws(EtcdError) -> EtcdTxnResult {
        try txn(Data(bytes), from: endpoint)
    }

    /// One line of a `POST /v3/watch` stream: `{"result": …}`, or `{"error": …}` when the
    /// gateway ends the stream with a failure (thrown as `.refused`).
    public static func watch(_ bytes: [UInt8], from endpoint: String) throws(EtcdError) -> EtcdWatchMessage {
        let wire = try decode(WatchLineWire.self, Data(bytes), from: endpoint)
        if let error = wire.error {
            throw .refused(endpoint: endpoint, code: error.grpcCode ?? error.code, message: error.message ?? "the watch stream failed")
        }
        guard let result = wire.result else { throw .unexpectedAnswer(endpoint: endpoint, detail: "a watch message with neither result nor error") }
        var checker = Checker(endpoint: endpoint, place: "the watch message")
        let revision = try checker.headerRevision(result.header)
        let compactRevision = try checker.integer(result.compactRevision ?? "0", "compact_revision")
        var changes: [EtcdWatchChange] = []
        var previous: Int64 = 0
        for (index, event) in (result.events ?? []).enumerated() {
            checker.place = "the watch message's events[\(index)]"
            guard let kv = event.kv, let keyText = kv.key else { throw checker.wrong("has no kv.key") }
            let modRevision = try checker.integer(kv.modRevision ?? "0", "kv.mod_revision")
            guard modRevision >= 1, modRevision >= previous, modRevision <= revision else {
                throw checker.wrong("has kv.mod_revision \(modRevision) after \(previous), at revision \(revision)")
            }
            previous = modRevision
            switch event.type ?? "PUT" {
            case "PUT":
                let put = try checker.range(RangeWire(header: nil, kvs: [kv], more: nil, count: "1"), at: revision).kvs[0]
                changes.append(EtcdWatchChange(key: put.key, kv: put, modRevision: modRevision))
            case "DELETE":
                let keyBytes = try checker.base64(keyText, "kv.key")
                guard let key = String(validating: keyBytes, as: UTF8.self) else { throw checker.wrong("has a kv.key that is not UTF-8") }
                changes.append(EtcdWatchChange(key: key, kv: nil, modRevision: modRevision))
            case let other:
                throw checker.wrong("has type \(other.prefix(40).debugDescription), not PUT or DELETE")
            }
        }
        return EtcdWatchMessage(
            created: result.created ?? false, canceled: result.canceled ?? false, compactRevision: compactRevision, changes: changes,
            revision: revision)
    }

    static func range(_ data: Data, from endpoint: String) throws(EtcdError) -> EtcdRange {
        let wire = try decode(RangeWire.self, data, from: endpoint)
        let checker = Checker(endpoint: endpoint)
        let revision = try checker.headerRevision(wire.header)
        return try checker.range(wire, at: revision)
    }

    static func txn(_ data: Data, from endpoint: String) throws(EtcdError) -> EtcdTxnResult {
        let wire = try decode(TxnWire.self, data, from: endpoint)
        var checker = Checker(endpoint: endpoint)
        let revision = try checker.headerRevision(wire.header)
        var ranges: [EtcdRange?] = []
        for (index, response) in (wire.responses ?? []).enumerated() {
            checker.place = "responses[\(index)]"
            switch (response.responseRange, response.responsePut, response.responseDeleteRange) {
            // A nested header's revision is the txn's: every operation sees the txn's revision.
            case (let range?, nil, nil): ranges.append(try checker.range(range, at: revision))
            case (nil, _?, nil), (nil, nil, _?): ranges.append(nil)
            default: throw checker.wrong("is not exactly one of response_range, response_put, response_delete_range")
            }
        }
        return EtcdTxnResult(succeeded: wire.succeeded ?? false, revision: revision, ranges: ranges)
    }

    private static func decode<Wire: Decodable>(_ type: Wire.Type, _ data: Data, from endpoint: String) throws(EtcdError) -> Wire {
        do {
            return try JSONDecoder().decode(Wire.self, from: data)
        } catch let error as DecodingError {
            throw .unexpectedAnswer(endpoint: endpoint, detail: describe(error, answer: data))
        } catch {
            throw .unexpectedAnswer(endpoint: endpoint, detail: "\(error)")
        }
    }

    /// `DecodingError`'s own description is a dump of its context; this names the field.
    private static func describe(_ error: DecodingError, answer: Data) -> String {
        let context: DecodingError.Context
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
        @unknown default: return "\(error)"
        }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        guard !path.isEmpty else {
            let start = String(decoding: answer.prefix(200), as: UTF8.self)
            return "not a JSON object (\(context.debugDescription)): \(start.debugDescription)"
        }
        return "\(path.hasPrefix(".") ? String(path.dropFirst()) : path): \(context.debugDescription)"
    }

    /// Checks the decoded fields and makes the public values, naming the place of a wrong one.
    private struct Checker {
        let endpoint: String
        /// Where in the answer the fields being checked are (`responses[1]`), for the message.
        var place = "the answer"

        func wrong(_ detail: String) -> EtcdError {
            .unexpectedAnswer(endpoint: endpoint, detail: "\(place) \(detail)")
        }

        func headerRevision(_ header: HeaderWire?) throws(EtcdError) -> Int64 {
            guard let text = header?.revision else { throw wrong("has no header.revision") }
            return try integer(text, "header.revision")
        }

        func range(_ wire: RangeWire, at revision: Int64) throws(EtcdError) -> EtcdRange {
            var kvs: [EtcdKeyValue] = []
            var previousKey: [UInt8]?
            for (index, kv) in (wire.kvs ?? []).enumerated() {
                let name = "kvs[\(index)]"
                guard let keyText = kv.key else { throw wrong("has no \(name).key") }
                let keyBytes = try base64(keyText, "\(name).key")
                guard let key = String(validating: keyBytes, as: UTF8.self) else {
                    throw wrong("has \(name).key \(keyText.debugDescription), which is not UTF-8")
                }
                if let previousKey, !previousKey.lexicographicallyPrecedes(keyBytes) {
                    throw wrong("has \(name).key \(key.debugDescription) out of ascending order")
                }
                previousKey = keyBytes
                let create = try integer(kv.createRevision ?? "0", "\(name).create_revision")
                let mod = try integer(kv.modRevision ?? "0", "\(name).mod_revision")
                let version = try integer(kv.version ?? "0", "\(name).version")
                guard version >= 1, create >= 1, create <= mod, mod <= revision else {
                    throw wrong(
                        "has \(name) (\(key.debugDescription)) with version \(version), create_revision \(create), "
                            + "mod_revision \(mod) at revision \(revision): not a key that exists")
                }
                let value = try kv.value.map { (text) throws(EtcdError) in try base64(text, "\(name).value") } ?? []
                kvs.append(EtcdKeyValue(key: key, value: value, createRevision: create, modRevision: mod, version: version))
            }
            let count = try integer(wire.count ?? "0", "count")
            guard count >= kvs.count else { throw wrong("has count \(count) with \(kvs.count) kvs") }
            return EtcdRange(kvs: kvs, more: wire.more ?? false, count: count, revision: revision)
        }

        /// An int64 field: proto3 JSON writes it as a decimal string; every one etcd has is ≥ 0.
        func integer(_ text: String, _ field: String) throws(EtcdError) -> Int64 {
            guard let value = Int64(text), value >= 0 else {
                throw wrong("has \(field) \(text.prefix(40).debugDescription), not an integer in 0...\(Int64.max)")
            }
            return value
        }

        func base64(_ text: String, _ field: String) throws(EtcdError) -> [UInt8] {
            guard let data = Data(base64Encoded: text) else {
                throw wrong("has \(field) \(text.prefix(40).debugDescription), which is not base64")
            }
            return Array(data)
        }
    }

    // The answers' shapes under their names on the wire (which an error's path names), every
    // field optional: proto3 JSON leaves out what is at its default.

    private struct HeaderWire: Decodable {
        var revision: String?
    }

    private struct KeyValueWire: Decodable {
        var key: String?
        var createRevision: String?
        var modRevision: String?
        var version: String?
        var value: String?

        enum CodingKeys: String, CodingKey {
            case key, version, value
            case createRevision = "create_revision"
            case modRevision = "mod_revision"
        }
    }

    private struct RangeWire: Decodable {
        var header: HeaderWire?
        var kvs: [KeyValueWire]?
        var more: Bool?
        var count: String?
    }

    /// A put's or a delete's answer: only that it is one counts.
    private struct WriteWire: Decodable {
        var header: HeaderWire?
    }

    private struct ResponseWire: Decodable {
        var responseRange: RangeWire?
        var responsePut: WriteWire?
        var responseDeleteRange: WriteWire?

        enum CodingKeys: String, CodingKey {
            case responseRange = "response_range"
            case responsePut = "response_put"
            case responseDeleteRange = "response_delete_range"
        }
    }

    private struct TxnWire: Decodable {
        var header: HeaderWire?
        var succeeded: Bool?
        var responses: [ResponseWire]?
    }

    private struct WatchLineWire: Decodable {
        var result: WatchResultWire?
        var error: StreamErrorWire?
    }

    private struct WatchResultWire: Decodable {
        var header: HeaderWire?
        var created: Bool?
        var canceled: Bool?
        var compactRevision: String?
        var events: [EventWire]?

        enum CodingKeys: String, CodingKey {
            case header, created, canceled, events
            case compactRevision = "compact_revision"
        }
    }

    private struct EventWire: Decodable {
        var type: String?
        var kv: KeyValueWire?
    }

    /// How the gateway reports a failure inside a stream that began with 200.
    private struct StreamErrorWire: Decodable {
        var grpcCode: Int?
        var code: Int?
        var message: String?

        enum CodingKeys: String, CodingKey {
            case grpcCode = "grpc_code"
            case code, message
        }
    }
}

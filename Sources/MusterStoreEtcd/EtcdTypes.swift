/// A key as a range read it. Keys are UTF-8 text; values are bytes.
///
/// The decoder guarantees `version >= 1` and `1 <= createRevision <= modRevision <=` the
/// revision of the range that read it: a key that exists has been written at least once.
public struct EtcdKeyValue: Sendable, Equatable {
    public let key: String
    /// Empty for a range with `keysOnly`, and for a key whose value is empty.
    public let value: [UInt8]
    /// The revision of the write that created the key (since it was last deleted).
    public let createRevision: Int64
    /// The revision of the key's last write: what `EtcdCompare.modRevision` compares.
    public let modRevision: Int64
    /// How many writes the key has had since it was created: 1 after the first.
    public let version: Int64

    /// The value as UTF-8 text; bytes that are not UTF-8 read as U+FFFD.
    public var text: String { String(decoding: value, as: UTF8.self) }
}

/// One message of a watch stream (`POST /v3/watch`, one JSON object per line).
public struct EtcdWatchMessage: Sendable, Equatable {
    /// The watch is set up: the stream's first message, with no changes.
    public let created: Bool
    /// The server ended the watch: its start revision was compacted away (`compactRevision`
    /// says from where the server still has history) or it was cancelled. Nothing follows.
    public let canceled: Bool
    /// The oldest revision the server still has, when the watch's start was older; 0 otherwise.
    public let compactRevision: Int64
    /// The watched keys' writes since the previous message, in revision order.
    public let changes: [EtcdWatchChange]
    /// The store's revision when the server sent the message.
    public let revision: Int64
}

/// One write a watch reports: a put with the key's new value, or a delete.
public struct EtcdWatchChange: Sendable, Equatable {
    public let key: String
    /// Nil for a delete.
    public let kv: EtcdKeyValue?
    /// The revision of the write.
    public let modRevision: Int64
}

/// What a range read: its keys in ascending byte order of their UTF-8 (the decoder checks it).
public struct EtcdRange: Sendable, Equatable {
    public let kvs: [EtcdKeyValue]
    /// The limit cut the answer short: more keys match than `kvs` holds.
    public let more: Bool
    /// How many keys the range [key, end) holds at the revision read, before `limit` and
    /// before `minModRevision` (etcd counts keys the filter leaves out); at least `kvs.count`.
    public let count: Int64
    /// The store's revision when it answered (not the `revision` read at, when one was given);
    /// for a range inside a txn, the txn's revision.
    public let revision: Int64
}

/// One condition of a txn: a key's version, create or mod revision, or value, compared with
/// an operand. A key that does not exist has version, create and mod revision 0, and fails
/// every comparison of its value.
public struct EtcdCompare: Sendable, Equatable {
    /// What of the key is compared, with the operand.
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
    }

    /// etcd's `result`: how the key's side relates to the operand (key `greater` than operand…).
    public enum Relation: String, Sendable, Equatable {
        case equal = "EQUAL"
        case greater = "GREATER"
        case less = "LESS"
        case notEqual = "NOT_EQUAL"
    }

    public var key: String
    public var target: Target
    public var result: Relation

    public init(key: String, target: Target, result: Relation) {
        self.key = key
        self.target = target
        self.result = result
    }

    /// `.version(key, equals: 0)`: the key does not exist (create-if-absent).
    public static func version(_ key: String, equals version: Int64) -> EtcdCompare {
        EtcdCompare(key: key, target: .version(version), result: .equal)
    }

    public static func createRevision(_ key: String, equals revision: Int64) -> EtcdCompare {
        EtcdCompare(key: key, target: .createRevision(revision), result: .equal)
    }

    /// The key was last written at `revision` (unchanged since it was read); 0: it does not exist.
    public static func modRevision(_ key: String, equals revision: Int64) -> EtcdCompare {
        EtcdCompare(key: key, target: .modRevision(revision), result: .equal)
    }

    public static func value(_ key: String, equals value: [UInt8]) -> EtcdCompare {
        EtcdCompare(key: key, target: .value(value), result: .equal)
    }
}

/// One operation of a txn's branch.
public struct EtcdOperation: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case put(value: [UInt8])
        case deleteRange(end: String?)
        case range(end: String?)
    }

    public let key: String
    let kind: Kind

    public static func put(_ key: String, value: [UInt8]) -> EtcdOperation {
        EtcdOperation(key: key, kind: .put(value: value))
    }

    /// The value as its UTF-8 bytes.
    public static func put(_ key: String, value: String) -> EtcdOperation {
        EtcdOperation(key: key, kind: .put(value: Array(value.utf8)))
    }

    public static func delete(_ key: String) -> EtcdOperation {
        EtcdOperation(key: key, kind: .deleteRange(end: nil))
    }

    /// Deletes the keys in [key, end); `EtcdClient.prefixEnd(prefix)` as `end` deletes a prefix.
    public static func deleteRange(_ key: String, end: String) -> EtcdOperation {
        EtcdOperation(key: key, kind: .deleteRange(end: end))
    }

    /// Reads `key`, or the keys in [key, end), at the txn's revision (after the branch's
    /// earlier operations): its `EtcdRange` is in `EtcdTxnResult.ranges` at this operation's place.
    public static func range(_ key: String, end: String? = nil) -> EtcdOperation {
        EtcdOperation(key: key, kind: .range(end: end))
    }
}

/// What a txn did.
public struct EtcdTxnResult: Sendable, Equatable {
    /// Every comparison held: the `success` branch ran, else the `failure` branch.
    public let succeeded: Bool
    /// The store's revision after the txn (the same as before when the branch wrote nothing).
    public let revision: Int64
    /// One per operation of the branch that ran, in order: a range's answer, nil for a put or
    /// a delete. The client checks that they match the branch's operations.
    public let ranges: [EtcdRange?]
}

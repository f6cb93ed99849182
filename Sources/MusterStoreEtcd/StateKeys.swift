import MusterWire

/// Where the cluster state lives in etcd: every key under one root (`/muster/<namespace>/`),
/// so several stores can share an etcd cluster and a store is removed by one prefix delete.
///
/// Numbers in keys are zero-padded to 20 digits, so that key order is numeric order (a range
/// over `events/` reads the stream in id order); names are percent-encoded, so a `/` in a
/// member's or a node's name cannot make two keys one.
///
/// | key | value |
/// |---|---|
/// | `seq` | the newest event id; its `mod_revision` is the ledger's version |
/// | `pruned` | empty; written by every prune of history rows |
/// | `events/<id>` | `StoredEventValue` |
/// | `journal/<day>/<agent>/<src>/<gen>/<off>` | empty: this journal line is interpreted |
/// | `membership/<member>/<event>` | `MembershipChange` (its `id` is its event's) |
/// | `inventory/<node>/<event>` | `InventoryValue` |
/// | `configs/<node>/<version>` | `ConfigValue` |
/// | `marks/<name>` | `MarkValue` |
public struct StateKeys: Sendable, Equatable {
    public let namespace: String
    let root: String

    /// `namespace` is a plain name (letters, digits, `_`, `-`, `.`), as a database name is.
    public init(namespace: String) throws(EtcdError) {
        guard !namespace.isEmpty, namespace.utf8.count <= 64, namespace.utf8.allSatisfy(Self.isPlain) else {
            throw .configuration("'\(namespace)' is not a plain name for the store's etcd keys (letters, digits, _, - and ., at most 64)")
        }
        self.namespace = namespace
        root = "/muster/\(namespace)/"
    }

    var everything: String { root }
    var seq: String { root + "seq" }
    /// Written by every prune: a collector whose copy is older reads the ledger anew (a
    /// catch-up by revision sees puts, not deletions).
    var pruned: String { root + "pruned" }
    var events: String { root + "events/" }
    var journal: String { root + "journal/" }
    var membership: String { root + "membership/" }
    var inventory: String { root + "inventory/" }
    var configs: String { root + "configs/" }
    var marks: String { root + "marks/" }
    /// The prefixes of the ledger's rows: what a collector's copy holds (events and journal
    /// keys grow with the history and are read by range when needed).
    var ledgerPrefixes: [String] { [membership, inventory, configs, marks] }

    func event(_ id: Int64) -> String { events + Self.number(id) }

    /// The first journal key of `day` (days since the epoch): the keys of earlier days sort before it.
    func journalDay(_ day: Int64) -> String { journal + Self.number(max(0, day)) }

    /// The journal line's key; `day` (days since the epoch of the entry's own time) heads it so
    /// that retention removes a day of keys with one prefix delete.
    func journal(_ origin: Origin, at t: Int64) -> String {
        let parts = [Self.name(origin.agent), Self.name(origin.source), Self.name(origin.generation), Self.number(origin.offset)]
        return journalDay(t / (86_400 * Timestamp.nanosPerSecond)) + "/" + parts.joined(separator: "/")
    }

    func membership(_ member: String, event: Int64) -> String { membership + Self.name(member) + "/" + Self.number(event) }
    func inventory(_ node: String, event: Int64) -> String { inventory + Self.name(node) + "/" + Self.number(event) }
    func config(_ node: String, version: Int) -> String { configs + Self.name(node) + "/" + Self.number(Int64(version)) }
    func mark(_ name: String) -> String { marks + Self.name(name) }

    /// A non-negative number, zero-padded to 20 digits; a negative one (never written) as `-`
    /// and its digits, which sorts before every padded one.
    static func number(_ value: Int64) -> String {
        guard value >= 0 else { return "-\(value.magnitude)" }
        let digits = String(value)
        return String(repeating: "0", count: 20 - digits.count) + digits
    }

    /// Letters, digits, `_`, `-` and `.` as they are; every other byte as `%XX`.
    static func name(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            if isPlain(byte) {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return encoded
    }

    private static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }
}

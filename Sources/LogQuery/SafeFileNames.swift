import Foundation

/// File and folder names for names that come from stored data (nodes, load balancers, tasks),
/// which agents and senders chose: any length, any characters.
///
/// A safe name has only ASCII letters, digits, '.', '_' and '-' (anything else becomes '_'),
/// never starts with '.' (it gets a '_' before it), so it can never leave its folder or hide,
/// and has at most `maxBytes` bytes: a longer one keeps its start and ends in `~` and the
/// 32-bit FNV-1a of the whole original name in hex, so two long names that share their start
/// still differ. A name that would take a reserved one (the export's own files) or one
/// another name already has (`s/1` and `s_1`) gets `~2`, `~3`…: '~' never occurs in a
/// sanitised name, so these never meet one. Names are given in the order they are asked
/// for, which is the same in every export of the same history.
struct SafeFileNames {
    /// Far below NAME_MAX (255), leaving room for `~N`, an extension and a `12_…_haproxy.cfg`.
    static let maxBytes = 100

    /// Original name → safe name, for every name given so far.
    private(set) var names: [String: String] = [:]
    private var taken: Set<String>

    init(reserved: Set<String> = []) {
        taken = reserved
    }

    mutating func name(for original: String) -> String {
        if let name = names[original] { return name }
        let base = Self.sanitised(original)
        var name = base
        var number = 2
        while taken.contains(name) {
            name = "\(base)~\(number)"
            number += 1
        }
        taken.insert(name)
        names[original] = name
        return name
    }

    /// `original` as one safe path component (not yet unique).
    static func sanitised(_ original: String) -> String {
        let safe = String(
            original.unicodeScalars.map { scalar -> Character in
                scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "." || scalar == "_" || scalar == "-")
                    ? Character(scalar) : "_"
            })
        let base = safe.isEmpty || safe.hasPrefix(".") ? "_" + safe : safe
        guard base.utf8.count > maxBytes else { return base }
        let suffix = "~" + String(FNV1a.hash32(original), radix: 16)
        return String(base.prefix(maxBytes - suffix.count)) + suffix
    }
}

/// 32-bit FNV-1a of a string's UTF-8 bytes: small, fast, and the same in every run (Swift's
/// `hashValue` is seeded per process).
enum FNV1a {
    static func hash32(_ text: String) -> UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }
}

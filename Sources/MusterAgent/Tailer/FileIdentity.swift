#if canImport(Glibc)
import Glibc
#endif

/// Which file a path is, independent of its name: device + inode, plus a fingerprint of the
/// file's first line so that an inode reused for a new file is told apart.
///
/// The fingerprint covers the bytes up to and including the first newline, at most
/// `fingerprintLimit` bytes. That prefix never changes once written, so the identity computed
/// after a restart is the one computed before, and records resent after a crash carry the same
/// origin coordinates. A file with no complete first line yet has no identity and is not read,
/// which costs nothing: there is no complete line to ship.
public struct FileIdentity: Hashable, Sendable, Codable {
    public static let fingerprintLimit = 256

    public var device: UInt64
    public var inode: UInt64
    public var fingerprint: UInt64

    /// The generation string that goes into each record's origin coordinates.
    public var generation: String {
        String(inode, radix: 16) + "-" + String(fingerprint, radix: 16)
    }

    /// Reads the identity of an open file; nil while its first line is still incomplete.
    public static func of(descriptor: Int32) -> FileIdentity? {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        var prefix = [UInt8](repeating: 0, count: fingerprintLimit)
        let count = prefix.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, fingerprintLimit, 0) }
        guard count > 0 else { return nil }
        let end: Int
        if let newline = prefix[0..<count].firstIndex(of: UInt8(ascii: "\n")) {
            end = newline + 1
        } else if count == fingerprintLimit {
            end = count
        } else {
            return nil
        }
        return FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), fingerprint: fnv1a(prefix[0..<end]))
    }

    static func fnv1a(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}

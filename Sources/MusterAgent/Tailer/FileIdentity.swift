#if canImport(Glibc)
import Glibc
#endif
import MusterWire

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
        probe(descriptor: descriptor)?.identity
    }

    /// An open file's size and identity (nil while its first line is incomplete); nil when
    /// the descriptor cannot be examined at all.
    static func probe(descriptor: Int32) -> (identity: FileIdentity?, size: Int64, device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        let size = Int64(info.st_size)
        let device = UInt64(info.st_dev)
        let inode = UInt64(info.st_ino)
        var prefix = [UInt8](repeating: 0, count: fingerprintLimit)
        let count = prefix.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, fingerprintLimit, 0) }
        var fingerprint: UInt64?
        if count > 0 {
            if let newline = prefix[0..<count].firstIndex(of: UInt8(ascii: "\n")) {
                fingerprint = fnv1a(prefix[0...newline])
            } else if count == fingerprintLimit {
                fingerprint = fnv1a(prefix)
            }
        }
        return (fingerprint.map { FileIdentity(device: device, inode: inode, fingerprint: $0) }, size, device, inode)
    }

    static func fnv1a<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        FNV1a.hash(bytes)
    }
}

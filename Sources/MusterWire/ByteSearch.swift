#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finding one byte in a buffer with the C library's `memchr`, which compares 32 or 64 bytes
/// at a time: for cutting text into lines (a file the agent reads, a batch the collector
/// receives), a pass over every byte of it.
package enum ByteSearch {
    /// The offset in `bytes` of the first `byte` at or after `start`; nil when there is none.
    package static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start >= 0, start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, Int32(byte), bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}

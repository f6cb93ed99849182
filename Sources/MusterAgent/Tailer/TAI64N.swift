import MusterWire

/// s6-log's `@<tai64n>` timestamps: `@` + 16 hex digits of TAI64 seconds + 8 of nanoseconds.
public enum TAI64N {
    /// Length of the label including `@`, not counting the space that follows it.
    public static let labelLength = 25

    /// TAI − UTC is 10 s at the TAI64 epoch and grows by one at each leap second; s6-log's
    /// labels include them (skalibs converts from the UTC system clock with its leap table).
    /// Each entry: the first UTC second at which the offset applies, and the offset.
    private static let leapSeconds: [(utc: Int64, offset: Int64)] = [
        (63_072_000, 10), (78_796_800, 11), (94_694_400, 12), (126_230_400, 13), (157_766_400, 14),
        (189_302_400, 15), (220_924_800, 16), (252_460_800, 17), (283_996_800, 18), (315_532_800, 19),
        (362_793_600, 20), (394_329_600, 21), (425_865_600, 22), (489_024_000, 23), (567_993_600, 24),
        (631_152_000, 25), (662_688_000, 26), (709_948_800, 27), (741_484_800, 28), (773_020_800, 29),
        (820_454_400, 30), (867_715_200, 31), (915_148_800, 32), (1_136_073_600, 33), (1_230_768_000, 34),
        (1_341_100_800, 35), (1_435_708_800, 36), (1_483_228_800, 37),
    ]
    private static let epoch: UInt64 = 1 << 62

    /// Decodes a label at the start of `line` (`@4000000067…`), giving UTC nanoseconds since the
    /// Unix epoch, or nil when the line does not start with a well-formed label and a space, or
    /// when the label names a time outside `Timestamp.supportedRange`: the label is the file's
    /// text, and any 24 hex digits must leave the line as it is rather than stop the agent.
    public static func decode<Bytes: RandomAccessCollection>(_ line: Bytes) -> Int64? where Bytes.Element == UInt8 {
        guard line.count > labelLength else { return nil }
        var index = line.startIndex
        guard line[index] == UInt8(ascii: "@") else { return nil }
        index = line.index(after: index)
        var seconds: UInt64 = 0
        var nanos: UInt64 = 0
        for position in 0..<24 {
            guard let digit = hexValue(line[index]) else { return nil }
            if position < 16 { seconds = seconds << 4 | digit } else { nanos = nanos << 4 | digit }
            index = line.index(after: index)
        }
        guard line[index] == UInt8(ascii: " "), seconds >= epoch, nanos < 1_000_000_000 else { return nil }
        // Past `maxTAISeconds` the label is out of range whatever the leap table says; below
        // it every step of the arithmetic stays far from overflowing.
        guard seconds - epoch <= maxTAISeconds else { return nil }
        let tai = Int64(seconds - epoch)
        let utc = (tai - offset(forTAI: tai)) * Timestamp.nanosPerSecond + Int64(nanos)
        return Timestamp.supportedRange.contains(utc) ? utc : nil
    }

    /// Encodes UTC nanoseconds as a label (for tests and tools that write s6-log style lines).
    /// A time outside `Timestamp.supportedRange` is moved into it first.
    public static func encode(_ utcNanos: Int64) -> String {
        let utcNanos = Timestamp.clamped(utcNanos)
        let utc = utcNanos / Timestamp.nanosPerSecond
        let tai = UInt64(utc + offset(forUTC: utc)) + epoch
        let nanos = UInt64(utcNanos % Timestamp.nanosPerSecond)
        let secondsHex = String(tai, radix: 16)
        let nanosHex = String(nanos, radix: 16)
        return "@" + String(repeating: "0", count: 16 - secondsHex.count) + secondsHex
            + String(repeating: "0", count: 8 - nanosHex.count) + nanosHex
    }

    /// The last TAI second a label may name: the end of the supported range plus the largest
    /// TAI − UTC offset, in seconds since the TAI64 epoch.
    private static let maxTAISeconds = UInt64(Timestamp.supportedRange.upperBound / Timestamp.nanosPerSecond)
        + UInt64(leapSeconds.last!.offset)

    private static func offset(forUTC utc: Int64) -> Int64 {
        leapSeconds.last { $0.utc <= utc }?.offset ?? 10
    }

    private static func offset(forTAI tai: Int64) -> Int64 {
        leapSeconds.last { $0.utc + $0.offset <= tai }?.offset ?? 10
    }

    private static func hexValue(_ byte: UInt8) -> UInt64? {
        switch byte {
        case 48...57: UInt64(byte - 48)
        case 97...102: UInt64(byte - 87)
        case 65...70: UInt64(byte - 55)
        default: nil
        }
    }
}

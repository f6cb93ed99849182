/// JSON string literals, written by hand because they sit on the hot path of every tool
/// that emits JSON lines (the agent's batches, logq's output).
public enum JSONText {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `value` as a quoted, escaped JSON string.
    public static func append(_ value: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            let text = UnsafeRawBufferPointer(utf8)
            var runStart = 0
            while true {
                let end = JSONPlainRun.end(in: text, from: runStart)
                if runStart < end { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[runStart..<end])) }
                guard end < text.count else { break }
                let byte = text[end]
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
                case UInt8(ascii: "\n"): bytes.append(contentsOf: [92, 110])
                case UInt8(ascii: "\r"): bytes.append(contentsOf: [92, 114])
                case UInt8(ascii: "\t"): bytes.append(contentsOf: [92, 116])
                default:
                    bytes.append(contentsOf: [92, 117, 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
                runStart = end + 1
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `value` as a quoted, escaped JSON string.
    public static func quoted(_ value: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count + 2)
        append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

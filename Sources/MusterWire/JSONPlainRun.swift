/// The bytes a JSON string holds as they are, up to the first that it cannot: a quote, a
/// backslash or a control character (U+0000-U+001F). The one test behind the scanner's reading
/// of strings (`JSONScanner`) and the writer's escaping of them (`JSONText`), both on every
/// message, so sixteen bytes at a time while none of them is special: messages are long.
enum JSONPlainRun {
    /// The offset of the first quote, backslash or control character in `bytes` at or after
    /// `start`; `bytes.count` when there is none.
    @inline(__always)
    static func end(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let quote = SIMD16<UInt8>(repeating: UInt8(ascii: "\""))
        let backslash = SIMD16<UInt8>(repeating: UInt8(ascii: "\\"))
        let space = SIMD16<UInt8>(repeating: 0x20)
        var index = start
        while bytes.count - index >= 16 {
            let block = bytes.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self)
            if any((block .== quote) .| (block .== backslash) .| (block .< space)) { break }
            index += 16
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { return index }
            index += 1
        }
        return index
    }
}

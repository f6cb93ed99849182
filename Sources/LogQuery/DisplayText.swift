/// Stored text made safe for the places logq prints it for people: a terminal and a spreadsheet.
///
/// Everything logq prints came from agents and senders, so a message, node name or config may
/// hold an escape sequence (`ESC [2J` clears the screen, OSC 52 writes the clipboard, a title
/// sequence can echo text back into the shell) or a CSV cell a spreadsheet runs as a formula.
/// Text and CSV output therefore show control characters visibly, and CSV guards formulas;
/// JSON output carries the exact text, escaped the JSON way.
///
/// Shown as `\xNN` (two lower-case hex digits of the character's code): C0 controls
/// (U+0000–U+001F) except tab and, where a line may have several, line feed; DEL (U+007F); C1
/// controls (U+0080–U+009F), which some terminals read as ESC sequences too. Tab is kept: it
/// moves the cursor right and nothing else, and stack traces are indented with it. A backslash
/// is printed as it is, so `\x1b` in the output is either an escaped ESC or those four
/// characters in the data; JSON output tells them apart.
public enum DisplayText {
    /// `\xNN` for the terminal and CSV; `\u00NN` keeps JSON text valid (`logq inspect`).
    public enum Notation: Sendable {
        case hex, json
    }

    /// `text` with its control characters escaped. `keepingLineFeeds` prints a line feed as
    /// one (a multi-line message as its lines); a table cell or an error line escapes it.
    /// JSON notation keeps carriage return too, which JSON allows between values.
    public static func escapingControls(_ text: String, keepingLineFeeds: Bool, notation: Notation = .hex) -> String {
        let keepsReturn = notation == .json
        func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.value {
            case 0x09: false
            case 0x0A: !keepingLineFeeds
            case 0x0D: !keepsReturn
            case 0x00...0x1F, 0x7F...0x9F: true
            default: false
            }
        }
        // Almost every line has nothing to escape: one pass over the bytes decides (C1
        // characters are the two bytes C2 80…C2 9F in UTF-8).
        var clean = true
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F || (previous == 0xC2 && byte <= 0x9F) {
                if byte >= 0x20 || mustEscape(Unicode.Scalar(byte)) {
                    clean = false
                    break
                }
            }
            previous = byte
        }
        if clean { return text }
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard mustEscape(scalar) else {
                escaped.append(scalar)
                continue
            }
            let digits = String(scalar.value, radix: 16)
            let code = (digits.count < 2 ? "0" : "") + digits
            escaped.append(contentsOf: (notation == .hex ? "\\x" : "\\u00").unicodeScalars)
            escaped.append(contentsOf: code.unicodeScalars)
        }
        return String(escaped)
    }

    /// A text cell of CSV output: controls escaped as in text output (line feeds kept, the
    /// cell is quoted), a leading `=`, `+`, `-`, `@`, tab or carriage return prefixed with `'`
    /// so a spreadsheet shows it instead of running it (OWASP's advice for CSV injection),
    /// except when the whole cell is a number such as `-5`; then RFC 4180 quoting.
    static func csvCell(_ value: String) -> String {
        var cell = escapingControls(value, keepingLineFeeds: true)
        if let first = cell.utf8.first, "=+-@\t\r".utf8.contains(first), !isPlainNumber(cell) {
            cell = "'" + cell
        }
        // Bytes, not Characters: "\r\n" is one Character, and bytes are faster to scan.
        guard cell.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D })
        else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `-5`, `+1.5`, `-2e3`: digits with a sign, point and exponent only, read as a number.
    private static func isPlainNumber(_ text: String) -> Bool {
        text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || "+-.eE".utf8.contains($0) }
            && Double(text) != nil
    }
}

import Foundation

/// One colour per node name in text output, the same in every run and on every machine.
///
/// The colour comes from a 32-bit FNV-1a hash of the name's UTF-8 bytes (Swift's `hashValue`
/// is seeded per process, so it would change between runs). The palette is green, blue,
/// magenta and cyan, plain and bright: never red or yellow, which read as errors and warnings.
public struct NodeColors: Sendable {
    /// SGR foreground codes: 32 green, 34 blue, 35 magenta, 36 cyan, 92/94/95/96 their bright forms.
    public static let palette: [Int] = [32, 34, 35, 36, 92, 94, 95, 96]

    /// `--color`: `auto` colours only a terminal, and never when `NO_COLOR` is set.
    public enum Mode: String, CaseIterable, Sendable {
        case auto, always, never
    }

    public init() {}

    /// The colours to use, or nil for none: `always` colours, `never` does not, `auto` colours
    /// when stdout is a terminal and `NO_COLOR` is not set (to any value, even empty).
    public static func resolve(
        _ mode: Mode, environment: [String: String] = ProcessInfo.processInfo.environment, isTerminal: Bool = isatty(1) == 1
    ) -> NodeColors? {
        switch mode {
        case .always: NodeColors()
        case .never: nil
        case .auto: isTerminal && environment["NO_COLOR"] == nil ? NodeColors() : nil
        }
    }

    /// The SGR code of `name`'s colour.
    public static func code(for name: String) -> Int {
        palette[Int(FNV1a.hash32(name) % UInt32(palette.count))]
    }

    /// `text` in `name`'s colour (`name` defaults to the text itself).
    public func paint(_ text: String, as name: String? = nil) -> String {
        "\u{1B}[\(Self.code(for: name ?? text))m\(text)\u{1B}[0m"
    }
}

import Foundation

/// What `--match TEXT` means: the words of TEXT, in that order and next to each other,
/// compared without regard to case or diacritics, where a word is a run of letters and digits.
///
/// This is the meaning every backend gives `LogFilter.match`. It mirrors SQLite's `unicode61`
/// tokenizer, which builds the SQLite backend's index: the index finds the rows holding all
/// the words, and `matches` settles the order (and decides on its own for rows the index does
/// not cover yet), so both parts of a search agree.
public struct TextMatch: Sendable {
    public let text: String
    /// The query's words as the user wrote them, for an index query (an index folds them itself).
    public let words: [String]
    private let folded: [String]

    /// Throws `StoreError.nothingToMatch` when `text` holds no word.
    public init(_ text: String) throws(StoreError) {
        self.text = text
        words = Self.words(in: text)
        guard !words.isEmpty else { throw .nothingToMatch(text) }
        folded = words.map(Self.fold)
    }

    public func matches(_ message: String) -> Bool {
        let candidate = Self.words(in: message)
        guard candidate.count >= folded.count else { return false }
        let foldedCandidate = candidate.map(Self.fold)
        // Cheap pre-check on the rarest-looking word would be possible; lines are short.
        for start in 0...(foldedCandidate.count - folded.count)
        where foldedCandidate[start] == folded[0] {
            if Array(foldedCandidate[start..<start + folded.count]) == folded { return true }
        }
        return false
    }

    static func words(in text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isWordScalar(scalar) {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    /// unicode61 keeps letters, numbers and private-use characters; everything else separates.
    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let value = scalar.value
            return (48...57).contains(value) || (65...90).contains(value) || (97...122).contains(value)
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .decimalNumber, .letterNumber, .otherNumber, .privateUse:
            return true
        default:
            return false
        }
    }

    private static func fold(_ word: String) -> String {
        if word.utf8.allSatisfy({ $0 < 0x80 }) { return word.lowercased() }
        return word.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }
}

/// What `--grep PATTERN` means: a line whose message contains a match of the regular
/// expression (ICU syntax, as `NSRegularExpression` reads it), on every backend, so a backend
/// whose own regular expressions differ (ClickHouse's re2) checks lines with this one.
public struct LinePattern: @unchecked Sendable {
    public let pattern: String
    /// Immutable once made and documented as safe to use from several threads.
    public let regex: NSRegularExpression

    /// Throws `StoreError.invalidPattern` with the reason when `pattern` is no regular expression.
    public init(_ pattern: String) throws(StoreError) {
        self.pattern = pattern
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw .invalidPattern(pattern, detail: (error as NSError).localizedDescription)
        }
    }

    public func matches(_ message: String) -> Bool {
        regex.firstMatch(in: message, range: NSRange(message.startIndex..., in: message)) != nil
    }
}

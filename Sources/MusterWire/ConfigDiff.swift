/// Line diffs of configuration versions: recorded with each version and printed by
/// `logq configs diff`.
public enum ConfigDiff {
    /// A unified-style diff (`-`/`+` lines with two lines of context, `@@` between hunks).
    public static func unified(from old: String, to new: String, fromLabel: String = "previous", toLabel: String = "new") -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let changes = b.difference(from: a)
        guard !changes.isEmpty else { return "" }
        var removed = Set<Int>()
        var inserted = Set<Int>()
        for change in changes {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        // Walk both sides in step, emitting context around changes.
        var lines: [(kind: Character, text: String)] = []
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count, removed.contains(i) {
                lines.append(("-", a[i])); i += 1
            } else if j < b.count, inserted.contains(j) {
                lines.append(("+", b[j])); j += 1
            } else {
                if i < a.count { lines.append((" ", a[i])) }
                i += 1; j += 1
            }
        }
        let context = 2
        var keep = Set<Int>()
        for (index, line) in lines.enumerated() where line.kind != " " {
            for k in max(0, index - context)...min(lines.count - 1, index + context) { keep.insert(k) }
        }
        var output = "--- \(fromLabel)\n+++ \(toLabel)\n"
        var last = -2
        for index in keep.sorted() {
            if index != last + 1 { output += "@@\n" }
            output += "\(lines[index].kind)\(lines[index].text)\n"
            last = index
        }
        return output
    }
}

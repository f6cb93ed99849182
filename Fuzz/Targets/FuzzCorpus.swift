import Foundation

/// The committed inputs: `Fuzz/corpus/<target>/`, one file per input.
public enum FuzzCorpus {
    /// A file itself, or the regular files in a directory (not recursive), sorted so a replay
    /// runs in the same order everywhere.
    public static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { path + "/" + $0 }.filter { !$0.hasSuffix("/.gitkeep") }
    }
}

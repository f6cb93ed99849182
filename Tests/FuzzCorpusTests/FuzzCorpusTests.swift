import Foundation
import MusterFuzzTargets
import Testing

/// Every input `scripts/fuzz` kept, run again through its target in the normal build: a parser
/// change that makes one of them trap or break a target's promise fails here, long before the
/// next fuzzing run.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus").path

    @Test(arguments: FuzzTarget.all.map(\.name))
    func corpusReplaysWithoutACrash(target name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let files = FuzzCorpus.files(at: Self.corpus + "/" + name)
        // A target without inputs would pass without testing anything.
        #expect(!files.isEmpty, "no corpus in Fuzz/corpus/\(name): run scripts/fuzz \(name)")
        for file in files {
            let input = try Data(contentsOf: URL(fileURLWithPath: file))
            input.withUnsafeBytes { target.run($0) }
        }
    }
}

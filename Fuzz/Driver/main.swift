import Foundation
import MusterFuzzTargets

// `muster-fuzz list` prints the targets; the rest depends on the build:
// - the fuzz build (`scripts/fuzz`: -sanitize=fuzzer -D FUZZING) hands the process to libFuzzer,
//   which calls the target named by MUSTER_FUZZ_TARGET with each input and takes libFuzzer's
//   flags and corpus directories on the command line;
// - the normal build replays files: `muster-fuzz replay TARGET FILE_OR_DIR…`, to rerun a
//   crash found by the fuzz build under the debugger or with a plain Swift stack trace.

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "list" {
    for target in FuzzTarget.all { print("\(target.name)\t\(target.maxLength)\t\(target.summary)") }
    exit(0)
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Set once before libFuzzer starts; read by the C callback, which can capture nothing.
nonisolated(unsafe) var selected: FuzzTarget!

let name = ProcessInfo.processInfo.environment["MUSTER_FUZZ_TARGET"] ?? ""
guard let target = FuzzTarget.named(name) else {
    FileHandle.standardError.write(Data("muster-fuzz: set MUSTER_FUZZ_TARGET to one of: \(FuzzTarget.all.map(\.name).joined(separator: ", "))\n".utf8))
    exit(64)
}
selected = target
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    selected.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
#else
guard arguments.count >= 3, arguments[0] == "replay", let target = FuzzTarget.named(arguments[1]) else {
    FileHandle.standardError.write(Data("""
        usage: muster-fuzz replay TARGET FILE_OR_DIRECTORY...
               muster-fuzz list
        targets: \(FuzzTarget.all.map(\.name).joined(separator: ", "))

        """.utf8))
    exit(64)
}
var replayed = 0
for path in arguments.dropFirst(2) {
    for file in FuzzCorpus.files(at: path) {
        let input = FileManager.default.contents(atPath: file) ?? Data()
        input.withUnsafeBytes { target.run($0) }
        replayed += 1
    }
}
print("\(target.name): replayed \(replayed) inputs, no crash")
#endif

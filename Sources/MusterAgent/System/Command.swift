import Dispatch
import Foundation

/// Runs a helper program (`serf members`, `s6-svstat`, …) and collects what it printed.
///
/// The wait happens on a Dispatch thread, never on the cooperative pool, so a slow helper
/// cannot stall the pipeline's tasks; a helper that outlives `timeout` is killed.
public struct Command: Sendable {
    public var executable: String
    public var arguments: [String]
    public var timeout: Duration

    public init(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(5)) {
        self.executable = executable
        self.arguments = arguments
        self.timeout = timeout
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data

        public var stderrText: String {
            String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// The program's exit status and output. Throws only when it cannot be started or timed out.
    public func run(stdin: Data? = nil) async throws(CommandError) -> Output {
        let result: Result<Output, CommandError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: self.runBlocking(stdin: stdin))
            }
        }
        return try result.get()
    }

    private func runBlocking(stdin: Data?) -> Result<Output, CommandError> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.resolve(executable))
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        do {
            try process.run()
        } catch {
            return .failure(.cannotStart(executable, "\(error.localizedDescription)"))
        }
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate(); kill(process.processIdentifier, SIGKILL) } }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: killer)
        // Read both pipes to the end before waiting, so a chatty helper never blocks on a full pipe.
        var errorData = Data()
        let errorReader = DispatchWorkItem { errorData = err.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(execute: errorReader)
        let outputData = out.fileHandleForReading.readDataToEndOfFile()
        errorReader.wait()
        process.waitUntilExit()
        killer.cancel()
        if process.terminationReason == .uncaughtSignal, process.terminationStatus == SIGKILL {
            return .failure(.timedOut(([executable] + arguments).joined(separator: " "), timeout))
        }
        return .success(Output(status: process.terminationStatus, stdout: outputData, stderr: errorData))
    }

    /// A bare name is looked up on PATH, as a shell would.
    static func resolve(_ name: String) -> String {
        guard !name.contains("/") else { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return name
    }
}

public enum CommandError: Error, CustomStringConvertible, Equatable {
    case cannotStart(String, String)
    case timedOut(String, Duration)

    public var description: String {
        switch self {
        case .cannotStart(let name, let detail): "cannot run \(name): \(detail)"
        case .timedOut(let command, let limit): "'\(command)' did not finish within \(limit)"
        }
    }
}

import Foundation
import MusterAgent
import MusterCollector
import MusterLoadBalancer

extension FuzzTarget {
    /// `muster-agent --config FILE`: read, resolved and validated as at start.
    static let agentConfig = configFile(
        "agent-config", file: "agent.yaml", summary: "AgentConfig.load and validate (agent.yaml)"
    ) { path in
        let components = try AgentComponents.standard.registering(AgentConfig.LoadBalancerConfig.self)
        try AgentConfig.load(path: path, components: components).validate()
    }

    /// `muster-collector --config FILE`: read and validated as at start.
    static let collectorConfig = configFile(
        "collector-config", file: "collector.yaml", summary: "CollectorConfig.load and validate (collector.yaml)"
    ) { path in try CollectorConfig.load(path: path).validate() }

    /// A refused config is an answer; only a trap is a finding.
    private static func configFile(
        _ name: String, file: String, summary: String, load: @escaping @Sendable (String) throws -> Void
    ) -> FuzzTarget {
        FuzzTarget(name: name, maxLength: 2048, summary: summary) { input in
            try? load(ConfigScratch.shared.write(input, as: file))
        }
    }
}

/// The config loaders read files, so each input is written to one in a directory of this
/// process's own, removed when the process exits.
final class ConfigScratch: Sendable {
    static let shared = ConfigScratch()
    let directory: String

    private init() {
        directory = NSTemporaryDirectory() + "muster-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: ConfigScratch.shared.directory) }
    }

    /// Plain `write(2)`: Foundation's file writing syncs to disk, which costs more than the
    /// parse and, on a busy disk, stalls past libFuzzer's per-input timeout.
    func write(_ input: UnsafeRawBufferPointer, as name: String) -> String {
        let path = directory + "/" + name
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(descriptor >= 0, "cannot write \(path): errno \(errno)")
        defer { close(descriptor) }
        var written = 0
        while written < input.count {
            let count = Foundation.write(descriptor, input.baseAddress! + written, input.count - written)
            precondition(count > 0, "cannot write \(path): errno \(errno)")
            written += count
        }
        return path
    }
}

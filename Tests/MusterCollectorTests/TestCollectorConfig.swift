import Foundation

@testable import MusterCollector

extension CollectorConfig {
    /// A collector for one test: its own SQLite file in a new temporary directory, one token
    /// (`s3cret`), and `synchronous: normal` (the tests do not survive power loss anyway).
    static func forTest(_ name: String) throws -> (config: CollectorConfig, directory: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var config = CollectorConfig()
        config.database = directory + "/store.sqlite"
        config.tokens = ["s3cret"]
        config.synchronous = "normal"
        return (config, directory)
    }
}

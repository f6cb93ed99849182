import Foundation
import MusterConfigFile
import Synchronization
import Testing

@testable import MusterAgent

@Suite struct CheckpointStoreTests {
    let identity = FileIdentity(device: 1, inode: 2, fingerprint: 3)

    @Test func savesAndLoadsAtomically() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/checkpoints.json"
        var store = try CheckpointStore(path: path)
        #expect(store.positions.isEmpty)
        store.advance(FilePosition(identity: identity, truncations: 0, offset: 100))
        try store.save()
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let loaded = try CheckpointStore(path: path)
        #expect(loaded.position(of: identity)?.offset == 100)
    }

    @Test func neverMovesBackwardsWithinAGeneration() throws {
        let dir = try ScratchDirectory()
        var store = try CheckpointStore(path: dir.path + "/c.json")
        store.advance(FilePosition(identity: identity, truncations: 0, offset: 100))
        store.advance(FilePosition(identity: identity, truncations: 0, offset: 50))
        #expect(store.position(of: identity)?.offset == 100)
        store.advance(FilePosition(identity: identity, truncations: 1, offset: 10))
        #expect(store.position(of: identity) == FilePosition(identity: identity, truncations: 1, offset: 10))
    }

    @Test func aCorruptFileIsAClearError() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/c.json"
        try Data("{\"version\":1,\"files\":[{\"ident".utf8).write(to: URL(fileURLWithPath: path))
        #expect { try CheckpointStore(path: path) } throws: { error in
            "\(error)".contains("is corrupt")
        }
    }

    @Test func aCorruptFileIsSetAsideSoTheAgentStarts() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/c.json"
        try Data("torn write".utf8).write(to: URL(fileURLWithPath: path))
        let (store, aside) = try CheckpointStore.loadOrSetAside(path: path)
        #expect(store.positions.isEmpty)
        let moved = try #require(aside)
        #expect(try String(contentsOfFile: moved, encoding: .utf8) == "torn write")
        #expect(!FileManager.default.fileExists(atPath: path))
        // A good file is loaded as it is.
        var good = try CheckpointStore(path: path)
        good.advance(FilePosition(identity: identity, truncations: 0, offset: 5))
        try good.save()
        #expect(try CheckpointStore.loadOrSetAside(path: path).setAside == nil)
    }

    /// Values no run of the agent writes (a damaged disk, a hand edit) once reached arithmetic
    /// that trapped at every start: they make the file corrupt, which sets it aside.
    @Test func outOfRangeValuesMakeTheFileCorruptNotATrap() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/c.json"
        var store = try CheckpointStore(path: path)
        store.advance(FilePosition(identity: identity, truncations: 3, offset: 5))
        store.spooledThrough = Spool.Mark(segment: 7, end: 11)
        try store.save()
        let saved = try String(contentsOfFile: path, encoding: .utf8)
        for (good, bad) in [
            (#""offset":5"#, #""offset":9223372036854775807"#), (#""offset":5"#, #""offset":-1"#),
            (#""truncations":3"#, #""truncations":9223372036854775807"#),
            (#""segment":7"#, #""segment":18446744073709551615"#), (#""end":11"#, #""end":-9223372036854775808"#),
        ] {
            #expect(saved.contains(good), "\(saved)")
            try saved.replacingOccurrences(of: good, with: bad).write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: (any Error).self, "\(bad)") { try CheckpointStore(path: path) }
            let (reloaded, aside) = try CheckpointStore.loadOrSetAside(path: path)
            #expect(reloaded.positions.isEmpty && aside != nil, "\(bad)")
        }
        // A stray spool file with a number past 16 digits is not a segment to count on from.
        #expect(Spool.segmentID(fromName: "18446744073709551615.seg") == nil)
        #expect(Spool.segmentID(fromName: "0000000000000042.seg") == 42)
    }

    @Test func twoSourcesOnOneFileKeepTheirOwnPositions() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/c.json"
        var store = try CheckpointStore(path: path)
        store.advance(FilePosition(identity: identity, source: "fast", truncations: 0, offset: 900))
        store.advance(FilePosition(identity: identity, source: "slow", truncations: 0, offset: 100))
        try store.save()
        let loaded = try CheckpointStore(path: path)
        #expect(loaded.position(of: identity, source: "fast")?.offset == 900)
        #expect(loaded.position(of: identity, source: "slow")?.offset == 100)
        #expect(loaded.position(of: identity, source: "new") == nil)
    }

    @Test func aPositionSavedWithoutASourceCountsForEverySource() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/c.json"
        // The format written before positions named their source.
        let old = #"{"files":[{"identity":{"device":1,"fingerprint":3,"inode":2},"offset":42,"truncations":0}],"version":1}"#
        try Data(old.utf8).write(to: URL(fileURLWithPath: path))
        let loaded = try CheckpointStore(path: path)
        #expect(loaded.position(of: identity, source: "app")?.offset == 42)
    }

    @Test func aBatchCarriesTheLastPositionOfEachFileForEachSource() {
        let other = FileIdentity(device: 1, inode: 9, fingerprint: 4)
        func line(_ identity: FileIdentity, truncations: Int = 0, end: Int64) -> SourceRecord {
            SourceRecord(TailedLine(
                identity: identity, position: .init(identity: identity, truncations: truncations), offset: end - 10,
                endOffset: end, time: 0, message: "m"))
        }
        var builder = BatchBuilder(node: "n", agent: "a")
        builder.append(line(identity, end: 10), source: "app")
        builder.append(line(identity, end: 20), source: "app")
        builder.append(line(other, end: 10), source: "app")
        builder.append(line(identity, end: 15), source: "copy")
        builder.append(line(identity, end: 30), source: "app")
        builder.append(line(other, truncations: 1, end: 5), source: "app")
        let positions = Set(builder.close().positions)
        #expect(positions == [
            FilePosition(identity: identity, source: "app", truncations: 0, offset: 30),
            FilePosition(identity: identity, source: "copy", truncations: 0, offset: 15),
            FilePosition(identity: other, source: "app", truncations: 1, offset: 5),
        ])
        #expect(builder.close().positions.isEmpty, "a closed batch starts with no positions")
    }

    @Test func staysBounded() throws {
        let dir = try ScratchDirectory()
        var store = try CheckpointStore(path: dir.path + "/c.json")
        store.maxEntries = 3
        for inode in 0..<10 as Range<UInt64> {
            store.advance(FilePosition(identity: FileIdentity(device: 1, inode: inode, fingerprint: 0), truncations: 0, offset: 1))
        }
        #expect(store.positions.count == 3)
    }
}

@Suite struct BackoffTests {
    @Test func growsToTheCapWithJitterBelowTheCeiling() {
        let backoff = Backoff(initial: .milliseconds(100), cap: .seconds(2))
        #expect(backoff.ceiling(attempt: 0) == .milliseconds(100))
        #expect(backoff.ceiling(attempt: 3) == .milliseconds(800))
        #expect(backoff.ceiling(attempt: 40) == .seconds(2))
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<20 {
            let delay = backoff.delay(attempt: attempt, using: &generator)
            #expect(delay >= .zero && delay <= backoff.ceiling(attempt: attempt))
        }
    }
}

@Suite struct AgentConfigTests {
    /// The documented example must stay loadable.
    @Test func exampleConfigLoads() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("agent/agent.example.yaml").path
        let config = try AgentConfig.load(path: example)
        #expect(config.node == "s1")
        #expect(config.sources.map(\.id) == ["webapp", "serf", "haproxy"])
        #expect(config.fileSources[0].format == .s6)
        #expect(config.fileSources[2].parse == .haproxyHTTPLog && config.fileSources[0].parse == nil)
        #expect(config.batch.maxRecords == 10_000)
        #expect(config.spool.maxBytes == 256 << 20 && config.shutdownGraceMilliseconds == 5000)
    }

    /// The error names the place, never the text there: the line may hold the token.
    @Test func aYAMLErrorNeverQuotesTheToken() throws {
        let dir = try ScratchDirectory()
        try dir.append("collector:\n  token: s3cret-t0ken: [\n", to: "agent.yaml")
        #expect { try AgentConfig.load(path: dir.path + "/agent.yaml") } throws: { error in
            let text = "\(error)"
            return text.contains("not valid YAML at line") && !text.contains("s3cret-t0ken")
        }
    }

    @Test func pathsInAConfigFileAreRelativeToIt() {
        #expect(YAMLConfigFile.path("token", relativeTo: "/etc/muster") == "/etc/muster/token")
        #expect(YAMLConfigFile.path("/run/token", relativeTo: "/etc/muster") == "/run/token")
        // `--config agent.yaml` from the working directory: the token is next to it, not at /token.
        #expect(YAMLConfigFile.path("token", relativeTo: "") == "token")
    }

    @Test func validationSaysWhatIsWrong() throws {
        var config = AgentConfig()
        config.collector.token = "t"
        #expect { try config.validate() } throws: { "\($0)".contains("no sources configured") }
        config.sources = [AgentConfig.FileSourceConfig(id: "a", paths: ["/x"]), AgentConfig.FileSourceConfig(id: "a", paths: ["/y"])]
        #expect { try config.validate() } throws: { "\($0)".contains("used twice") }
        config.sources = [AgentConfig.FileSourceConfig(id: "a", paths: ["/x"])]
        config.collector.urls = ["ftp://nowhere"]
        #expect { try config.validate() } throws: { "\($0)".contains("not an http(s) URL") }
        config.collector.urls = ["http://127.0.0.1:1"]
        config.collector.token = nil
        #expect { try config.validate() } throws: { "\($0)".contains("no collector token") }
    }
}

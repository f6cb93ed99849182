import Foundation
import Logging
import Testing

@testable import MusterCollector

/// The collector's `tls:` section: every way it can be wrong is a startup error that names
/// the key and the file, never a crash and never a silent fallback to plain HTTP.
@Suite struct TLSConfigTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-tls-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// A self-signed certificate and its key, plus an unrelated key, made with openssl.
    func makeFiles() throws -> (cert: String, key: String, otherKey: String) {
        let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let path = try #require(openssl, "these tests need the openssl command (Debian: apt-get install openssl)")
        func run(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " ")) failed")
        }
        try run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem",
            "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ])
        try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.pem"])
        return (directory + "/cert.pem", directory + "/key.pem", directory + "/other.pem")
    }

    func error(_ tls: CollectorConfig.TLS) -> String? {
        do {
            _ = try tls.serverConfiguration()
            return nil
        } catch {
            return error.description
        }
    }

    @Test func validFilesGiveAServerConfiguration() throws {
        let files = try makeFiles()
        let configuration = try CollectorConfig.TLS(certFile: files.cert, keyFile: files.key).serverConfiguration()
        #expect(configuration.certificateChain.count == 1)
        #expect(configuration.minimumTLSVersion == .tlsv12)
    }

    @Test func onlyOneOfTheTwoIsAnError() {
        #expect(error(.init(certFile: "/x/cert.pem")) == "invalid config tls.key_file: missing: TLS needs both cert_file and key_file (--tls-cert, --tls-key)")
        #expect(error(.init(keyFile: "/x/key.pem")) == "invalid config tls.cert_file: missing: TLS needs both cert_file and key_file (--tls-cert, --tls-key)")
    }

    @Test func unreadableOrBrokenFilesAreNamed() throws {
        let files = try makeFiles()
        #expect(error(.init(certFile: directory + "/nope.pem", keyFile: files.key)) == "invalid config tls.cert_file: cannot read \(directory)/nope.pem: no such file")
        #expect(error(.init(certFile: files.cert, keyFile: directory + "/nope.key")) == "invalid config tls.key_file: cannot read \(directory)/nope.key: no such file")
        try "not a certificate\n".write(toFile: directory + "/junk.pem", atomically: true, encoding: .utf8)
        #expect(error(.init(certFile: directory + "/junk.pem", keyFile: files.key))?.hasPrefix("invalid config tls.cert_file: \(directory)/junk.pem") == true)
        #expect(error(.init(certFile: files.cert, keyFile: directory + "/junk.pem"))?.hasPrefix(
            "invalid config tls.key_file: \(directory)/junk.pem is not an unencrypted PEM private key") == true)
        // The certificate given as the key, a common slip.
        #expect(error(.init(certFile: files.cert, keyFile: files.cert))?.hasPrefix("invalid config tls.key_file:") == true)
    }

    @Test func aKeyThatIsNotTheCertificatesIsAnError() throws {
        let files = try makeFiles()
        let message = try #require(error(.init(certFile: files.cert, keyFile: files.otherKey)))
        #expect(message.hasPrefix("invalid config tls: key_file \(files.otherKey) does not go with cert_file \(files.cert)"), "\(message)")
    }

    @Test func relativePathsInTheFileAreNextToIt() throws {
        try "tls:\n  cert_file: certs/cert.pem\n  key_file: /abs/key.pem\n".write(
            toFile: directory + "/collector.yaml", atomically: true, encoding: .utf8)
        let config = try CollectorConfig.load(path: directory + "/collector.yaml")
        #expect(config.tls == .init(certFile: directory + "/certs/cert.pem", keyFile: "/abs/key.pem"))
        #expect(try CollectorConfig.load(path: directory + "/collector.yaml").listen == CollectorConfig().listen)
    }

    /// A syntax error is reported by line and column, never by quoting the line: it may hold a token.
    @Test func aBrokenConfigFileIsNotQuoted() throws {
        try "listen:\n  port: 1\ntokens: [\"s3cret-token\", \n  : :\n".write(
            toFile: directory + "/broken.yaml", atomically: true, encoding: .utf8)
        #expect { try CollectorConfig.load(path: directory + "/broken.yaml") } throws: { error in
            let message = "\(error)"
            return message.contains("not valid YAML at line") && !message.contains("s3cret-token")
        }
    }

    /// `Collector` checks the files before it opens (and creates) the database.
    @Test func theCollectorRefusesToStartWithBrokenTLS() async throws {
        var config = CollectorConfig()
        config.tokens = ["t"]
        config.database = directory + "/store.sqlite"
        config.tls = .init(certFile: directory + "/missing.pem", keyFile: directory + "/missing.key")
        await #expect(throws: ConfigError.self) { try await Collector(config: config, logger: Logger(label: "test")) }
        #expect(!FileManager.default.fileExists(atPath: config.database))
        let files = try makeFiles()
        config.tls = .init(certFile: files.cert, keyFile: files.key)
        _ = try await Collector(config: config, logger: Logger(label: "test"))
    }
}

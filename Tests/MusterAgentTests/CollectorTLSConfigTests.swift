import Foundation
import NIOSSL
import Testing

@testable import MusterAgent

/// `collector.ca_file`: where it is looked for, when it is refused, and that a set CA is the
/// only trust root.
@Suite struct CollectorTLSConfigTests {
    /// A self-signed CA certificate (public part only; its key was thrown away).
    static let caPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBkzCCATqgAwIBAgIUJdmVJMbQFCSKX1tdXdd3XXbh0DMwCgYIKoZIzj0EAwIw
        FjEUMBIGA1UEAwwLbXVzdGVyLXRlc3QwIBcNMjYxMTIyMDQyMjUwWhgPMjEyNjEw
        MjkwNDIyNTBaMBYxFDASBgNVBAMMC211c3Rlci10ZXN0MFkwEwYHKoZIzj0CAQYI
        KoZIzj0DAQcDQgAEBa30mid18urW+tRVr9dDlZfPK+6wOHVabXLPb5+QN3uQSyWI
        mAQwXNyQmDmpjENMdMnUpCsKER0SFq0A7Ohcm6NkMGIwHQYDVR0OBBYEFHS2Nc+3
        czLthUJzfvEFiVv9J/0ZMB8GA1UdIwQYMBaAFHS2Nc+3czLthUJzfvEFiVv9J/0Z
        MA8GA1UdEwEB/wQFMAMBAf8wDwYDVR0RBAgwBocEfwAAATAKBggqhkjOPQQDAgNH
        ADBEAiBLQlFZXlKQkwqYfbgEBloM26CyAGQmVWz3zMEsH9tXQgIgEMROJVAzt3Sl
        0LdGOjIPbpGlga7Yehp4AlFlIb0rtDs=
        -----END CERTIFICATE-----

        """

    func valid(url: String, caFile: String?) -> AgentConfig {
        var config = AgentConfig()
        config.collector.urls = [url]
        config.collector.token = "t"
        config.collector.caFile = caFile
        config.sources = [AgentConfig.FileSourceConfig(id: "a", paths: ["/x"])]
        return config
    }

    @Test func aCAWithPlainHTTPIsRefused() throws {
        #expect { try valid(url: "http://10.0.0.2:8088", caFile: "/etc/muster/ca.pem").validate() } throws: {
            "\($0)" == "invalid agent config: ca_file is set but collector url is http://10.0.0.2:8088: "
                + "use https:// (the collector needs a tls section), or remove ca_file"
        }
        #expect { try valid(url: "https://10.0.0.2:8088", caFile: "").validate() } throws: { "\($0)".contains("collector.ca_file is empty") }
        try valid(url: "https://10.0.0.2:8088", caFile: "/etc/muster/ca.pem").validate()
        try valid(url: "https://10.0.0.2:8088", caFile: nil).validate()
        try valid(url: "http://10.0.0.2:8088", caFile: nil).validate()
    }

    @Test func caFileIsRelativeToTheConfigFile() throws {
        let dir = try ScratchDirectory()
        try dir.append("collector:\n  url: https://10.0.0.2:8088\n  token: t\n  ca_file: tls/ca.pem\n", to: "agent.yaml")
        #expect(try AgentConfig.load(path: dir.path + "/agent.yaml").collector.caFile == dir.path + "/tls/ca.pem")
        try dir.append("collector:\n  ca_file: /etc/muster/ca.pem\n", to: "absolute.yaml")
        #expect(try AgentConfig.load(path: dir.path + "/absolute.yaml").collector.caFile == "/etc/muster/ca.pem")
        try dir.append("collector:\n  url: https://10.0.0.2:8088\n", to: "none.yaml")
        #expect(try AgentConfig.load(path: dir.path + "/none.yaml").collector.caFile == nil)
    }

    @Test func aSetCAIsTheOnlyTrustRoot() throws {
        let dir = try ScratchDirectory()
        try dir.append(Self.caPEM, to: "ca.pem")
        let tls = try #require(try CollectorClient.tlsConfiguration(for: valid(url: "https://h", caFile: dir.path + "/ca.pem").collector))
        #expect(tls.trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(dir.path + "/ca.pem")))
        #expect(tls.additionalTrustRoots.isEmpty)
        #expect(tls.certificateVerification == .fullVerification)
        // Without one, AsyncHTTPClient's default: the system store.
        #expect(try CollectorClient.tlsConfiguration(for: valid(url: "https://h", caFile: nil).collector) == nil)
    }

    @Test func aMissingOrBrokenCAFileIsNamedAtStart() throws {
        let dir = try ScratchDirectory()
        func message(_ path: String) -> String {
            do {
                _ = try CollectorClient.tlsConfiguration(for: valid(url: "https://h", caFile: path).collector)
                return "no error"
            } catch {
                return error.description
            }
        }
        #expect(message(dir.path + "/nope.pem") == "invalid agent config: cannot read collector.ca_file \(dir.path)/nope.pem: no such file")
        try dir.append("not a certificate\n", to: "junk.pem")
        #expect(message(dir.path + "/junk.pem").hasPrefix("invalid agent config: collector.ca_file \(dir.path)/junk.pem "))
        try dir.append("", to: "empty.pem")
        #expect(message(dir.path + "/empty.pem").hasPrefix("invalid agent config: collector.ca_file \(dir.path)/empty.pem "))
    }

    /// The client is built from the config, CA and all; a bad CA stops `make` itself.
    @Test func clientIsBuiltOrRefused() async throws {
        let dir = try ScratchDirectory()
        try dir.append(Self.caPEM, to: "ca.pem")
        let client = try CollectorClient.make(for: valid(url: "https://h", caFile: dir.path + "/ca.pem").collector)
        try await client.shutdown()
        #expect(throws: AgentConfigError.self) {
            try CollectorClient.make(for: valid(url: "https://h", caFile: dir.path + "/nope.pem").collector)
        }
    }
}

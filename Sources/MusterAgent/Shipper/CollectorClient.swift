import AsyncHTTPClient
import Foundation
import NIOSSL

/// The HTTP client the agent talks to its collector with (ingest and the event stream).
public enum CollectorClient {
    /// A client that, for an https collector, trusts exactly `collector.caFile` when it is set
    /// (a private CA must not widen into "any public CA will do") and the system trust store
    /// otherwise. The CA file is read here, at start, so a missing or broken one stops the
    /// agent with its path instead of failing every request later as "certificate unknown".
    public static func make(for collector: AgentConfig.Collector) throws(AgentConfigError) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        if let tls = try tlsConfiguration(for: collector) { configuration.tlsConfiguration = tls }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The TLS settings for `collector`, or nil for AsyncHTTPClient's default (system store).
    static func tlsConfiguration(for collector: AgentConfig.Collector) throws(AgentConfigError) -> TLSConfiguration? {
        guard let path = collector.caFile else { return nil }
        guard FileManager.default.fileExists(atPath: path) else {
            throw .invalid("cannot read collector.ca_file \(path): no such file")
        }
        let roots: [NIOSSLCertificate]
        do {
            roots = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw .invalid("collector.ca_file \(path) is not a PEM certificate bundle (\(error))")
        }
        guard !roots.isEmpty else { throw .invalid("collector.ca_file \(path) holds no PEM certificate") }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(roots)
        return tls
    }
}

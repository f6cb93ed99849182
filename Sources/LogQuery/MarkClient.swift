import AsyncHTTPClient
import Foundation
import MusterStore
import MusterWire
import NIOCore
import NIOSSL

/// What the collector answered to `POST /v1/marks`.
public struct RecordedMark: Sendable, Equatable, Decodable {
    public var id: Int64
    public var name: String
    public var t: Int64
    public var time: String
    public var note: String
    public var event: Int64

    /// What `logq mark` prints: one JSON object, or a sentence (text and CSV alike).
    public func line(_ format: OutputFormat) -> String {
        switch format {
        case .json:
            "{\"id\":\(id),\"name\":\(JSONText.quoted(name)),\"time\":\(JSONText.quoted(time)),\"t\":\(t),\"event\":\(event)}"
        default:
            DisplayText.escapingControls("marked \(name) at \(time) (event \(event))", keepingLineFeeds: false)
        }
    }
}

/// `logq mark`: marks go through the collector, the store's only writer, so they take their
/// place in the event stream like everything else; logq itself never writes the file.
public struct MarkClient: Sendable {
    public let collectorURL: String
    public let token: String
    /// PEM bundle the https collector is verified against instead of the system store
    /// (`--ca-file`, MUSTER_CA_FILE), as the agent's `collector.ca_file`.
    public let caFile: String?
    public var timeout: TimeAmount = .seconds(10)

    public init(collectorURL: String, token: String, caFile: String? = nil) {
        self.collectorURL = collectorURL.hasSuffix("/") ? String(collectorURL.dropLast()) : collectorURL
        self.token = token
        self.caFile = caFile
    }

    /// The ingest token: what `file` holds, trimmed (`--token-file`, MUSTER_TOKEN_FILE), else
    /// `fallback` (MUSTER_TOKEN).
    public static func token(file: String?, fallback: String?) throws(QueryError) -> String {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw .badArgument("cannot read the token file \(file)")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw .badArgument("the token file \(file) is empty") }
            return token
        }
        guard let fallback, !fallback.isEmpty else {
            throw .badArgument("no token: set --token-file, MUSTER_TOKEN_FILE or MUSTER_TOKEN")
        }
        return fallback
    }

    public func mark(name: String, note: String) async throws(QueryError) -> RecordedMark {
        guard Mark.isValidName(name) else { throw .badArgument(MarkError.invalidName(name).description) }
        let tls = try Self.tlsConfiguration(caFile: caFile, collectorURL: collectorURL)
        var request = HTTPClientRequest(url: "\(collectorURL)/v1/marks")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: "{\"name\":\(JSONText.quoted(name)),\"note\":\(JSONText.quoted(note))}"))
        let (status, body): (UInt, ByteBuffer)
        do {
            (status, body) = try await Self.send(request, timeout: timeout, tls: tls)
        } catch {
            throw .collectorUnavailable(collectorURL, Self.describe(error, caFile: caFile))
        }
        guard status == 201 else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(body.readableBytesView)))?.error.message ?? body.getString(at: 0, length: body.readableBytes) ?? ""
            switch status {
            case 401: throw .collectorRefused(status, "the collector refused the token (\(message)); check --token-file / MUSTER_TOKEN_FILE")
            case 400..<500: throw .collectorRefused(status, message)
            default: throw .collectorUnavailable(collectorURL, "HTTP \(status): \(message)")
            }
        }
        do {
            return try JSONDecoder().decode(RecordedMark.self, from: Data(body.readableBytesView))
        } catch {
            throw .collectorUnavailable(collectorURL, "unexpected answer: \(error)")
        }
    }

    private static func send(_ request: HTTPClientRequest, timeout: TimeAmount, tls: TLSConfiguration?) async throws -> (UInt, ByteBuffer) {
        guard let tls else {
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            return (response.status.code, try await response.body.collect(upTo: 64 * 1024))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        // One command, one attempt: a certificate that does not verify now will not verify
        // after the timeout either, so say so at once.
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            try? await client.shutdown()
            return (response.status.code, body)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// NIOSSL's error, with what it means in front: the raw text names the BoringSSL reason only.
    static func describe(_ error: any Error, caFile: String?) -> String {
        let raw = "\(error)"
        guard raw.contains("CERTIFICATE_VERIFY_FAILED") else { return raw }
        let against = caFile.map { "the CA file \($0)" } ?? "the system trust store (set --ca-file or MUSTER_CA_FILE for a private CA)"
        return "the collector's certificate could not be verified against \(against): \(raw)"
    }

    /// The CA file as the only trust root, read now so a bad file is named as such. The same
    /// rules as the agent's `CollectorClient` (LogQuery does not link MusterAgent): a CA with
    /// an http URL is refused, since the token would still travel in the clear.
    static func tlsConfiguration(caFile: String?, collectorURL: String) throws(QueryError) -> TLSConfiguration? {
        guard let caFile else { return nil }
        guard collectorURL.lowercased().hasPrefix("https://") else {
            throw .badArgument("ca_file is set but collector url is \(collectorURL): use https://, or drop --ca-file / MUSTER_CA_FILE")
        }
        guard FileManager.default.fileExists(atPath: caFile) else { throw .badArgument("cannot read the CA file \(caFile): no such file") }
        let roots: [NIOSSLCertificate]
        do {
            roots = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw .badArgument("the CA file \(caFile) is not a PEM certificate bundle (\(error))")
        }
        guard !roots.isEmpty else { throw .badArgument("the CA file \(caFile) holds no PEM certificate") }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(roots)
        return tls
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable { var message: String }
        var error: Detail
    }
}

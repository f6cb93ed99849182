import AsyncHTTPClient
import Foundation
import MusterStore
import MusterWire
import NIOCore

/// What the collector answered to `POST /v1/marks`.
public struct RecordedMark: Sendable, Equatable, Decodable {
    public var id: Int64
    public var name: String
    public var t: Int64
    public var time: String
    public var note: String
    public var event: Int64
}

/// `logq mark`: marks go through the collector, the store's only writer, so they take their
/// place in the event stream like everything else; logq itself never writes the file.
public struct MarkClient: Sendable {
    public let collectorURL: String
    public let token: String
    public var timeout: TimeAmount = .seconds(10)

    public init(collectorURL: String, token: String) {
        self.collectorURL = collectorURL.hasSuffix("/") ? String(collectorURL.dropLast()) : collectorURL
        self.token = token
    }

    public func mark(name: String, note: String) async throws(QueryError) -> RecordedMark {
        guard Mark.isValidName(name) else { throw .badArgument(MarkError.invalidName(name).description) }
        var request = HTTPClientRequest(url: "\(collectorURL)/v1/marks")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: "{\"name\":\(JSONText.quoted(name)),\"note\":\(JSONText.quoted(note))}"))
        let (status, body): (UInt, ByteBuffer)
        do {
            (status, body) = try await Self.send(request, timeout: timeout)
        } catch {
            throw .collectorUnavailable(collectorURL, "\(error)")
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

    private static func send(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> (UInt, ByteBuffer) {
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 64 * 1024)
        return (response.status.code, body)
    }

    private struct ErrorBody: Decodable {
        struct Detail: Decodable { var message: String }
        var error: Detail
    }
}

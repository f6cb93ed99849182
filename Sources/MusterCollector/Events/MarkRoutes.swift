import Foundation
import Hummingbird
import Logging
import MusterStore
import MusterWire
import NIOCore

/// `POST /v1/marks` with `{"name": "task-2", "note": "..."}`: records a named instant (what
/// `logq mark` sends). Answers 201 with the mark; 400 `invalid_mark`, 409 `mark_exists`,
/// 401, or 503 `store_unavailable`, each with a JSON body.
struct MarkRoutes {
    let writer: IngestWriter
    let tokens: TokenSet
    let logger: Logger

    struct Body: Decodable {
        var name: String
        var note: String?
    }

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/marks") { request, _ in try await mark(request) }
    }

    private func mark(_ request: Request) async throws -> Response {
        guard tokens.accepts(authorization: request.headers[.authorization]) else { throw APIError.unauthorized }
        let data: ByteBuffer
        do {
            data = try await request.body.collect(upTo: 16 * 1024)
        } catch is NIOTooManyBytesError {
            throw APIError(status: .contentTooLarge, code: "invalid_mark", message: "a mark's body is at most 16 KiB")
        }
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: Data(buffer: data))
        } catch {
            throw APIError(
                status: .badRequest, code: "invalid_mark",
                message: #"the body must be a JSON object {"name": "task-2", "note": "optional text"}"#)
        }
        let mark: Mark
        do {
            mark = try await writer.recordMark(name: body.name, note: body.note ?? "")
        } catch let error as MarkError {
            if case .exists = error { throw APIError(status: .conflict, code: "mark_exists", message: error.description) }
            throw APIError(status: .badRequest, code: "invalid_mark", message: error.description)
        } catch {
            logger.error("mark not stored", metadata: ["error": "\(error)"])
            throw APIError(status: .serviceUnavailable, code: "store_unavailable", message: "the mark could not be stored (\(error)); retry later")
        }
        let json = """
            {"id":\(mark.id),"name":\(JSONText.quoted(mark.name)),"t":\(mark.t),"time":\(JSONText.quoted(Timestamp.format(mark.t))),\
            "note":\(JSONText.quoted(mark.note)),"event":\(mark.event)}
            """
        return Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

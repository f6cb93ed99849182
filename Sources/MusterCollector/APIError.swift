import Foundation
import Hummingbird
import MusterWire

/// Every refusal the collector gives: an HTTP status and a JSON body
/// `{"error": {"code": "...", "message": "..."}}` that says what to fix.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String

    init(status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    init(_ error: WireError) {
        self.init(status: .init(code: error.httpStatus), code: error.code, message: error.message)
    }

    static let unauthorized = APIError(
        status: .unauthorized, code: "unauthorized",
        message: "missing or wrong bearer token (send 'Authorization: Bearer <token>')")

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(["error": ["code": code, "message": message]])
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

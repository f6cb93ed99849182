/// Why a batch was refused. Each case maps to one HTTP status and a stable `code`
/// that clients can match on; `message` says what to fix.
public enum WireError: Error, Equatable, Sendable {
    case unsupportedEncoding(String)
    case bodyTooLarge(limit: Int)
    case decompressedTooLarge(limit: Int)
    case corruptCompression(String)
    case invalidUTF8(byteOffset: Int)
    case malformedJSON(line: Int, detail: String)
    case missingField(line: Int, field: String)
    case invalidField(line: Int, field: String, detail: String)
    case lineTooLong(line: Int, limit: Int)
    case tooManyRecords(limit: Int)
    case emptyBatch

    public var code: String {
        switch self {
        case .unsupportedEncoding: "unsupported_encoding"
        case .bodyTooLarge: "body_too_large"
        case .decompressedTooLarge: "decompressed_too_large"
        case .corruptCompression: "corrupt_compression"
        case .invalidUTF8: "invalid_utf8"
        case .malformedJSON: "malformed_json"
        case .missingField: "missing_field"
        case .invalidField: "invalid_field"
        case .lineTooLong: "line_too_long"
        case .tooManyRecords: "too_many_records"
        case .emptyBatch: "empty_batch"
        }
    }

    /// 413 for the size limits (a client may split and resend), 415 for encodings, 400 otherwise.
    public var httpStatus: Int {
        switch self {
        case .bodyTooLarge, .decompressedTooLarge, .tooManyRecords: 413
        case .unsupportedEncoding: 415
        default: 400
        }
    }

    public var message: String {
        switch self {
        case .unsupportedEncoding(let name):
            "Content-Encoding '\(name)' is not supported; use deflate (zlib), gzip or identity"
        case .bodyTooLarge(let limit):
            "request body is larger than the limit of \(limit) bytes; send smaller batches"
        case .decompressedTooLarge(let limit):
            "batch inflates to more than the limit of \(limit) bytes; send smaller batches"
        case .corruptCompression(let detail):
            "body could not be decompressed as declared by Content-Encoding: \(detail)"
        case .invalidUTF8(let offset):
            "batch is not valid UTF-8 (first bad byte at offset \(offset) of the decompressed body)"
        case .malformedJSON(let line, let detail):
            "line \(line): not a JSON object: \(detail)"
        case .missingField(let line, let field):
            "line \(line): missing field '\(field)'"
        case .invalidField(let line, let field, let detail):
            "line \(line): field '\(field)' \(detail)"
        case .lineTooLong(let line, let limit):
            "line \(line): longer than the limit of \(limit) bytes"
        case .tooManyRecords(let limit):
            "batch has more than \(limit) records; send smaller batches"
        case .emptyBatch:
            "batch holds no records"
        }
    }
}

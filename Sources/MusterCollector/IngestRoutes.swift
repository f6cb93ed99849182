import Foundation
import Hummingbird
import MusterStore
import MusterWire
import NIOCore

/// `POST /v1/ingest`: authenticate, read the body within limits, inflate, validate the whole
/// batch, then hand it to the single writer and answer once it is committed.
struct IngestRoutes {
    let writer: IngestWriter
    let tokens: TokenSet
    let limits: CollectorConfig.Limits
    let wireLimits: BatchCodec.Limits
    let metrics: CollectorMetrics
    let budget: InflatedBytesBudget

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/ingest") { request, context in
            try await ingest(request)
        }
    }

    func ingest(_ request: Request) async throws -> Response {
        metrics.requests.increment()
        do {
            return try await accept(request)
        } catch let error as APIError {
            metrics.rejectedBatches.increment()
            throw error
        }
    }

    private func accept(_ request: Request) async throws -> Response {
        guard tokens.accepts(authorization: request.headers[.authorization]) else { throw APIError.unauthorized }
        let coding: ContentCoding
        do {
            coding = try ContentCoding(header: request.headers[.contentEncoding])
        } catch {
            throw APIError(error)
        }
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limits.maxBodyBytes {
            throw APIError(.bodyTooLarge(limit: limits.maxBodyBytes))
        }
        let body = try await collectBody(request)
        // The most this body may cost until it is committed: its inflated bytes and the records
        // parsed from them (about as much again); trimmed to what it holds once decoded.
        var reserved = await budget.reserve(
            2 * (coding == .identity ? body.readableBytes : limits.maxDecompressedBytes))
        do {
            let counts = try await decodeAndCommit(body, coding: coding, reserved: &reserved)
            await budget.release(reserved)
            let answer = try JSONEncoder().encode(counts)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: answer)))
        } catch {
            await budget.release(reserved)
            throw error
        }
    }

    private func decodeAndCommit(_ body: ByteBuffer, coding: ContentCoding, reserved: inout Int) async throws -> IngestCounts {
        let records: [LogRecord]
        do {
            let inflated = try coding.decode(body, limit: limits.maxDecompressedBytes)
            records = try BatchCodec.decode(inflated, limits: wireLimits)
            let needed = min(reserved, 2 * inflated.readableBytes)
            await budget.release(reserved - needed)
            reserved = needed
        } catch {
            throw APIError(error)
        }
        let journal = try Self.journalEntries(in: records)
        do {
            return try await writer.submit(records, journal: journal)
        } catch let error as IngestWriterError {
            throw APIError(status: .serviceUnavailable, code: "busy", message: "\(error); retry later")
        } catch {
            // Nothing was acknowledged, so the sender keeps the batch and retries.
            throw APIError(
                status: .serviceUnavailable, code: "store_unavailable",
                message: "the batch could not be committed (\(error)); retry later")
        }
    }
}

extension IngestRoutes {
    /// The body, within `max_body_bytes` and `body_timeout_ms`: a sender that stops halfway
    /// gets 408 instead of holding the connection and its reservation forever.
    private func collectBody(_ request: Request) async throws -> ByteBuffer {
        let maxBytes = limits.maxBodyBytes
        let timeout = Duration.milliseconds(limits.bodyTimeoutMilliseconds)
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await request.body.collect(upTo: maxBytes) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let body = first else {
                    metrics.bodyTimeouts.increment()
                    throw APIError(
                        status: .requestTimeout, code: "body_timeout",
                        message: "the request body did not arrive within \(limits.bodyTimeoutMilliseconds) ms")
                }
                return body
            }
        } catch is NIOTooManyBytesError {
            throw APIError(.bodyTooLarge(limit: maxBytes))
        }
    }

    /// Decodes the batch's event-journal lines (source `events`), refusing the batch when one
    /// is not a journal entry: the collector interprets these lines, so it checks them first.
    static func journalEntries(in records: [LogRecord]) throws -> [Int: JournalEntry] {
        var entries: [Int: JournalEntry] = [:]
        for (index, record) in records.enumerated() where record.origin.source == JournalEntry.sourceID {
            do {
                entries[index] = try JournalEntry.decode(line: record.message)
            } catch {
                throw APIError(
                    status: .badRequest, code: "invalid_journal_entry",
                    message: "line \(index + 1): source '\(JournalEntry.sourceID)' is the event journal and its lines must be journal entries (docs/wire.md): \(error)")
            }
        }
        return entries
    }
}

/// The accepted bearer tokens, compared in constant time so response timing does not leak
/// how much of a guess was right.
struct TokenSet: Sendable {
    private let tokens: [[UInt8]]

    init(_ tokens: [String]) {
        self.tokens = tokens.map { Array($0.utf8) }
    }

    func accepts(authorization: String?) -> Bool {
        guard let authorization else { return false }
        let prefix = "bearer "
        guard authorization.count > prefix.count, authorization.lowercased().hasPrefix(prefix) else { return false }
        let presented = Array(authorization.dropFirst(prefix.count).utf8)
        var matched = false
        for token in tokens where Self.constantTimeEqual(token, presented) { matched = true }
        return matched
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

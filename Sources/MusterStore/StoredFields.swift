import Foundation
import MusterWire

/// How every backend stores a record's structured fields (`LogLine.fields`): one JSON object
/// with sorted keys, or nothing when the record has none, so the same record reads back the
/// same from any store.
public struct StoredFieldsEncoder {
    private let encoder: JSONEncoder

    public init() {
        encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
    }

    public func encode(_ record: LogRecord) throws -> String? {
        guard !record.fields.isEmpty else { return nil }
        return String(decoding: try encoder.encode(record.fields), as: UTF8.self)
    }
}

import MusterStore
import NIOCore

/// What the readers make of ClickHouse's answers, callable on any bytes: the rows read back are
/// outside input (another collector's version, a hand-edited table, a proxy's error page), so
/// the fuzz targets feed this arbitrary bytes (`Fuzz/Targets/StoreTargets.swift`).
public enum ClickHouseAnswer {
    /// The lines of a `JSONEachRow` answer to a read of `LogTables.lineColumns`, as
    /// `ClickHouseLogReader` decodes them; a row that does not decode, or an exception the
    /// server wrote after rows, is an error naming it.
    public static func lines(_ bytes: [UInt8]) throws(ClickHouseError) -> [LogLine] {
        try JSONAnswer.lines(ByteBuffer(bytes: bytes), from: "input").map(\.line)
    }
}

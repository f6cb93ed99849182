/// A value bound to a named parameter of a statement (`:at`, `:node`).
public enum SQLParameter: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    case null
}

/// A value of a statement's result. A blob comes as lowercase hex text.
public enum SQLValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case null
}

/// Some rows of a statement's result, with its column names.
public struct SQLRows: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[SQLValue]]

    public init(columns: [String], rows: [[SQLValue]] = []) {
        self.columns = columns
        self.rows = rows
    }
}

/// The user's own SQL on the store (`logq sql`, `logq run`): a capability of backends that
/// are SQL databases, which other backends need not offer (opening one then throws
/// `StoreError.unsupported`).
///
/// Guarantees a console gives:
///
/// - **It cannot write.** A statement that would change the store, attach another database
///   or start a transaction is refused before it runs (`StoreError.readOnly`), however it is
///   written.
/// - **One statement at a time**, with named parameters only; anything after the first
///   statement, or a parameter without a value, is refused (`StoreError.invalidStatement`).
/// - **Bounded work.** A statement that works longer than the console's time limit is
///   stopped (`StoreError.timedOut`); time spent in `body` does not count. The console stays
///   usable for the next statement.
/// - **The store's reading rules**: the statement sees committed commits only and never blocks
///   the collector.
///
/// A console is one connection: use it from one thread at a time.
public protocol SQLConsole: AnyObject {
    /// Runs one statement and hands its rows over in chunks of up to `chunkRows` rows (at
    /// least one call, with the columns, even when there are no rows), so a large result is
    /// held one chunk at a time.
    func query(_ statement: String, parameters: [String: SQLParameter], chunkRows: Int, _ body: (SQLRows) -> Void)
        throws(StoreError)
}

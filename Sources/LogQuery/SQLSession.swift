import MusterStore

/// `logq sql` and `logq run`: the user's statements on a store's `SQLConsole`, answered as
/// tables to print, refusals in logq's words.
public final class SQLSession {
    let console: any SQLConsole

    public init(console: any SQLConsole) {
        self.console = console
    }

    /// The whole result as one table.
    public func table(_ statement: String, parameters: [String: SQLParameter] = [:]) throws(QueryError) -> Table {
        var result = Table(columns: [])
        try query(statement, parameters: parameters) { chunk in
            result.columns = chunk.columns
            result.rows += chunk.rows
        }
        return result
    }

    /// Runs one statement and hands its rows over in tables of up to `chunkRows` rows (at least
    /// one call, with the columns, even when there are no rows), so printing a large result as
    /// JSON or CSV holds one chunk at a time.
    public func query(
        _ statement: String, parameters: [String: SQLParameter] = [:], chunkRows: Int = 10_000, _ body: (Table) -> Void
    ) throws(QueryError) {
        try QueryError.asking { () throws(StoreError) in
            try console.query(statement, parameters: parameters, chunkRows: chunkRows) { rows in
                body(Table(columns: rows.columns, rows: rows.rows.map { $0.map(Table.Value.init) }))
            }
        }
    }
}

extension Table.Value {
    init(_ value: SQLValue) {
        switch value {
        case .integer(let number): self = .integer(number)
        case .real(let number): self = .real(number)
        case .text(let text): self = .text(text)
        case .null: self = .null
        }
    }
}

import GRDB

/// The WHERE clause of a query being built, with its arguments in order.
struct SQLConditions {
    private(set) var clauses: [String] = []
    private(set) var arguments: StatementArguments = []

    mutating func add(_ clause: String, _ values: [any DatabaseValueConvertible] = []) {
        clauses.append(clause)
        arguments += StatementArguments(values)
    }

    /// `column` in [since, until), either end open.
    mutating func timeRange(_ column: String, since: Int64?, until: Int64?) {
        if let since { add("\(column) >= ?", [since]) }
        if let until { add("\(column) < ?", [until]) }
    }

    /// `column IN (?, ?, …)` for a non-empty list.
    mutating func isIn(_ column: String, _ values: [String]) {
        guard !values.isEmpty else { return }
        add("\(column) IN (\(Array(repeating: "?", count: values.count).joined(separator: ", ")))", values)
    }

    /// "" or "WHERE a AND b".
    var whereClause: String {
        clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
    }
}

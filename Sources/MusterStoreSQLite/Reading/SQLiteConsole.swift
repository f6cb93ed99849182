import Foundation
import GRDBSQLite
import MusterStore
import MusterWire

/// The embedded backend's `SQLConsole` (`logq sql`, `logq run`): one statement of the user's
/// SQL at a time on a connection of its own that cannot write.
///
/// Three locks, each enough on its own: the file is opened `SQLITE_OPEN_READONLY`, the
/// connection has `PRAGMA query_only`, and an authorizer refuses at compile time everything
/// but reading (SELECT, WITH, VALUES, EXPLAIN and a list of reading PRAGMAs), which also keeps
/// out ATTACH, transactions and `PRAGMA query_only = OFF` that the first two let through.
///
/// The connection has three functions of its own: `rfc3339(ns)` prints a time the way logq
/// prints every time (it parses back), `is_error(source, message, status)` is `ErrorRule`,
/// the one definition of an error line, and `search_indexed_through()` says how far the
/// store's word index (attached as `search`) goes.
///
/// A statement may run for at most `timeout` seconds of SQLite's own work (a recursive CTE
/// can run forever): SQLite's progress handler checks the time every `Watchdog.period`
/// virtual-machine steps and interrupts the statement, which ends in `StoreError.timedOut`.
/// Time spent handing rows to the caller (printing, a slow pipe) does not count.
public final class SQLiteConsole: SQLConsole {
    public let path: String
    /// Seconds; 0 means no limit.
    public let timeout: Double
    private let handle: OpaquePointer
    private let authorizer = Authorizer()
    /// What `search_indexed_through()` answers: read once, when the console opens.
    private let indexedThrough: IndexedThrough
    private let watchdog: Watchdog

    /// Opens the store at `path`; `timeout` is in seconds, 0 (no limit) to `longestTimeout`.
    public init(path: String, timeout: Double = 0) throws(StoreError) {
        guard timeout.isFinite, timeout >= 0, timeout <= Self.longestTimeout else {
            throw .timeLimitOutOfRange(timeout, longest: Self.longestTimeout)
        }
        guard FileManager.default.fileExists(atPath: path) else { throw .missing(location: path) }
        var connection: OpaquePointer?
        let opened = sqlite3_open_v2(path, &connection, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil)
        guard opened == SQLITE_OK, let connection else {
            let detail = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(connection)
            throw .unreadable(location: path, detail: detail)
        }
        self.path = path
        self.timeout = timeout
        handle = connection
        indexedThrough = IndexedThrough(Self.attachSearchIndex(to: connection, storePath: path))
        watchdog = Watchdog(limit: UInt64(timeout * 1e9))
        if timeout > 0 {
            sqlite3_progress_handler(handle, Watchdog.period, { context in
                guard let context else { return 0 }
                return Unmanaged<Watchdog>.fromOpaque(context).takeUnretainedValue().expired ? 1 : 0
            }, Unmanaged.passUnretained(watchdog).toOpaque())
        }
        sqlite3_busy_timeout(handle, 5_000)
        sqlite3_exec(handle, "PRAGMA query_only = ON", nil, nil, nil)
        Self.addFunctions(to: handle, indexedThrough: indexedThrough)
        sqlite3_set_authorizer(handle, authorize, Unmanaged.passUnretained(authorizer).toOpaque())
        var isStore = false
        try query("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('logs', 'streams')") { chunk in
            isStore = isStore || chunk.rows.first?.first == .integer(2)
        }
        guard isStore else { throw .unreadable(location: path, detail: "not a muster database (no logs table)") }
    }

    /// A day: longer is surely a typo, and keeps the limit in nanoseconds far from overflowing.
    public static let longestTimeout = 86_400.0

    /// What `logq sql` says in its help: the statements this console runs, the tables and the
    /// functions it has, which only this backend knows.
    public static let summary = "Run one SQL statement on the store, read-only (SELECT, WITH, VALUES, EXPLAIN or a reading PRAGMA)."
    public static let reference = """
        Tables: streams (node, source), logs (t in ns, msg, fields JSON, stream, off), meta, events, \
        membership, inventory, configs, marks (Sources/MusterStoreSQLite/Schema.swift); the word index, when the store has \
        one, as search.logs_fts_N (FTS5, one per million rows by id: logs.id >> 20 = N; search.partitions lists them; \
        e.g. SELECT rowid FROM search.logs_fts_0 WHERE logs_fts_0 MATCH 'GET'). Extra functions: rfc3339(ns) prints \
        a time as logq does; is_error(source, msg, json_extract(fields, '$.status')) is the error rule of 'logq hist --errors'; \
        search_indexed_through() is the highest logs.id the word index covers (0: none).
        """

    deinit {
        sqlite3_close_v2(handle)
    }

    /// The store's word index as `search` (read-only, as the connection is), before the
    /// authorizer that refuses ATTACH is installed; returns how far it covers the store (0 for
    /// a store without one, or with one made for another store).
    private static func attachSearchIndex(to handle: OpaquePointer, storePath: String) -> Int64 {
        let indexPath = SearchIndex.path(forStore: storePath)
        guard FileManager.default.fileExists(atPath: indexPath),
            step(handle, "ATTACH DATABASE ? AS \(SearchIndex.schemaName)", binding: indexPath) == SQLITE_DONE
        else { return 0 }
        var through: Int64 = 0
        _ = step(handle, SearchIndex.coveredThroughQuery) { through = sqlite3_column_int64($0, 0) }
        return through
    }

    /// Runs `sql` with one text parameter (when given), hands its first row to `row`.
    private static func step(
        _ handle: OpaquePointer, _ sql: String, binding text: String? = nil, row: (OpaquePointer) -> Void = { _ in }
    ) -> Int32 {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else { return SQLITE_ERROR }
        defer { sqlite3_finalize(statement) }
        if let text { sqlite3_bind_text(statement, 1, text, -1, SQLiteConsole.transient) }
        let code = sqlite3_step(statement)
        if code == SQLITE_ROW { row(statement) }
        return code
    }

    /// Runs one statement and hands its rows over in chunks of up to `chunkRows` rows (at least
    /// one call, with the columns, even when there are no rows), so printing a large result as
    /// JSON or CSV holds one chunk at a time.
    public func query(
        _ sql: String, parameters: [String: SQLParameter] = [:], chunkRows: Int = 10_000, _ body: (SQLRows) -> Void
    ) throws(StoreError) {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        try bind(parameters, to: statement)
        let columnCount = sqlite3_column_count(statement)
        var chunk = SQLRows(columns: (0..<columnCount).map { String(cString: sqlite3_column_name(statement, $0)) })
        var delivered = false
        watchdog.reset()
        while true {
            let code = watchdog.timing { sqlite3_step(statement) }
            if code == SQLITE_DONE { break }
            if code == SQLITE_INTERRUPT, watchdog.hasExpired { throw .timedOut(seconds: timeout) }
            guard code == SQLITE_ROW else { throw failure(code) }
            chunk.rows.append((0..<columnCount).map { Self.value(statement, $0) })
            if chunk.rows.count >= chunkRows {
                body(chunk)
                delivered = true
                chunk.rows.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.rows.isEmpty || !delivered { body(chunk) }
    }

    // MARK: Compiling

    private func prepare(_ sql: String) throws(StoreError) -> OpaquePointer {
        authorizer.reset()
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let (code, rest): (Int32, String) = sql.withCString { text in
            let code = sqlite3_prepare_v2(handle, text, -1, &statement, &tail)
            return (code, tail.map { String(cString: $0) } ?? "")
        }
        guard code == SQLITE_OK, authorizer.refusal == nil else {
            sqlite3_finalize(statement)
            throw failure(code)
        }
        guard let statement else { throw .invalidStatement("no SQL statement given") }
        if containsStatement(rest) {
            sqlite3_finalize(statement)
            throw .invalidStatement("give one statement at a time (found more after the first ';')")
        }
        // Whatever the authorizer has no action code for (VACUUM INTO writes a new file).
        guard sqlite3_stmt_readonly(statement) != 0 else {
            sqlite3_finalize(statement)
            throw .readOnly("this statement would write \(Self.allowed)")
        }
        return statement
    }

    /// Whether `text` (what follows the first statement) holds anything but blanks, comments
    /// and semicolons: a second statement, even a broken or forbidden one.
    private func containsStatement(_ text: String) -> Bool {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, text, -1, &statement, nil)
        sqlite3_finalize(statement)
        authorizer.reset()
        return code != SQLITE_OK || statement != nil
    }

    private func bind(_ parameters: [String: SQLParameter], to statement: OpaquePointer) throws(StoreError) {
        let count = sqlite3_bind_parameter_count(statement)
        guard count > 0 else { return }
        for index in 1...count {
            guard let cName = sqlite3_bind_parameter_name(statement, index) else {
                throw .invalidStatement("use named parameters (:name), not '?'")
            }
            let name = String(String(cString: cName).dropFirst())
            guard let value = parameters[name] else { throw .invalidStatement("no value for parameter :\(name)") }
            switch value {
            case .integer(let number): sqlite3_bind_int64(statement, index, number)
            case .text(let text): sqlite3_bind_text(statement, index, text, -1, Self.transient)
            case .null: sqlite3_bind_null(statement, index)
            }
        }
    }

    private func failure(_ code: Int32) -> StoreError {
        if let denied = authorizer.refusal {
            return .readOnly("\(denied) is not allowed \(Self.allowed)")
        }
        let message = String(cString: sqlite3_errmsg(handle))
        if code & 0xff == SQLITE_READONLY { return .readOnly(message) }
        return .invalidStatement(message)
    }

    private static func value(_ statement: OpaquePointer, _ column: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
        case SQLITE_TEXT:
            .text(
                String(
                    decoding: UnsafeRawBufferPointer(start: sqlite3_column_text(statement, column), count: bytes(statement, column)),
                    as: UTF8.self))
        case SQLITE_BLOB:
            .text(
                UnsafeRawBufferPointer(start: sqlite3_column_blob(statement, column), count: bytes(statement, column))
                    .map { String(format: "%02x", $0) }.joined())
        default: .null
        }
    }

    /// The length of a text or blob value (asked after the value, as SQLite wants).
    private static func bytes(_ statement: OpaquePointer, _ column: Int32) -> Int {
        Int(sqlite3_column_bytes(statement, column))
    }

    private static let allowed = "(logq sql runs one SELECT, WITH, VALUES, EXPLAIN or reading PRAGMA)"
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    // MARK: Functions

    private static func addFunctions(to handle: OpaquePointer, indexedThrough: IndexedThrough) {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC
        // The box outlives the connection: the console closes it in deinit, before its properties go.
        sqlite3_create_function_v2(handle, "search_indexed_through", 0, flags, Unmanaged.passUnretained(indexedThrough).toOpaque(), {
            context, _, _ in
            guard let box = sqlite3_user_data(context) else { return sqlite3_result_int64(context, 0) }
            sqlite3_result_int64(context, Unmanaged<IndexedThrough>.fromOpaque(box).takeUnretainedValue().value)
        }, nil, nil, nil)
        sqlite3_create_function_v2(handle, "rfc3339", 1, flags, nil, { context, _, values in
            guard let values, sqlite3_value_type(values[0]) != SQLITE_NULL else { return sqlite3_result_null(context) }
            sqlite3_result_text(context, Timestamp.format(sqlite3_value_int64(values[0])), -1, SQLiteConsole.transient)
        }, nil, nil, nil)
        sqlite3_create_function_v2(handle, "is_error", 3, flags, nil, { context, _, values in
            guard let values else { return sqlite3_result_int(context, 0) }
            func text(_ index: Int) -> String? {
                sqlite3_value_type(values[index]) == SQLITE_NULL ? nil : String(cString: sqlite3_value_text(values[index]))
            }
            let status: Int64? =
                sqlite3_value_type(values[2]) == SQLITE_INTEGER ? sqlite3_value_int64(values[2]) : text(2).flatMap { Int64($0) }
            sqlite3_result_int(context, ErrorRule.matches(source: text(0), message: text(1) ?? "", status: status) ? 1 : 0)
        }, nil, nil, nil)
    }
}

// MARK: The time limit

/// The time SQLite has spent on the current statement, for the progress handler.
private final class Watchdog {
    /// Virtual-machine steps between two looks at the clock: about a millisecond's work at most.
    static let period: Int32 = 10_000

    /// Nanoseconds; 0 means no limit.
    let limit: UInt64
    private var spent: UInt64 = 0
    private var stepStarted: UInt64 = 0
    private(set) var hasExpired = false

    init(limit: UInt64) {
        self.limit = limit
    }

    func reset() {
        spent = 0
        hasExpired = false
    }

    /// Runs one `sqlite3_step`, counting its time.
    func timing(_ step: () -> Int32) -> Int32 {
        stepStarted = DispatchTime.now().uptimeNanoseconds
        defer { spent += DispatchTime.now().uptimeNanoseconds - stepStarted }
        return step()
    }

    /// Asked by the progress handler during a step: true stops the statement.
    var expired: Bool {
        if limit > 0, !hasExpired, spent + (DispatchTime.now().uptimeNanoseconds - stepStarted) > limit { hasExpired = true }
        return hasExpired
    }
}

// MARK: The authorizer

/// What the authorizer refused first, for the error message, and whether the statement writes
/// the schema table.
private final class Authorizer {
    var denied: String?
    var schemaWrite = false

    var refusal: String? { denied ?? (schemaWrite ? "changing the schema" : nil) }

    func reset() {
        denied = nil
        schemaWrite = false
    }
}

private let schemaTables: Set<String> = ["sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"]

/// PRAGMAs that only read, with no argument.
private let readingPragmas: Set<String> = [
    "application_id", "auto_vacuum", "collation_list", "compile_options", "data_version", "database_list", "encoding",
    "foreign_key_check", "freelist_count", "function_list", "integrity_check", "journal_mode", "module_list", "page_count",
    "page_size", "pragma_list", "quick_check", "schema_version", "table_list", "user_version",
]
/// PRAGMAs whose argument names a table or an index.
private let reportingPragmas: Set<String> = [
    "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo", "integrity_check", "quick_check",
    "table_info", "table_list", "table_xinfo",
]

private func authorize(
    _ context: UnsafeMutableRawPointer?, _ action: Int32, _ first: UnsafePointer<CChar>?, _ second: UnsafePointer<CChar>?,
    _ database: UnsafePointer<CChar>?, _ trigger: UnsafePointer<CChar>?
) -> Int32 {
    let name = first.map { String(cString: $0) }
    switch action {
    case SQLITE_SELECT, SQLITE_READ, SQLITE_FUNCTION, SQLITE_RECURSIVE:
        return SQLITE_OK
    case SQLITE_UPDATE where name.map(schemaTables.contains) == true:
        // Connecting a virtual table (the index's FTS5 tables, pragma_table_info…) declares its schema,
        // which SQLite reports as an UPDATE of sqlite_master. Every statement that really
        // changes the schema has an action of its own (CREATE…, DROP…, ALTER TABLE), refused below.
        return SQLITE_OK
    case SQLITE_INSERT where name.map(schemaTables.contains) == true, SQLITE_DELETE where name.map(schemaTables.contains) == true:
        // CREATE and DROP write sqlite_master before SQLite asks about the CREATE or DROP
        // itself: note it and let compiling go on to that action, which names the statement
        // when it is refused (`prepare` refuses a statement with anything noted in any case).
        authorizerState(context)?.schemaWrite = true
        return SQLITE_OK
    case SQLITE_PRAGMA:
        let pragma = name?.lowercased() ?? ""
        if second == nil ? readingPragmas.contains(pragma) : reportingPragmas.contains(pragma) { return SQLITE_OK }
        deny(context, "PRAGMA \(pragma)\(second.map { " = " + String(cString: $0) } ?? "")")
    case SQLITE_TRANSACTION:
        deny(context, name ?? "a transaction")
    case SQLITE_SAVEPOINT:
        deny(context, "SAVEPOINT")
    case SQLITE_ALTER_TABLE:
        deny(context, "ALTER TABLE" + (second.map { " " + String(cString: $0) } ?? ""))
    default:
        deny(context, actionName(action) + (name.map { " \($0)" } ?? ""))
    }
    return SQLITE_DENY
}

private func authorizerState(_ context: UnsafeMutableRawPointer?) -> Authorizer? {
    context.map { Unmanaged<Authorizer>.fromOpaque($0).takeUnretainedValue() }
}

private func deny(_ context: UnsafeMutableRawPointer?, _ what: String) {
    guard let authorizer = authorizerState(context), authorizer.denied == nil else { return }
    authorizer.denied = what
}

private func actionName(_ action: Int32) -> String {
    switch action {
    case SQLITE_INSERT: "INSERT into"
    case SQLITE_UPDATE: "UPDATE of"
    case SQLITE_DELETE: "DELETE from"
    case SQLITE_CREATE_TABLE, SQLITE_CREATE_TEMP_TABLE: "CREATE TABLE"
    case SQLITE_CREATE_INDEX, SQLITE_CREATE_TEMP_INDEX: "CREATE INDEX"
    case SQLITE_CREATE_VIEW, SQLITE_CREATE_TEMP_VIEW: "CREATE VIEW"
    case SQLITE_CREATE_TRIGGER, SQLITE_CREATE_TEMP_TRIGGER: "CREATE TRIGGER"
    case SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE"
    case SQLITE_DROP_TABLE, SQLITE_DROP_TEMP_TABLE: "DROP TABLE"
    case SQLITE_DROP_INDEX, SQLITE_DROP_TEMP_INDEX: "DROP INDEX"
    case SQLITE_DROP_VIEW, SQLITE_DROP_TEMP_VIEW: "DROP VIEW"
    case SQLITE_DROP_TRIGGER, SQLITE_DROP_TEMP_TRIGGER: "DROP TRIGGER"
    case SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE"
    case SQLITE_ATTACH: "ATTACH"
    case SQLITE_DETACH: "DETACH"
    case SQLITE_REINDEX: "REINDEX"
    case SQLITE_ANALYZE: "ANALYZE"
    default: "this statement (SQLite action \(action))"
    }
}

/// How far the store's word index goes, as the console found it when it opened: a box, so
/// SQLite can hand it to `search_indexed_through()`.
private final class IndexedThrough {
    let value: Int64

    init(_ value: Int64) { self.value = value }
}

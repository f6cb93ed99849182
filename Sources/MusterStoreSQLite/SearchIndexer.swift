import GRDB
import MusterStore

/// Fills the full-text index behind ingest, in chunks.
///
/// Indexing is the most expensive thing the collector does per line, so it stays off the
/// ingest path: a per-row trigger would index inside every ingest transaction. The index is
/// FTS5 with the `unicode61` tokenizer and `detail=none` (which words, not where): on the
/// benchmark's HAProxy lines, chunked indexing ran at ~176k rows/s that way, against ~108k
/// with positions and ~24k with the trigram tokenizer (Benchmarks/README.md). Phrases are
/// checked on the candidate rows by `LineSearch`, so positions are not needed. Readers stay
/// complete in between: `LineSearch` answers the indexed part from FTS and scans only the
/// rows past `search_indexed_through`.
public enum SearchIndexer {
    /// Indexes up to `maxRows` rows past the high-water mark, in the caller's transaction.
    public static func indexNextChunk(in db: Database, maxRows: Int) throws -> SearchIndexProgress {
        let from = try db.meta(MetaKey.searchIndexedThrough) ?? 0
        let maxID = try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0
        guard maxID > from else { return SearchIndexProgress(indexed: 0, indexedThrough: from, pending: 0) }
        let through =
            try Int64.fetchOne(
                db, sql: "SELECT max(id) FROM (SELECT id FROM logs WHERE id > ? ORDER BY id LIMIT ?)",
                arguments: [from, maxRows]) ?? from
        try db.execute(
            sql: "INSERT INTO logs_fts(rowid, msg) SELECT id, msg FROM logs WHERE id > ? AND id <= ? ORDER BY id",
            arguments: [from, through])
        let indexed = db.changesCount
        try db.setMeta(MetaKey.searchIndexedThrough, through)
        return SearchIndexProgress(indexed: indexed, indexedThrough: through, pending: maxID - through)
    }

    /// The highest `logs.id` the index covers.
    public static func indexedThrough(_ db: Database) throws -> Int64 {
        try db.meta(MetaKey.searchIndexedThrough) ?? 0
    }
}

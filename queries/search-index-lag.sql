-- How far the full-text index is behind ingest: rows stored but not yet indexed, and the age
-- of the oldest of them. logq --match still finds those rows (it scans them).
-- Read-only; run with: sqlite3 -readonly -header -column muster.sqlite < queries/search-index-lag.sql
SELECT (SELECT max(id) FROM logs) - coalesce((SELECT value FROM meta WHERE key = 'search_indexed_through'), 0)
           AS rows_not_indexed,
       (strftime('%s', 'now') * 1000000000 -
        (SELECT min(t) FROM logs WHERE id > coalesce((SELECT value FROM meta WHERE key = 'search_indexed_through'), 0)))
        / 1e9 AS oldest_unindexed_age_seconds;

-- name: search-index-lag
-- description: How far the full-text index is behind ingest: rows not yet indexed and the age of the oldest.
-- logq logs --match still finds those rows (it reads them directly).
SELECT (SELECT count(*) FROM logs WHERE id > search_indexed_through()) AS rows_not_indexed,
       (strftime('%s', 'now') * 1000000000 -
        (SELECT min(t) FROM logs WHERE id > search_indexed_through())) / 1e9 AS oldest_unindexed_age_seconds;

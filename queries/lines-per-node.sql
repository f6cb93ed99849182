-- Lines and bytes stored per node and source, with the time span each covers.
-- Read-only; run with: sqlite3 -readonly -header -column muster.sqlite < queries/lines-per-node.sql
SELECT s.node,
       s.source,
       count(*)                                   AS lines,
       sum(length(CAST(l.msg AS BLOB)))           AS bytes,
       strftime('%Y-%m-%dT%H:%M:%SZ', min(l.t) / 1000000000, 'unixepoch') AS first,
       strftime('%Y-%m-%dT%H:%M:%SZ', max(l.t) / 1000000000, 'unixepoch') AS last
FROM logs l
JOIN streams s ON s.id = l.stream
GROUP BY s.node, s.source
ORDER BY s.node, s.source;

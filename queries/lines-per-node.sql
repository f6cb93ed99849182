-- name: lines-per-node
-- description: Lines and bytes stored per node and source, with the time span each covers.
SELECT s.node,
       s.source,
       count(*)                         AS lines,
       sum(length(CAST(l.msg AS BLOB))) AS bytes,
       rfc3339(min(l.t))                AS first,
       rfc3339(max(l.t))                AS last
FROM logs l
JOIN streams s ON s.id = l.stream
GROUP BY s.node, s.source
ORDER BY s.node, s.source;

-- name: errors-per-minute
-- description: Error lines per node per minute: 5xx for parsed HTTP logs, else lines saying error, fail, fatal, panic … (as logq hist --errors).
-- param: since  time  optional  From this time (default: the beginning)
-- param: until  time  optional  Up to this time, exclusive (default: the end)
-- param: node   text  optional  Only this node
-- is_error(source, message, status) is logq's one error rule (Sources/LogQuery/ErrorRule.swift).
SELECT rfc3339((l.t / 60000000000) * 60000000000) AS minute,
       s.node,
       count(*) AS errors
FROM logs l
JOIN streams s ON s.id = l.stream
WHERE l.t >= coalesce(:since, -9223372036854775808) AND l.t < coalesce(:until, 9223372036854775807)
  AND (:node IS NULL OR s.node = :node)
  AND is_error(s.source, l.msg, json_extract(l.fields, '$.status'))
GROUP BY l.t / 60000000000, s.node
ORDER BY l.t / 60000000000, s.node;

-- name: slowest-requests
-- description: The slowest HTTP requests by total time (HAProxy's Ta), with where the time went (Tq, Tw, Tc, Tr in ms).
-- param: since  time  optional  From this time (default: the beginning)
-- param: until  time  optional  Up to this time, exclusive (default: the end)
-- param: limit  int   optional  How many (default 20)
SELECT rfc3339(l.t)                          AS time,
       s.node,
       json_extract(l.fields, '$.backend')   AS backend,
       json_extract(l.fields, '$.server')    AS server,
       json_extract(l.fields, '$.method')    AS method,
       json_extract(l.fields, '$.path')      AS path,
       json_extract(l.fields, '$.status')    AS status,
       json_extract(l.fields, '$.ta')        AS ta_ms,
       json_extract(l.fields, '$.tq')        AS tq_ms,
       json_extract(l.fields, '$.tw')        AS tw_ms,
       json_extract(l.fields, '$.tc')        AS tc_ms,
       json_extract(l.fields, '$.tr')        AS tr_ms,
       json_extract(l.fields, '$.bytes')     AS bytes,
       json_extract(l.fields, '$.termination') AS termination
FROM logs l
JOIN streams s ON s.id = l.stream
WHERE l.t >= coalesce(:since, -9223372036854775808) AND l.t < coalesce(:until, 9223372036854775807)
  AND l.fields IS NOT NULL
  AND json_extract(l.fields, '$.ta') >= 0
ORDER BY json_extract(l.fields, '$.ta') DESC, l.id
LIMIT coalesce(:limit, 20);

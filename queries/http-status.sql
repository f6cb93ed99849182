-- name: http-status
-- description: HTTP status mix per backend and server, from HAProxy's parsed httplog fields.
-- param: since    time  optional  From this time (default: the beginning)
-- param: until    time  optional  Up to this time, exclusive (default: the end)
-- param: backend  text  optional  Only this backend
SELECT backend,
       server,
       count(*)                             AS requests,
       sum(status BETWEEN 200 AND 299)      AS "2xx",
       sum(status BETWEEN 300 AND 399)      AS "3xx",
       sum(status BETWEEN 400 AND 499)      AS "4xx",
       sum(status BETWEEN 500 AND 599)      AS "5xx",
       sum(status < 200 OR status > 599)    AS other,
       round(100.0 * sum(status BETWEEN 500 AND 599) / count(*), 1) AS pct_5xx
FROM (SELECT json_extract(l.fields, '$.backend') AS backend,
             json_extract(l.fields, '$.server')  AS server,
             json_extract(l.fields, '$.status')  AS status
      FROM logs l
      WHERE l.t >= coalesce(:since, -9223372036854775808) AND l.t < coalesce(:until, 9223372036854775807)
        AND l.fields IS NOT NULL)
WHERE status IS NOT NULL
  AND (:backend IS NULL OR backend = :backend)
GROUP BY backend, server
ORDER BY backend, server;

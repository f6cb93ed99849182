-- name: flapping
-- description: Members that changed state more than N times in a window (joins, leaves, failures …).
-- param: since      time  optional  Start of the window (default: the beginning)
-- param: until      time  optional  End of the window, exclusive (default: the end)
-- param: more_than  int   optional  More than this many changes (default 2)
SELECT member,
       count(*)                 AS changes,
       sum(change = 'joined')   AS joins,
       sum(change = 'left')     AS leaves,
       sum(change = 'failed')   AS failures,
       rfc3339(min(t))          AS first,
       rfc3339(max(t))          AS last
FROM membership
WHERE t >= coalesce(:since, -9223372036854775808) AND t < coalesce(:until, 9223372036854775807)
GROUP BY member
HAVING count(*) > coalesce(:more_than, 2)
ORDER BY changes DESC, member;

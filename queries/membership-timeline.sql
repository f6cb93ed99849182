-- name: membership-timeline
-- description: Joins, leaves and failures in order, with the node that observed each and why.
-- param: since  time  optional  From this time (default: the beginning)
-- param: until  time  optional  Up to this time, exclusive (default: the end)
-- param: node   text  optional  Only this member
SELECT rfc3339(t) AS time, member, change, status, address, observer, cause
FROM membership
WHERE t >= coalesce(:since, -9223372036854775808) AND t < coalesce(:until, 9223372036854775807)
  AND (:node IS NULL OR member = :node)
ORDER BY t, id;

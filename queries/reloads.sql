-- name: reloads
-- description: Load balancer configuration applies (reloads, runtime API changes) and how long each took.
-- param: since   time  optional  From this time (default: the beginning)
-- param: until   time  optional  Up to this time, exclusive (default: the end)
-- param: method  text  optional  Only this method: reload, runtime or file
SELECT rfc3339(t) AS time, node, version, method, outcome, duration_ms, trigger, servers, message
FROM configs
WHERE t >= coalesce(:since, -9223372036854775808) AND t < coalesce(:until, 9223372036854775807)
  AND (:method IS NULL OR method = :method)
ORDER BY t, id;

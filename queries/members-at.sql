-- name: members-at
-- description: Who was a member at an instant, with status and address (what logq members --at shows).
-- param: at    time            The instant (any logq time: 10m, 14:05, RFC 3339 …)
-- param: node  text  optional  Only this member
-- The latest membership change of each member at or before the instant; reaped members are gone.
SELECT m.member AS member,
       m.status,
       m.address,
       m.role,
       rfc3339(m.t) AS since,
       m.change     AS last_change,
       m.observer
FROM membership AS m
WHERE m.id = (SELECT id FROM membership WHERE member = m.member AND t <= :at ORDER BY t DESC, id DESC LIMIT 1)
  AND m.status != 'reaped'
  AND (:node IS NULL OR m.member = :node)
ORDER BY m.member;

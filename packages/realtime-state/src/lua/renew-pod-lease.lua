-- renew-pod-lease: the owner extends its lease and, in the same step, records how far it has
-- delivered (its changed checkpoints). A lease that has run out is never revived (a live pod may
-- be taking its connections over right now): the caller must re-register.
-- ARGV: 1 base, 2 instance, 3 lease ms, 4.. checkpoints as quadruples request_id, token,
--       entity_id, cursor
-- Returns {1|0 renewed, generation ('' when the registry has none: it was lost), checkpoints written}
-- A checkpoint is written only while the caller owns that very stream (token) and the connection
-- still watches the entity: a removed or unsubscribed one never gets a position back.
--- @include "ownership-common"
local me = ARGV[2]
local now = now_ms()
local generation = redis.call('GET', generation_key) or ''
if not lease_alive(me, now) then return {0, generation, 0} end
redis.call('ZADD', pods_key, 'XX', now + tonumber(ARGV[3]), me)
local written = 0
for i = 4, #ARGV - 3, 4 do
  local rid, token, eid, cursor = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('ZSCORE', owner_key, rid) == me
    and redis.call('HGET', conn_key(rid), 'token') == token
    and redis.call('SISMEMBER', watchers_key(eid), rid) == 1 then
    redis.call('HSET', positions_key(rid), eid, cursor)
    written = written + 1
  end
end
return {1, generation, written}

-- take-over-dead: moves up to `limit` connections of ONE instance whose lease ran out (the
-- oldest) to the caller, atomically, so exactly one live pod serves (or closes) each. The dead
-- instance is forgotten once it owns nothing.
-- ARGV: 1 base, 2 instance, 3 POD_ID, 4 limit
-- Returns {'lease_lost'} | {'none'}
--       | {'taken', dead_instance, dead_lease_deadline_ms, dead_info_json, {{rid, token, gateway, {entity, ...}}, ...}}
--- @include "ownership-common"
local me, pod, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_ms()
if not lease_alive(me, now) then return {'lease_lost'} end
local dead = redis.call('ZRANGEBYSCORE', pods_key, '-inf', '(' .. now, 'WITHSCORES', 'LIMIT', 0, 1)
if #dead == 0 then return {'none'} end
local d, deadline = dead[1], dead[2]
local info = redis.call('HGET', info_key, d) or ''
local out = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', owner_key, d, d, 'LIMIT', 0, limit)) do
  local c = redis.call('HMGET', conn_key(rid), 'token', 'gateway')
  if c[1] then
    table.insert(out, own(rid, c[1], c[2], me, pod))
  else
    redis.call('ZREM', owner_key, rid) -- index entry without a connection
  end
end
if redis.call('ZCOUNT', owner_key, d, d) == 0 then
  redis.call('ZREM', pods_key, d)
  redis.call('HDEL', info_key, d)
end
return {'taken', d, deadline, info, out}

-- subscribe: the connection request_id watches device_id, which currently has entity_id.
-- Idempotent. If the device was subscribed under another entity id (the device's entity id
-- changed since), the subscription moves to the new entity.
-- ARGV: 1 base, 2 request_id, 3 device_id, 4 entity_id, 5 caller subject ('' = no caller identity),
--       6 start cursor ('' = none): delivery of the entity to this connection starts after it,
--       7 '1' = record the start even when the subscription is unchanged (a resume with `since`),
--         '0' = only when the subscription is added or moved
-- Returns {'ok', 'added'|'unchanged'|'moved'} | {'error', CODE}
--   CODE: NO_IDENTITY_BINDING | IDENTITY_MISMATCH | BINDING_EXPIRED
--- @include "common"
local rid, device, eid, caller = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local start, always = ARGV[6] or '', ARGV[7] == '1'
local refused = check_binding(rid, caller, now_ms())
if refused then return {'error', refused} end

local dkey = devices_key(rid)
local previous = redis.call('HGET', dkey, device)
if previous == eid then
  if always and start ~= '' then redis.call('HSET', positions_key(rid), eid, start) end
  return {'ok', 'unchanged'}
end
redis.call('HSET', dkey, device, eid)
redis.call('SADD', watchers_key(eid), rid)
if start ~= '' and (always or redis.call('HEXISTS', positions_key(rid), eid) == 0) then
  redis.call('HSET', positions_key(rid), eid, start)
end
if previous then
  if not still_watches(rid, previous, device) then
    redis.call('SREM', watchers_key(previous), rid)
    redis.call('HDEL', positions_key(rid), previous)
  end
  return {'ok', 'moved'}
end
redis.call('HINCRBY', counts_key, 'subscriptions', 1)
return {'ok', 'added'}

-- unsubscribe: removes what (request_id, device_id) subscribed, under the entity id recorded at
-- subscribe time (the device's entity id may have changed since). The connection keeps watching
-- the entity if another of its devices maps to it.
-- ARGV: 1 base, 2 request_id, 3 device_id, 4 caller subject ('' = no caller identity)
-- Returns {'ok', entity_id} | {'error', CODE}
--   CODE: NO_IDENTITY_BINDING | IDENTITY_MISMATCH | BINDING_EXPIRED | SUBSCRIPTION_NOT_FOUND
--- @include "common"
local rid, device, caller = ARGV[2], ARGV[3], ARGV[4]
local refused = check_binding(rid, caller, now_ms())
if refused then return {'error', refused} end

local dkey = devices_key(rid)
local eid = redis.call('HGET', dkey, device)
if not eid then return {'error', 'SUBSCRIPTION_NOT_FOUND'} end
redis.call('HDEL', dkey, device)
if not still_watches(rid, eid, device) then
  redis.call('SREM', watchers_key(eid), rid)
  redis.call('HDEL', positions_key(rid), eid)
end
redis.call('HINCRBY', counts_key, 'subscriptions', -1)
return {'ok', eid}

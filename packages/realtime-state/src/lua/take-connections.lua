-- take-connections: the caller becomes the owner of the given connections that have no live
-- owner (new ones, or ones whose owner's lease ran out). Per-pod topology: only connections held
-- by the caller's own gateway.
-- ARGV: 1 base, 2 instance, 3 POD_ID, 4 mode ('shared' | 'per-pod'), 5 caller's gateway,
--       6.. pairs request_id, token ('' = whatever token is current)
-- Returns {'lease_lost'} | {'ok', {{request_id, token, gateway, {entity, ...}}, ...}}
--   (connections the caller already owned are returned as well, with their current entities)
--- @include "ownership-common"
local me, pod, mode, my_gateway = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = now_ms()
if not lease_alive(me, now) then return {'lease_lost'} end
local out = {}
for i = 6, #ARGV - 1, 2 do
  local rid, wanted = ARGV[i], ARGV[i + 1]
  local c = redis.call('HMGET', conn_key(rid), 'token', 'gateway')
  if c[1] and (wanted == '' or c[1] == wanted) then
    local owner = redis.call('ZSCORE', owner_key, rid)
    local free = (owner == false) or owner == me or not lease_alive(owner, now)
    if free and mode == 'per-pod' and c[2] ~= my_gateway then free = false end
    if free then table.insert(out, own(rid, c[1], c[2], me, pod)) end
  end
end
return {'ok', out}

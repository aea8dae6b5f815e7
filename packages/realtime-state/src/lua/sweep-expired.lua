-- sweep-expired: removes up to ARGV[2] connections whose binding has expired (Redis clock),
-- oldest first. Atomic, so any pod may run it at any time with no lock: each expired connection
-- is returned to exactly one caller, which closes it at its gateway.
-- ARGV: 1 base, 2 limit
-- Returns a flat list: request_id, token, gateway, request_id, token, gateway, ...
--- @include "common"
local due = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, rid in ipairs(due) do
  local c = redis.call('HMGET', conn_key(rid), 'token', 'gateway')
  if c[1] then
    remove_connection(rid, c[1])
    table.insert(out, rid)
    table.insert(out, c[1])
    table.insert(out, c[2] or '')
  else
    for i = 3, #KEYS do redis.call('ZREM', KEYS[i], rid) end -- index entry without a connection
  end
end
return out

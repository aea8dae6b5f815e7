-- expire-binding: ends the connection of request_id if its binding has expired (the token's exp,
-- Redis clock). Only the first caller gets the token back, so exactly one pod closes the stream
-- at the gateway ("whichever pod notices first").
-- ARGV: 1 base, 2 request_id
-- Returns {'expired', token, gateway, subscriptions_dropped} | {'valid'} | {'unknown'}
--- @include "common"
local rid = ARGV[2]
local c = redis.call('HMGET', conn_key(rid), 'token', 'gateway', 'binding_expires_at')
local token, gateway, expires_at = c[1], c[2], tonumber(c[3] or '0')
if not token then return {'unknown'} end
if not expires_at or expires_at == 0 or now_ms() < expires_at then return {'valid'} end
local dropped = remove_connection(rid, token)
return {'expired', token, gateway or '', dropped}

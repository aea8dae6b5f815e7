-- gateway-gone: the gateway answered 404 TOKEN_NOT_FOUND for (request_id, token), to a send, a
-- probe or a close: the stream is gone, clean up exactly like a disconnect. Ignored when the
-- request_id has since got another token (a 404 for the replaced stream must not end the new one).
-- ARGV: 1 base, 2 request_id, 3 token
-- Returns {'removed', subscriptions_dropped} | {'ignored'}
--- @include "common"
local rid, token = ARGV[2], ARGV[3]
if redis.call('HGET', conn_key(rid), 'token') ~= token then return {'ignored'} end
local dropped = remove_connection(rid, token)
return {'removed', dropped}

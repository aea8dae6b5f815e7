-- mark-seen: the gateway confirmed (request_id, token) is alive (a probe or send answered 2xx).
-- Pushes the connection's liveness deadline forward; a replaced token confirms nothing.
-- ARGV: 1 base, 2 request_id, 3 token
-- Returns 1 when recorded, 0 when the token is not the request_id's current one.
--- @include "common"
local rid, token = ARGV[2], ARGV[3]
if redis.call('HGET', conn_key(rid), 'token') ~= token then return 0 end
local now = now_ms()
redis.call('HSET', conn_key(rid), 'last_seen_at', now)
redis.call('ZADD', seen_key, now, rid)
return 1

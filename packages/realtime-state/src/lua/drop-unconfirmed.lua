-- drop-unconfirmed: removes (request_id, token) if the gateway has not confirmed it since
-- ARGV[4] (epoch ms). Used by the liveness sweep after a probe could not reach the gateway:
-- state nobody can reach must not live forever. A confirmation that raced in wins.
-- ARGV: 1 base, 2 request_id, 3 token, 4 confirmed_before (ms)
-- Returns {'removed', subscriptions_dropped} | {'ignored'}
--- @include "common"
local rid, token = ARGV[2], ARGV[3]
local c = redis.call('HMGET', conn_key(rid), 'token', 'last_seen_at')
if c[1] ~= token then return {'ignored'} end
if tonumber(c[2] or '0') >= tonumber(ARGV[4]) then return {'ignored'} end
local dropped = remove_connection(rid, token)
return {'removed', dropped}

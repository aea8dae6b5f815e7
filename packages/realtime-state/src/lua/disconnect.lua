-- disconnect: the gateway's disconnect callback for `token`. Removes the connection, its
-- binding and all its subscriptions; ignored when the token is not a request_id's current one
-- (a stale disconnect after a replacement, or a repeated callback).
-- ARGV: 1 base, 2 token
-- Returns {'removed', request_id, subscriptions_dropped} | {'ignored'}
--- @include "common"
local token = ARGV[2]
local rid = redis.call('HGET', tokens_key, token)
if not rid then return {'ignored'} end
if redis.call('HGET', conn_key(rid), 'token') ~= token then
  redis.call('HDEL', tokens_key, token) -- cannot happen with these scripts; keep the index exact
  return {'ignored'}
end
local dropped = remove_connection(rid, token)
return {'removed', rid, dropped}

-- connect: registers (or replaces) the connection of a request_id, atomically.
-- ARGV: 1 base, 2 request_id, 3 token, 4 url, 5 subject, 6 binding_expires_at (the token's exp,
--       ms, 0 = never), 7 received_by (pod), 8 gateway (URL)
-- Returns {outcome, old_token, old_gateway, subscriptions}
--   outcome 'connected' | 'refreshed' (same token again) | 'replaced'
--   old_token / old_gateway: the replaced connection to close at its gateway ('' when none)
--   subscriptions: 'kept' (same subject, carried over) | 'dropped' (other subject) | ''
--- @include "common"
local rid, token, subject = ARGV[2], ARGV[3], ARGV[5]
local binding_expires_at = tonumber(ARGV[6])
local now = now_ms()
local ckey = conn_key(rid)

-- A token belongs to one connection: if it is somehow recorded for another request_id, that
-- record is stale (tokens are the gateway's UUIDs); drop it so both directions stay exact.
local holder = redis.call('HGET', tokens_key, token)
if holder and holder ~= rid then
  remove_connection(holder, token)
end

local old = redis.call('HMGET', ckey, 'token', 'subject', 'gateway')
local old_token, old_subject, old_gateway = old[1], old[2], old[3]
local outcome, carried = 'connected', ''
if old_token and old_token == token then
  outcome = 'refreshed'
elseif old_token then
  outcome = 'replaced'
  redis.call('HDEL', tokens_key, old_token)
  if old_subject == subject then
    carried = 'kept'
  else
    drop_subscriptions(rid)
    carried = 'dropped'
  end
  -- The old connection's per-connection index entries (ownership, ...) do not carry over.
  for i = 5, #KEYS do redis.call('ZREM', KEYS[i], rid) end
  redis.call('DEL', ckey)
else
  -- No live connection: leftovers of a removed one cannot exist, but never inherit them.
  drop_subscriptions(rid)
end

redis.call('HSET', ckey,
  'token', token, 'url', ARGV[4], 'subject', subject, 'binding_expires_at', ARGV[6],
  'connected_at', now, 'received_by', ARGV[7], 'gateway', ARGV[8], 'last_seen_at', now)
redis.call('HSET', tokens_key, token, rid)
if binding_expires_at > 0 then
  redis.call('ZADD', expiry_key, binding_expires_at, rid)
else
  redis.call('ZREM', expiry_key, rid)
end
redis.call('ZADD', seen_key, now, rid)

if outcome == 'replaced' then
  return {outcome, old_token, old_gateway or '', carried}
end
return {outcome, '', '', carried}

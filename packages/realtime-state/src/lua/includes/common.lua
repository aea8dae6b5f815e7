-- Shared by every registry script (inlined where a script says `--- @include "common"`).
-- Calling convention of ALL registry scripts:
--   KEYS[1] tokens hash, KEYS[2] counts hash, KEYS[3] binding-expiry zset, KEYS[4] last-seen zset,
--   KEYS[5..] further per-connection indexes (ownership) a removal must clean;
--   ARGV[1] the key base `<prefix>:{rt}`. Per-connection and per-entity keys are built from it
--   here: they share the {rt} hash tag, so they live in the same Cluster slot as KEYS[1].
local base = ARGV[1]
local tokens_key = KEYS[1]
local counts_key = KEYS[2]
local expiry_key = KEYS[3]
local seen_key = KEYS[4]

local function conn_key(rid) return base .. ':conn:' .. rid end
local function devices_key(rid) return base .. ':conn:' .. rid .. ':devices' end
local function watchers_key(eid) return base .. ':watchers:' .. eid end
-- HASH entity_id -> stream cursor: where the connection's delivery of each entity stands (the
-- start a subscribe asked for, then the owner's checkpoints). Only for entities it watches.
local function positions_key(rid) return base .. ':pos:' .. rid end

-- Redis server time in epoch ms: one clock for the whole fleet.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Does any device of this connection, other than `except_device`, map to `eid`?
local function still_watches(rid, eid, except_device)
  local flat = redis.call('HGETALL', devices_key(rid))
  for i = 1, #flat, 2 do
    if flat[i] ~= except_device and flat[i + 1] == eid then return true end
  end
  return false
end

-- Drops every subscription of `rid` (both directions and the counter). Returns how many.
local function drop_subscriptions(rid)
  local entities = redis.call('HVALS', devices_key(rid))
  for _, eid in ipairs(entities) do
    redis.call('SREM', watchers_key(eid), rid)
  end
  redis.call('DEL', devices_key(rid), positions_key(rid))
  if #entities > 0 then
    redis.call('HINCRBY', counts_key, 'subscriptions', -#entities)
  end
  return #entities
end

-- Removes the connection `rid` entirely: hash, subscriptions, its token, every index.
-- The caller has checked that `token` is the connection's current token.
local function remove_connection(rid, token)
  local dropped = drop_subscriptions(rid)
  redis.call('DEL', conn_key(rid))
  if token then redis.call('HDEL', tokens_key, token) end
  for i = 3, #KEYS do
    redis.call('ZREM', KEYS[i], rid)
  end
  return dropped
end

-- Subscription precondition shared by subscribe and unsubscribe. Returns nil when the caller
-- may act on the connection, else the registry error code.
--   caller '' = no caller identity (OIDC off): any bound connection is accepted.
local function check_binding(rid, caller, now)
  local c = redis.call('HMGET', conn_key(rid), 'subject', 'binding_expires_at')
  local subject, expires_at = c[1], tonumber(c[2] or '0')
  if not subject or subject == '' then return 'NO_IDENTITY_BINDING' end
  if caller ~= '' and caller ~= subject then return 'IDENTITY_MISMATCH' end
  if expires_at and expires_at > 0 and now >= expires_at then return 'BINDING_EXPIRED' end
  return nil
end

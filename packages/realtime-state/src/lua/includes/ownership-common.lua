-- Shared by the ownership scripts (inlined where a script says `--- @include "ownership-common"`).
-- Calling convention of every ownership script:
--   KEYS[1] pods zset (instance -> lease deadline ms), KEYS[2] idx:owner zset (request_id ->
--   instance), KEYS[3] pod-seq counter, KEYS[4] pod-info hash, KEYS[5] idx:last-seen zset;
--   ARGV[1] the key base `<prefix>:{rt}` (per-connection keys are built from it, same slot).
local pods_key, owner_key, seq_key, info_key, seen_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local base = ARGV[1]

local function conn_key(rid) return base .. ':conn:' .. rid end
local function devices_key(rid) return base .. ':conn:' .. rid .. ':devices' end
local function positions_key(rid) return base .. ':pos:' .. rid end
local function watchers_key(eid) return base .. ':watchers:' .. eid end
local generation_key = base .. ':generation'

-- Redis server time in epoch ms: leases are judged by one clock for the whole fleet.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Is the instance's lease still running? A lease that ran out is dead even before anyone took
-- its connections: its holder has stopped sending by then (it fences on its own clock).
local function lease_alive(instance, now)
  local deadline = redis.call('ZSCORE', pods_key, instance)
  return deadline ~= false and tonumber(deadline) >= now
end

-- Makes `me` the owner of rid; returns what the new owner needs:
-- {rid, token, gateway, {entity, ...}, {entity, cursor, ...}} (the last: where delivery stands).
local function own(rid, token, gateway, me, pod)
  redis.call('ZADD', owner_key, me, rid)
  redis.call('HSET', conn_key(rid), 'owner', me, 'owner_pod', pod)
  return {rid, token, gateway or '', redis.call('HVALS', devices_key(rid)), redis.call('HGETALL', positions_key(rid))}
end

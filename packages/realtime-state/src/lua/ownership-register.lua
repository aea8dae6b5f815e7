-- ownership-register: a new api process gets an instance number (never reused) and its first lease.
-- ARGV: 1 base, 2 lease ms, 3 POD_ID, 4 its SSE_GATEWAY_URL, 5 candidate generation
-- Returns {instance, lease_deadline_ms, generation}
-- generation: a random name the registry gets with its first instance (ARGV 5 is the candidate).
-- Every pod remembers it; a renewal that finds another one (or none) means the registry's data
-- was lost (Redis flushed, restarted empty, failed over to an empty replica).
--- @include "ownership-common"
local now = now_ms()
-- A registry that lost its data starts its numbers past the clock (epoch ms), so an instance of
-- the old registry that has not noticed yet never shares a number with a new one.
if redis.call('EXISTS', seq_key) == 0 then redis.call('SET', seq_key, now) end
local instance = redis.call('INCR', seq_key)
local deadline = now + tonumber(ARGV[2])
redis.call('ZADD', pods_key, deadline, instance)
redis.call('HSET', info_key, instance, cjson.encode({pod = ARGV[3], gateway = ARGV[4], started_at = now}))
redis.call('SET', generation_key, ARGV[5], 'NX')
return {instance, deadline, redis.call('GET', generation_key)}

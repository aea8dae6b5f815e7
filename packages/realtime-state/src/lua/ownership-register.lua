-- ownership-register: a new api process gets an instance number (never reused) and its first lease.
-- ARGV: 1 base, 2 lease ms, 3 POD_ID, 4 its SSE_GATEWAY_URL
-- Returns {instance, lease_deadline_ms}
--- @include "ownership-common"
local now = now_ms()
local instance = redis.call('INCR', seq_key)
local deadline = now + tonumber(ARGV[2])
redis.call('ZADD', pods_key, deadline, instance)
redis.call('HSET', info_key, instance, cjson.encode({pod = ARGV[3], gateway = ARGV[4], started_at = now}))
return {instance, deadline}

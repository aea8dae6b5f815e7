-- ownership-release: a draining process ends its lease now, so live pods take its connections
-- over at their next pass instead of waiting for it to run out. The caller stopped sending first,
-- which `released_at` in its pod-info tells the takers (they need not wait out a grace period).
-- ARGV: 1 base, 2 instance
-- Returns 1 when released, 0 when the lease was already gone.
--- @include "ownership-common"
local changed = redis.call('ZADD', pods_key, 'XX', 'CH', 0, ARGV[2])
local info = redis.call('HGET', info_key, ARGV[2])
if info then
  local decoded = cjson.decode(info)
  decoded.released_at = now_ms()
  redis.call('HSET', info_key, ARGV[2], cjson.encode(decoded))
end
return changed

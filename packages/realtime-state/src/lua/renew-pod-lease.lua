-- renew-pod-lease: the owner extends its lease. A lease that has run out is never revived (a
-- live pod may be taking its connections over right now): the caller must re-register.
-- ARGV: 1 base, 2 instance, 3 lease ms
-- Returns 1 when renewed, 0 when the lease is lost.
--- @include "ownership-common"
local now = now_ms()
if not lease_alive(ARGV[2], now) then return 0 end
redis.call('ZADD', pods_key, 'XX', now + tonumber(ARGV[3]), ARGV[2])
return 1

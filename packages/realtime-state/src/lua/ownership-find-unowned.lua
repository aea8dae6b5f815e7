-- ownership-find-unowned: the safety net for connections nobody took (their receiving pod died
-- between the connect and its claim, or their owner's lease entry vanished with lost data). Walks idx:last-seen by rank, a page per call.
-- ARGV: 1 base, 2 start rank, 3 page size, 4 minimum age ms (younger ones are their receiver's)
-- Returns {next_rank (0 at the end), {request_id, ...}}
--- @include "ownership-common"
local start, count, min_age = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local page = redis.call('ZRANGE', seen_key, start, start + count - 1)
local out = {}
for _, rid in ipairs(page) do
  local owner = redis.call('ZSCORE', owner_key, rid)
  -- An owner without a lease entry (Redis lost it) is never found by take-over-dead: unowned too.
  if owner == false or redis.call('ZSCORE', pods_key, owner) == false then
    local connected_at = tonumber(redis.call('HGET', conn_key(rid), 'connected_at') or now)
    if now - connected_at >= min_age then table.insert(out, rid) end
  end
end
if #page < count then return {0, out} end
return {start + count, out}

-- Appends one stored batch of a device's lines to its stream and publishes it, atomically.
-- KEYS: 1 head, 2 stream, 3 batches (all of one device: one hash tag)
-- ARGV: 1 candidate epoch, 2 batch_id, 3 max lines, 4 max age ms, 5 batch ids remembered,
--       6 head ttl ms, 7 channel, 8 and 9 the channel message's text before and after its docs
--       (contracts' logChannelMessageFrame, no position yet), 10.. line id, doc JSON, line id, ...
-- Returns {'appended', epoch, ms, first offset, last offset, epoch created 0|1}
--      or {'duplicate', epoch, ms, last offset of the device, 0} when batch_id is already in.
local head_key, stream_key, batches_key = KEYS[1], KEYS[2], KEYS[3]
local max_lines, max_age_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local remembered, head_ttl_ms = tonumber(ARGV[5]), tonumber(ARGV[6])

local epoch, last_ms, last_offset, created = ensure_head(head_key, stream_key, batches_key, ARGV[1], head_ttl_ms)
if redis.call('ZSCORE', batches_key, ARGV[2]) then
  return {'duplicate', epoch, last_ms, last_offset, created}
end

local now = now_ms()
local ms = math.max(now, last_ms)
local offset = last_offset
local docs = {}
for i = 10, #ARGV, 2 do
  offset = offset + 1
  redis.call('XADD', stream_key, string.format('%d-%d', ms, offset), 'id', ARGV[i], 'doc', ARGV[i + 1])
  docs[#docs + 1] = ARGV[i + 1]
end
local first = last_offset + 1

redis.call('HSET', head_key, 'ms', string.format('%d', ms), 'offset', string.format('%d', offset))
redis.call('PEXPIRE', head_key, head_ttl_ms)
redis.call('XTRIM', stream_key, 'MAXLEN', max_lines)
redis.call('XTRIM', stream_key, 'MINID', string.format('%d', math.max(0, now - max_age_ms)))
-- Everything in the stream is older than max age once it expires: expiry = trimming an idle device.
redis.call('PEXPIRE', stream_key, max_age_ms)
redis.call('ZADD', batches_key, string.format('%d', offset), ARGV[2])
redis.call('ZREMRANGEBYRANK', batches_key, 0, -(remembered + 1))
redis.call('PEXPIRE', batches_key, head_ttl_ms)

-- The contract's message (log-channel.ts: frame, docs joined by commas), with the position
-- fields in place of its closing brace.
local after_docs = ARGV[9]
redis.call('PUBLISH', ARGV[7], ARGV[8] .. table.concat(docs, ',') .. string.sub(after_docs, 1, -2) ..
  string.format(',"epoch":"%s","stream_ms":%d,"first_offset":%d}', epoch, ms, first))
return {'appended', epoch, ms, first, offset, created}

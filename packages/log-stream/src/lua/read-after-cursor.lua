-- The lines of a device's stream after a cursor, or why they cannot be had.
-- KEYS: 1 head, 2 stream, 3 batches
-- ARGV: 1 candidate epoch, 2 head ttl ms, 3 cursor epoch ('' for none), 4 cursor ms,
--       5 cursor offset, 6 most lines to return
-- Returns {status, epoch, ms, offset, entries}: the head's position, and with status 'ok' the
-- entries (XRANGE format) right after the cursor, at most ARGV[6]; statuses 'epoch_changed',
-- 'trimmed' (the line after the cursor is no longer held) and 'ahead' (a cursor past the head)
-- come without entries. Reading creates the epoch when the device has none (a new history).
local head_key, stream_key, batches_key = KEYS[1], KEYS[2], KEYS[3]
local epoch, ms, offset = ensure_head(head_key, stream_key, batches_key, ARGV[1], tonumber(ARGV[2]))
local function answer(status, entries)
  return {status, epoch, string.format('%d', ms), string.format('%d', offset), entries}
end
if ARGV[3] ~= epoch then return answer('epoch_changed', {}) end
local after_offset = tonumber(ARGV[5])
if after_offset > offset then return answer('ahead', {}) end
if after_offset == offset then return answer('ok', {}) end
local entries = redis.call('XRANGE', stream_key, '(' .. ARGV[4] .. '-' .. ARGV[5], '+', 'COUNT', tonumber(ARGV[6]))
local first = entries[1]
if not first or tonumber(string.match(first[1], '-(%d+)$')) ~= after_offset + 1 then
  return answer('trimmed', {})
end
return answer('ok', entries)

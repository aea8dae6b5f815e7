-- The device's head hash {epoch, ms, offset}: its epoch and its last line's stream time and offset.
-- A missing head means the history is new or was lost: the head is created with the candidate
-- epoch from the caller, and whatever survived of the old history (a partial loss) is deleted,
-- since its offsets belong to another epoch. Every head write renews the head's expiry.
local function ensure_head(head_key, stream_key, batches_key, candidate_epoch, head_ttl_ms)
  local h = redis.call('HMGET', head_key, 'epoch', 'ms', 'offset')
  if h[1] then
    return h[1], tonumber(h[2]), tonumber(h[3]), 0
  end
  redis.call('DEL', stream_key, batches_key)
  redis.call('HSET', head_key, 'epoch', candidate_epoch, 'ms', '0', 'offset', '0')
  redis.call('PEXPIRE', head_key, head_ttl_ms)
  return candidate_epoch, 0, 0, 1
end

-- Redis server time in epoch ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

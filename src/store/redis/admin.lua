-- riskgate: the admin calls (Store::profile, forget, trust_device,
-- revoke_device). Every function touches only keys of one user's hash tag
-- {u:<user>}, so each is one script on a single node and on a cluster
-- alike.
--
-- Profile hash fields added by these calls: `tr:<device>` trusted at (ms),
-- `rv:<device>` revoked at (ms). A user's recent decisions are the
-- pending decisions recorded with their answer (the store's background
-- writer writes both as one record, see `store::redis::observe`); earlier
-- versions kept them in a list ("<at>|<action>|<score>|<codes>|<decision
-- id>", oldest first), still shown and erased until it expires.
--
-- Helpers come from common.lua.

-- The profile hash, the pending decisions and an earlier version's recent
-- decisions.
local function adm_profile(kprof, kpend, krecent)
  return {redis.call('HGETALL', kprof), redis.call('HGETALL', kpend),
    redis.call('LRANGE', krecent, -RECENT, -1)}
end

-- Erases every key of the user: failures, profile, pending decisions (one
-- hash), recent decisions, and failures kept in the earlier velocity layout
-- (`klegacy`). Returns the counts of Forgotten in field order.
local function adm_forget(kv, kprof, kpend, krecent, klegacy)
  local p = load_hash(kprof)
  local out = {tonumber(p['v'] or '0'), 0, 0, 0, 0, 0, 0}
  for f, _ in pairs(p) do
    if string.match(f, '^d%d+:') then
      out[2] = out[2] + 1
    elseif string.sub(f, 1, 3) == 'tr:' then
      out[3] = out[3] + 1
    elseif string.sub(f, 1, 3) == 'rv:' then
      out[4] = out[4] + 1
    end
  end
  -- Recorded decisions: pending records that carry their answer.
  for _, r in ipairs(redis.call('HVALS', kpend)) do
    out[5] = out[5] + 1
    local _, bars = string.gsub(r, '|', '|')
    if bars >= ANSWERED_BARS then out[6] = out[6] + 1 end
  end
  out[6] = out[6] + math.min(redis.call('LLEN', krecent), RECENT)
  out[7] = math.min(redis.call('EXISTS', kv, klegacy), 1)
  redis.call('DEL', kv, kprof, kpend, krecent, klegacy)
  return out
end

-- Remembers device `f` (count 1 if new, evicting the least recently seen
-- device at the cap). Returns 1 if it was remembered already.
local function remember_device(kprof, f, now, cap)
  local t = math.floor(math.max(now, 0) / 1000)
  local df, tf = 'd0:' .. f, 't0:' .. f
  if redis.call('HEXISTS', kprof, df) == 1 then
    local last = tonumber(redis.call('HGET', kprof, tf) or '0')
    if t > last then redis.call('HSET', kprof, tf, num(t)) end
    return 1
  end
  local n = tonumber(redis.call('HGET', kprof, 'n0') or '0')
  if n >= cap then
    local oldest, oldest_t = nil, nil
    for field, v in pairs(load_hash(kprof)) do
      if string.sub(field, 1, 3) == 't0:' then
        local ft = tonumber(v)
        if oldest_t == nil or ft < oldest_t or (ft == oldest_t and field < oldest) then
          oldest, oldest_t = field, ft
        end
      end
    end
    if oldest then
      redis.call('HDEL', kprof, oldest, 'd0:' .. string.sub(oldest, 4))
      n = n - 1
    end
  end
  redis.call('HSET', kprof, df, 1, tf, num(t), 'n0', num(n + 1))
  return 0
end

-- Drops device `f` from the profile. Returns 1 if it was remembered.
local function drop_device(kprof, f)
  if redis.call('HEXISTS', kprof, 'd0:' .. f) == 0 then return 0 end
  redis.call('HDEL', kprof, 'd0:' .. f, 't0:' .. f)
  local n = tonumber(redis.call('HGET', kprof, 'n0') or '0')
  if n > 0 then redis.call('HSET', kprof, 'n0', num(n - 1)) end
  return 1
end

-- Marks device `f` as support decided: `trust` remembers it and lifts a
-- revocation; `revoke` drops it and ends a trust. Returns 1 if it was
-- remembered before.
local function adm_mark(kprof, mode, f, now, cap, pttl)
  local known, set, clear
  if mode == 'trust' then
    known, set, clear = remember_device(kprof, f, now, cap), 'tr:', 'rv:'
  else
    known, set, clear = drop_device(kprof, f), 'rv:', 'tr:'
  end
  redis.call('HDEL', kprof, clear .. f)
  redis.call('HSET', kprof, set .. f, num(now))
  redis.call('PEXPIRE', kprof, pttl)
  return known
end

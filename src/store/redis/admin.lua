-- riskgate: the admin reads and erasure (Store::profile, forget). Every
-- function touches only keys of one user's hash tag {u:<user>}, so each is
-- one script on a single node and on a cluster alike. (Support's device
-- marks change the profile like a report does: read, changed by the
-- replica, written by `write_profile.lua`.) A user's recent decisions are the
-- pending decisions recorded with their answer (the store's background
-- writer writes both as one record, see `store::redis::observe`); earlier
-- versions kept them in a list ("<at>|<action>|<score>|<codes>|<decision
-- id>", oldest first), still shown and erased until it expires.
--
-- Helpers come from common.lua.

-- The profile as stored: the string (`store::profile::Profile` encoded), or
-- an earlier version's hash as a flat list; false for none.
local function profile_of(kprof)
  if redis.call('TYPE', kprof)['ok'] == 'hash' then
    return redis.call('HGETALL', kprof)
  end
  return redis.call('GET', kprof)
end

-- The profile, the pending decisions and an earlier version's recent
-- decisions.
local function adm_profile(kprof, kpend, krecent)
  return {profile_of(kprof), redis.call('HGETALL', kpend),
    redis.call('LRANGE', krecent, -RECENT, -1)}
end

-- Erases every key of the user: failures, profile, pending decisions (one
-- hash), recent decisions, and failures kept in the earlier velocity layout
-- (`klegacy`). `now` (ms): pending decisions expired by then are erased but
-- not counted, as the memory store has dropped them. Returns the counts of
-- Forgotten in field order, then the
-- profile string it erased (the replica counts its part of Forgotten from
-- it) or false; an earlier version's hash is counted here.
local function adm_forget(kv, kprof, kpend, krecent, klegacy, now)
  local out = {0, 0, 0, 0, 0, 0, 0, false}
  if redis.call('TYPE', kprof)['ok'] == 'hash' then
    local p = load_hash(kprof)
    out[1] = tonumber(p['v'] or '0')
    for f, _ in pairs(p) do
      if string.match(f, '^d%d+:') then
        out[2] = out[2] + 1
      elseif string.sub(f, 1, 3) == 'tr:' then
        out[3] = out[3] + 1
      elseif string.sub(f, 1, 3) == 'rv:' then
        out[4] = out[4] + 1
      end
    end
  else
    out[8] = redis.call('GET', kprof)
  end
  -- Recorded decisions: pending records that carry their answer.
  for _, r in ipairs(redis.call('HVALS', kpend)) do
    local expires = tonumber(string.match(r, '^%d|(%-?%d+)|') or '0')
    if expires >= now then
      out[5] = out[5] + 1
      local _, bars = string.gsub(r, '|', '|')
      if bars >= ANSWERED_BARS then out[6] = out[6] + 1 end
    end
  end
  out[6] = out[6] + math.min(redis.call('LLEN', krecent), RECENT)
  out[7] = math.min(redis.call('EXISTS', kv, klegacy), 1)
  redis.call('DEL', kv, kprof, kpend, krecent, klegacy)
  return out
end

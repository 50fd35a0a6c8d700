-- riskgate: Store::report on the user's slot. `store::redis` runs it as
-- one EVALSHA; on a single node the same script also reads the global
-- counts of the facts it taught or untaught (one MGET), on a cluster a
-- second request does. The change of the global counts is merged by the
-- replica (`merge.lua`), not written here.
--
-- ARGV (the same for every composition): 1 teaches (0/1), 2 fraud (0/1),
--   3 step-up failed (0/1), 4 strong factor passed (0/1), 5 report at (ms),
--   6 history cap per dimension, 7 profile ttl (ms), 8 counter ttl (ms),
--   9 decision (hex).
--
-- Helpers come from common.lua.

local now = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local pttl = ARGV[7]

-- Forgets the least recently seen value of dimension `i` (the profile is at
-- its cap there). Rare: reads the whole profile.
local function evict_oldest(kprof, i)
  local lp = 't' .. i .. ':'
  local oldest, oldest_t = nil, nil
  for f, v in pairs(load_hash(kprof)) do
    if string.sub(f, 1, #lp) == lp then
      local ft = tonumber(v)
      if oldest_t == nil or ft < oldest_t or (ft == oldest_t and f < oldest) then
        oldest, oldest_t = f, ft
      end
    end
  end
  if oldest then
    redis.call('HDEL', kprof, oldest, 'd' .. i .. ':' .. string.sub(oldest, #lp + 1))
    return 1
  end
  return 0
end

-- Tag {u:<user>}: teaches or unteaches the profile from the pending
-- decision (a field of `kpend`: "<taught>|<expires ms>|<at>|<hour>|<place>|
-- <fact 0>|…|<fact NFACTS - 1>", written by observe). Reads the fields it
-- needs with one HMGET and writes them with one HSET. Returns {effect,
-- mode, new user, fact 0..NFACTS - 1}: effect -1 unknown (or expired) decision, 1
-- profile changed, 0 nothing; mode 1 taught, -1 untaught, 0.
local function rep_user(kv, kprof, kpend)
  local raw = redis.call('HGET', kpend, ARGV[9])
  if not raw then return {-1, 0, 0} end
  local p = split(raw)
  if tonumber(p[2]) < now then return {-1, 0, 0} end
  if ARGV[3] == '1' then count_event(kv, 'f', now, ARGV[8]) end
  local taught, at, hr, place = p[1] == '1', tonumber(p[3]), p[4], p[5]
  local facts = {}
  for i = 0, NFACTS - 1 do facts[i + 1] = p[6 + i] or '' end
  local function mark(t)
    p[1] = t
    redis.call('HSET', kpend, ARGV[9], table.concat(p, '|'))
  end
  local function result(effect, mode, new_user)
    local out = {effect, mode, new_user}
    for i = 1, NFACTS do out[3 + i] = facts[i] end
    return out
  end

  -- The profile fields a report reads: verified, last login, the hour's
  -- count, and per fact its dimension's distinct count, its count and (when
  -- teaching) its last seen.
  local function fields(teaching)
    local out = {'v', 'la', 'h' .. hr}
    for i = 0, NFACTS - 1 do
      local f = facts[i + 1]
      if f ~= '' then
        out[#out + 1] = 'n' .. i
        out[#out + 1] = 'd' .. i .. ':' .. f
        if teaching then out[#out + 1] = 't' .. i .. ':' .. f end
      end
    end
    return out
  end

  if ARGV[1] == '1' and not taught then
    local v = redis.call('HMGET', kprof, unpack(fields(true)))
    local verified = tonumber(v[1] or '0')
    local set = {'v', num(verified + 1), 'h' .. hr, num(tonumber(v[3] or '0') + 1)}
    local t = math.floor(math.max(at, 0) / 1000)
    local j = 4
    for i = 0, NFACTS - 1 do
      local f = facts[i + 1]
      if f ~= '' then
        local n, d, last = tonumber(v[j] or '0'), v[j + 1], tonumber(v[j + 2] or '0')
        j = j + 3
        local df, tf = 'd' .. i .. ':' .. f, 't' .. i .. ':' .. f
        if d then
          set[#set + 1] = df
          set[#set + 1] = num(tonumber(d) + 1)
          if t > last then
            set[#set + 1] = tf
            set[#set + 1] = num(t)
          end
        else
          if n >= cap then n = n - evict_oldest(kprof, i) end
          set[#set + 1] = df
          set[#set + 1] = '1'
          set[#set + 1] = tf
          set[#set + 1] = num(t)
          set[#set + 1] = 'n' .. i
          set[#set + 1] = num(n + 1)
        end
      end
    end
    local la = v[2]
    local drop_place = false
    if not la or tonumber(la) <= at then
      set[#set + 1] = 'la'
      set[#set + 1] = p[3]
      if place ~= '' then
        set[#set + 1] = 'lp'
        set[#set + 1] = place
      else
        drop_place = true
      end
    end
    if ARGV[4] == '1' then
      set[#set + 1] = 'sa'
      set[#set + 1] = num(math.max(now, at))
    end
    redis.call('HSET', kprof, unpack(set))
    if drop_place then redis.call('HDEL', kprof, 'lp') end
    redis.call('PEXPIRE', kprof, pttl)
    mark('1')
    return result(1, 1, verified == 0 and 1 or 0)
  elseif ARGV[2] == '1' and taught then
    if redis.call('EXISTS', kprof) == 1 then
      local v = redis.call('HMGET', kprof, unpack(fields(false)))
      local set, del = {}, {}
      local verified = tonumber(v[1] or '0')
      if verified > 0 then
        set[#set + 1] = 'v'
        set[#set + 1] = num(verified - 1)
      end
      local j = 4
      for i = 0, NFACTS - 1 do
        local f = facts[i + 1]
        if f ~= '' then
          local n, c = tonumber(v[j] or '0'), v[j + 1]
          j = j + 2
          if c then
            c = tonumber(c) - 1
            if c <= 0 then
              del[#del + 1] = 'd' .. i .. ':' .. f
              del[#del + 1] = 't' .. i .. ':' .. f
              if n > 0 then
                set[#set + 1] = 'n' .. i
                set[#set + 1] = num(n - 1)
              end
            else
              set[#set + 1] = 'd' .. i .. ':' .. f
              set[#set + 1] = num(c)
            end
          end
        end
      end
      local hc = v[3]
      if hc then
        if tonumber(hc) <= 1 then
          del[#del + 1] = 'h' .. hr
        else
          set[#set + 1] = 'h' .. hr
          set[#set + 1] = num(tonumber(hc) - 1)
        end
      end
      if v[2] == p[3] then
        -- The fraudulent login must not anchor impossible travel.
        del[#del + 1] = 'la'
        del[#del + 1] = 'lp'
      end
      if #set > 0 then redis.call('HSET', kprof, unpack(set)) end
      if #del > 0 then redis.call('HDEL', kprof, unpack(del)) end
    end
    mark('0')
    return result(1, -1, 0)
  end
  return result(0, 0, 0)
end

-- riskgate: Store::report on the user's slot. `store::redis` runs it as
-- one EVALSHA, on a single node and on a cluster alike. It neither reads
-- nor writes the deployment-wide counts: whether a taught value is new
-- there was read by the decision's observe, and the change is merged by
-- the replica (`merge.lua`).
--
-- ARGV: 1 teaches (0/1), 2 fraud (0/1),
--   3 step-up failed (0/1), 4 strong factor passed (0/1), 5 report at (ms),
--   6 history cap per dimension, 7 profile ttl (ms), 8 counter ttl (ms),
--   9 decision (hex), 10 the decision's record if this replica's background
--   writer may not have written it yet (else empty), 11 decision ttl (ms).
--
-- Helpers come from common.lua.

-- A pending decision as the store writes it: taught, expires, at, hour,
-- place, the NFACTS facts, then (unread here) its answer. Records of an
-- earlier version have no answer and may have fewer facts: those are read
-- field by field.
local PENDING = '^(%d)|(%-?%d+)|(%-?%d+)|(%d*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|'

local now = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local pttl = ARGV[7]

-- Forgets the least recently seen value of the dimension of slot `k`
-- (from 1; the profile is at its cap there). Rare: reads the whole profile.
local function evict_oldest(kprof, k)
  local lp = TP[k]
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
    redis.call('HDEL', kprof, oldest, DP[k] .. string.sub(oldest, #lp + 1))
    return 1
  end
  return 0
end

-- Tag {u:<user>}: teaches or unteaches the profile from the pending
-- decision (a field of `kpend`: "<taught>|<expires ms>|<at>|<hour>|<place>|
-- <fact 0>|…|<fact NFACTS - 1>|<answer>", written with the decision's answer
-- by the replica's background writer, or here from ARGV[10]). Reads the fields it
-- needs with one HMGET and writes them with one HSET. Returns {effect,
-- mode, new user, fact 0..NFACTS - 1}: effect -1 unknown (or expired) decision, 1
-- profile changed, 0 nothing; mode 1 taught, -1 untaught, 0.
--
-- Field names are built from the literal prefixes (DP, TP, NP) and counts
-- stepped as text (`inc`): number formatting is most of a script's cost.
local function rep_user(kv, kprof, kpend)
  local raw = redis.call('HGET', kpend, ARGV[9])
  if not raw and ARGV[10] ~= '' then
    -- Answered by this replica, still queued for its writer: written here
    -- (the writer's HSETNX then leaves it, taught mark included).
    raw = ARGV[10]
    redis.call('HSET', kpend, ARGV[9], raw)
    redis.call('PEXPIRE', kpend, ARGV[11])
  end
  if not raw then return {-1, 0, 0} end
  -- One match for the whole record: each Lua string call costs, so it
  -- is not split field by field. m: taught, expires, at, hour, place,
  -- then the facts from m[6].
  local m = {string.match(raw, PENDING)}
  if not m[1] then
    m = {string.match(raw, '^(%d)|(%-?%d+)|(%-?%d+)|(%d*)|([^|]*)|(.*)$')}
    if not m[1] then return {-1, 0, 0} end
    local rest = m[6]
    local k = 6
    for f in string.gmatch(rest .. '|', '([^|]*)|') do
      m[k] = f
      k = k + 1
    end
  end
  for k = 6, 5 + NFACTS do m[k] = m[k] or '' end
  if tonumber(m[2]) < now then return {-1, 0, 0} end
  if ARGV[3] == '1' then count_event(kv, 'f', now, ARGV[8]) end
  local taught, at_s, hr, place = m[1] == '1', m[3], m[4], m[5]
  local at = tonumber(at_s)
  local hf = 'h' .. hr
  local function mark(t)
    redis.call('HSET', kpend, ARGV[9], t .. string.sub(raw, 2))
  end
  local function result(effect, mode, new_user)
    return {effect, mode, new_user, m[6], m[7], m[8], m[9], m[10], m[11], m[12], m[13],
      m[14], m[15], m[16], m[17]}
  end

  -- The profile fields a report reads: verified, last login, the hour's
  -- count, and per fact its dimension's distinct count, its count and (when
  -- teaching) its last seen. `df`, `tf`: each fact's count and last-seen
  -- field names.
  local df, tf = {}, {}
  local function fields(teaching)
    local out, n = {'v', 'la', hf}, 3
    for k = 1, NFACTS do
      local f = m[5 + k]
      if f ~= '' then
        df[k] = DP[k] .. f
        out[n + 1] = NP[k]
        out[n + 2] = df[k]
        n = n + 2
        if teaching then
          n = n + 1
          tf[k] = TP[k] .. f
          out[n] = tf[k]
        end
      end
    end
    return out
  end

  if ARGV[1] == '1' and not taught then
    local v = redis.call('HMGET', kprof, unpack(fields(true)))
    local set = {'v', inc(v[1]), hf, inc(v[3])}
    local t = math.floor(math.max(at, 0) / 1000)
    local ts = num(t)
    local j = 4
    for k = 1, NFACTS do
      if m[5 + k] ~= '' then
        local n, d, last = v[j], v[j + 1], v[j + 2]
        j = j + 3
        if d then
          set[#set + 1] = df[k]
          set[#set + 1] = inc(d)
          if t > tonumber(last or '0') then
            set[#set + 1] = tf[k]
            set[#set + 1] = ts
          end
        else
          if tonumber(n or '0') >= cap then
            n = num(tonumber(n or '0') - evict_oldest(kprof, k))
          end
          set[#set + 1] = df[k]
          set[#set + 1] = '1'
          set[#set + 1] = tf[k]
          set[#set + 1] = ts
          set[#set + 1] = NP[k]
          set[#set + 1] = inc(n)
        end
      end
    end
    local la = v[2]
    if not la or tonumber(la) <= at then
      -- An empty place reads as none: written rather than deleted.
      set[#set + 1] = 'la'
      set[#set + 1] = at_s
      set[#set + 1] = 'lp'
      set[#set + 1] = place
    end
    if ARGV[4] == '1' then
      set[#set + 1] = 'sa'
      set[#set + 1] = at > now and at_s or ARGV[5]
    end
    redis.call('HSET', kprof, unpack(set))
    redis.call('PEXPIRE', kprof, pttl)
    mark('1')
    return result(1, 1, tonumber(v[1] or '0') == 0 and 1 or 0)
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
      for k = 1, NFACTS do
        if m[5 + k] ~= '' then
          local n, c = tonumber(v[j] or '0'), v[j + 1]
          j = j + 2
          if c then
            c = tonumber(c) - 1
            if c <= 0 then
              del[#del + 1] = df[k]
              del[#del + 1] = TP[k] .. m[5 + k]
              if n > 0 then
                set[#set + 1] = NP[k]
                set[#set + 1] = num(n - 1)
              end
            else
              set[#set + 1] = df[k]
              set[#set + 1] = num(c)
            end
          end
        end
      end
      local hc = v[3]
      if hc then
        if tonumber(hc) <= 1 then
          del[#del + 1] = hf
        else
          set[#set + 1] = hf
          set[#set + 1] = num(tonumber(hc) - 1)
        end
      end
      if v[2] == at_s then
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

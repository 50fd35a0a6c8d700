-- riskgate: Store::report, one function per hash tag. `store::redis`
-- composes them: on a single node into one script (one EVALSHA, one round
-- trip); on a cluster, the user's script first and, only when the report
-- teaches or unteaches, the global counts' script with what it returned.
--
-- ARGV (the same for every composition): 1 teaches (0/1), 2 fraud (0/1),
--   3 step-up failed (0/1), 4 strong factor passed (0/1), 5 report at (ms),
--   6 history cap per dimension, 7 profile ttl (ms), 8 counter ttl (ms).
--
-- Helpers (G, num, bucket, load_hash, ring_add, ...) come from
-- redis_common.lua.

local now = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local pttl = ARGV[7]

-- Tag {u:<user>}: teaches or unteaches the profile from the pending
-- decision. Returns {effect, mode, new user, fact 0..10}: effect -1 unknown
-- decision, 1 profile changed, 0 nothing; mode 1 taught, -1 untaught, 0.
local function rep_user(kv, kprof, kpending)
  local p = load_hash(kpending)
  if not p['at'] then return {-1, 0, 0} end
  if ARGV[3] == '1' then
    ring_add(kv, load_hash(kv), 'f', now)
    redis.call('PEXPIRE', kv, ARGV[8])
  end
  local at = tonumber(p['at'])
  local facts = {}
  for i = 0, 10 do facts[i + 1] = p['f' .. i] or '' end

  if ARGV[1] == '1' and p['taught'] ~= '1' then
    local verified = tonumber(redis.call('HGET', kprof, 'v') or '0')
    redis.call('HINCRBY', kprof, 'v', 1)
    local t = math.floor(math.max(at, 0) / 1000)
    for i = 0, 10 do
      local fact = facts[i + 1]
      if fact ~= '' then
        local df = 'd' .. i .. ':' .. fact
        local tf = 't' .. i .. ':' .. fact
        if redis.call('HEXISTS', kprof, df) == 1 then
          redis.call('HINCRBY', kprof, df, 1)
          local last = tonumber(redis.call('HGET', kprof, tf) or '0')
          if t > last then redis.call('HSET', kprof, tf, num(t)) end
        else
          local n = tonumber(redis.call('HGET', kprof, 'n' .. i) or '0')
          if n >= cap then
            -- Forget the least recently seen value of this dimension.
            local all = load_hash(kprof)
            local lp = 't' .. i .. ':'
            local oldest, oldest_t = nil, nil
            for f, v in pairs(all) do
              if string.sub(f, 1, #lp) == lp then
                local ft = tonumber(v)
                if oldest_t == nil or ft < oldest_t or (ft == oldest_t and f < oldest) then
                  oldest, oldest_t = f, ft
                end
              end
            end
            if oldest then
              local value = string.sub(oldest, #lp + 1)
              redis.call('HDEL', kprof, oldest, 'd' .. i .. ':' .. value)
              n = n - 1
            end
          end
          redis.call('HSET', kprof, df, 1, tf, num(t), 'n' .. i, num(n + 1))
        end
      end
    end
    redis.call('HINCRBY', kprof, 'h' .. p['hr'], 1)
    local la = redis.call('HGET', kprof, 'la')
    if not la or tonumber(la) <= at then
      redis.call('HSET', kprof, 'la', p['at'])
      if p['pl'] ~= '' then
        redis.call('HSET', kprof, 'lp', p['pl'])
      else
        redis.call('HDEL', kprof, 'lp')
      end
    end
    if ARGV[4] == '1' then redis.call('HSET', kprof, 'sa', num(math.max(now, at))) end
    redis.call('PEXPIRE', kprof, pttl)
    redis.call('HSET', kpending, 'taught', '1')
    local out = {1, 1, verified == 0 and 1 or 0}
    for i = 1, 11 do out[3 + i] = facts[i] end
    return out
  elseif ARGV[2] == '1' and p['taught'] == '1' then
    if redis.call('EXISTS', kprof) == 1 then
      local v = tonumber(redis.call('HGET', kprof, 'v') or '0')
      if v > 0 then redis.call('HSET', kprof, 'v', num(v - 1)) end
      for i = 0, 10 do
        local fact = facts[i + 1]
        if fact ~= '' then
          local df = 'd' .. i .. ':' .. fact
          local c = redis.call('HGET', kprof, df)
          if c then
            c = tonumber(c) - 1
            if c <= 0 then
              redis.call('HDEL', kprof, df, 't' .. i .. ':' .. fact)
              local n = tonumber(redis.call('HGET', kprof, 'n' .. i) or '0')
              if n > 0 then redis.call('HSET', kprof, 'n' .. i, num(n - 1)) end
            else
              redis.call('HSET', kprof, df, num(c))
            end
          end
        end
      end
      local hf = 'h' .. p['hr']
      local hc = redis.call('HGET', kprof, hf)
      if hc then
        if tonumber(hc) <= 1 then
          redis.call('HDEL', kprof, hf)
        else
          redis.call('HINCRBY', kprof, hf, -1)
        end
      end
      if redis.call('HGET', kprof, 'la') == p['at'] then
        -- The fraudulent login must not anchor impossible travel.
        redis.call('HDEL', kprof, 'la', 'lp')
      end
    end
    redis.call('HSET', kpending, 'taught', '0')
    local out = {1, -1, 0}
    for i = 1, 11 do out[3 + i] = facts[i] end
    return out
  end
  return {0, 0, 0}
end

-- Tag {g}: the global counts a taught (mode 1) or untaught (mode -1) login
-- changes. `kseen(i)` names fact i's global count, `fact(i)` its value.
local function rep_global(kstats, kseen, mode, new_user, fact)
  if mode == 1 then
    if new_user then redis.call('HINCRBY', kstats, 'users', 1) end
    for i = 0, 10 do
      if fact(i) ~= '' then
        local g = kseen(i)
        if redis.call('INCR', g) == 1 then redis.call('HINCRBY', kstats, 'n' .. i, 1) end
        redis.call('PEXPIRE', g, pttl)
      end
    end
    redis.call('HINCRBY', kstats, 'logins', 1)
    redis.call('PEXPIRE', kstats, pttl)
  elseif mode == -1 then
    for i = 0, 10 do
      if fact(i) ~= '' then
        local g = kseen(i)
        local c = redis.call('GET', g)
        if c then
          c = tonumber(c)
          if c > 0 then redis.call('SET', g, num(c - 1), 'KEEPTTL') end
          if c == 1 then
            local n = tonumber(redis.call('HGET', kstats, 'n' .. i) or '0')
            if n > 0 then redis.call('HSET', kstats, 'n' .. i, num(n - 1)) end
          end
        end
      end
    end
    local l = tonumber(redis.call('HGET', kstats, 'logins') or '0')
    if l > 0 then redis.call('HSET', kstats, 'logins', num(l - 1)) end
  end
end

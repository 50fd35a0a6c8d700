-- riskgate: Store::report in one script (one round trip).
--
-- KEYS: 1 decision index (holds the user's hex key).
-- ARGV: 1 key prefix, 2 decision (hex32), 3 teaches (0/1), 4 fraud (0/1),
--       5 step-up failed (0/1), 6 strong factor passed (0/1), 7 report at (ms),
--       8 history cap per dimension, 9 profile ttl (ms), 10 counter ttl (ms).
-- Returns {-1} for an unknown decision, {1} if the profile changed, {0}.
--
-- The profile, pending and global keys are derived from the prefix and the
-- user found in the index: this script needs a single Redis node.

-- Helpers (G, num, bucket, load_hash, ring_add) come from redis_common.lua.

local prefix = ARGV[1]
local user = redis.call('GET', KEYS[1])
if not user then return {-1} end
local ukey = prefix .. ':{u:' .. user .. '}'
local pkey = ukey .. ':p:' .. ARGV[2]
local p = load_hash(pkey)
if not p['at'] then return {-1} end
local now = tonumber(ARGV[7])
local cap = tonumber(ARGV[8])
local pttl = ARGV[9]

if ARGV[5] == '1' then
  local vkey = ukey .. ':v'
  ring_add(vkey, load_hash(vkey), 'f', now)
  redis.call('PEXPIRE', vkey, ARGV[10])
end

local prof = ukey .. ':prof'
local stats = prefix .. ':{g}:stats'
local at = tonumber(p['at'])
local function gkey(i, fact)
  return prefix .. ':{g}:s:' .. i .. ':' .. fact
end

if ARGV[3] == '1' and p['taught'] ~= '1' then
  local verified = tonumber(redis.call('HGET', prof, 'v') or '0')
  if verified == 0 then redis.call('HINCRBY', stats, 'users', 1) end
  redis.call('HINCRBY', prof, 'v', 1)
  local t = math.floor(math.max(at, 0) / 1000)
  for i = 0, 10 do
    local fact = p['f' .. i]
    if fact and fact ~= '' then
      local df = 'd' .. i .. ':' .. fact
      local tf = 't' .. i .. ':' .. fact
      if redis.call('HEXISTS', prof, df) == 1 then
        redis.call('HINCRBY', prof, df, 1)
        local last = tonumber(redis.call('HGET', prof, tf) or '0')
        if t > last then redis.call('HSET', prof, tf, num(t)) end
      else
        local n = tonumber(redis.call('HGET', prof, 'n' .. i) or '0')
        if n >= cap then
          -- Forget the least recently seen value of this dimension.
          local all = load_hash(prof)
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
            redis.call('HDEL', prof, oldest, 'd' .. i .. ':' .. value)
            n = n - 1
          end
        end
        redis.call('HSET', prof, df, 1, tf, num(t), 'n' .. i, num(n + 1))
      end
      local g = gkey(i, fact)
      if redis.call('INCR', g) == 1 then redis.call('HINCRBY', stats, 'n' .. i, 1) end
      redis.call('PEXPIRE', g, pttl)
    end
  end
  redis.call('HINCRBY', prof, 'h' .. p['hr'], 1)
  local la = redis.call('HGET', prof, 'la')
  if not la or tonumber(la) <= at then
    redis.call('HSET', prof, 'la', p['at'])
    if p['pl'] ~= '' then
      redis.call('HSET', prof, 'lp', p['pl'])
    else
      redis.call('HDEL', prof, 'lp')
    end
  end
  if ARGV[6] == '1' then redis.call('HSET', prof, 'sa', num(math.max(now, at))) end
  redis.call('PEXPIRE', prof, pttl)
  redis.call('HINCRBY', stats, 'logins', 1)
  redis.call('PEXPIRE', stats, pttl)
  redis.call('HSET', pkey, 'taught', '1')
  return {1}
elseif ARGV[4] == '1' and p['taught'] == '1' then
  if redis.call('EXISTS', prof) == 1 then
    local v = tonumber(redis.call('HGET', prof, 'v') or '0')
    if v > 0 then redis.call('HSET', prof, 'v', num(v - 1)) end
    for i = 0, 10 do
      local fact = p['f' .. i]
      if fact and fact ~= '' then
        local df = 'd' .. i .. ':' .. fact
        local c = redis.call('HGET', prof, df)
        if c then
          c = tonumber(c) - 1
          if c <= 0 then
            redis.call('HDEL', prof, df, 't' .. i .. ':' .. fact)
            local n = tonumber(redis.call('HGET', prof, 'n' .. i) or '0')
            if n > 0 then redis.call('HSET', prof, 'n' .. i, num(n - 1)) end
          else
            redis.call('HSET', prof, df, num(c))
          end
        end
      end
    end
    local hf = 'h' .. p['hr']
    local hc = redis.call('HGET', prof, hf)
    if hc then
      if tonumber(hc) <= 1 then
        redis.call('HDEL', prof, hf)
      else
        redis.call('HINCRBY', prof, hf, -1)
      end
    end
    if redis.call('HGET', prof, 'la') == p['at'] then
      -- The fraudulent login must not anchor impossible travel.
      redis.call('HDEL', prof, 'la', 'lp')
    end
  end
  for i = 0, 10 do
    local fact = p['f' .. i]
    if fact and fact ~= '' then
      local g = gkey(i, fact)
      local c = redis.call('GET', g)
      if c then
        c = tonumber(c)
        if c > 0 then redis.call('SET', g, num(c - 1), 'KEEPTTL') end
        if c == 1 then
          local n = tonumber(redis.call('HGET', stats, 'n' .. i) or '0')
          if n > 0 then redis.call('HSET', stats, 'n' .. i, num(n - 1)) end
        end
      end
    end
  end
  local l = tonumber(redis.call('HGET', stats, 'logins') or '0')
  if l > 0 then redis.call('HSET', stats, 'logins', num(l - 1)) end
  redis.call('HSET', pkey, 'taught', '0')
  return {1}
end
return {0}

-- riskgate: helpers shared by every store script. Prepended to each of them
-- at compile time (see `store::redis`), so all bucket exactly like
-- `store::window::SlidingCounter`.

local G = {{5000, 12}, {300000, 12}, {3600000, 24}}

local function num(x)
  return string.format('%.0f', x)
end

local function bucket(at, w)
  local b = math.floor(at / w)
  if b < 0 then b = 0 end
  return b + 1
end

local function load_hash(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- A ring of buckets per window, one hash field per slot: "<kind><w>:<slot>"
-- holding "<bucket>:<count>", exactly like window::SlidingCounter.
local function ring_add(key, h, kind, at)
  for wi, g in ipairs(G) do
    local b = bucket(at, g[1])
    local f = kind .. wi .. ':' .. num(b % g[2])
    local cur = h[f]
    local v = nil
    if cur then
      local cb, cc = string.match(cur, '^(%d+):(%d+)$')
      cb = tonumber(cb)
      cc = tonumber(cc)
      if cb == b then
        v = num(b) .. ':' .. num(cc + 1)
      elseif cb < b then
        v = num(b) .. ':1'
      end
    else
      v = num(b) .. ':1'
    end
    if v then
      h[f] = v
      redis.call('HSET', key, f, v)
    end
  end
end

local CAP = 256
local HOUR = 3600000

local function ring_count(h, kind, at)
  local out = {}
  for wi, g in ipairs(G) do
    local now = bucket(at, g[1])
    local oldest = now - (g[2] - 1)
    if oldest < 0 then oldest = 0 end
    local sum = 0
    for s = 0, g[2] - 1 do
      local cur = h[kind .. wi .. ':' .. s]
      if cur then
        local cb, cc = string.match(cur, '^(%d+):(%d+)$')
        cb = tonumber(cb)
        if cb >= oldest and cb <= now and cb ~= 0 then sum = sum + tonumber(cc) end
      end
    end
    out[wi] = sum
  end
  return out
end

-- Counts one attempt (and failure) on a velocity hash; returns its windows.
local function velocity(key, at, failed, attempts, ttl)
  local h = load_hash(key)
  if attempts then ring_add(key, h, 'a', at) end
  if failed then ring_add(key, h, 'f', at) end
  redis.call('PEXPIRE', key, ttl)
  return ring_count(h, 'f', at), ring_count(h, 'a', at)
end

-- Distinct members with last-seen time, like window::DistinctSet.
local function distinct_add(key, member, at, window, ttl)
  local since = at - window
  local sc = redis.call('ZSCORE', key, member)
  if sc then
    if tonumber(sc) < at then redis.call('ZADD', key, num(at), member) end
  else
    if redis.call('ZCARD', key) >= CAP then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', num(since))
    end
    if redis.call('ZCARD', key) >= CAP then redis.call('ZPOPMIN', key) end
    redis.call('ZADD', key, num(at), member)
  end
  redis.call('PEXPIRE', key, ttl)
end

local function distinct_count(key, at, window)
  return redis.call('ZCOUNT', key, '(' .. num(at - window), '+inf')
end

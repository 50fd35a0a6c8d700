-- riskgate: helpers shared by the store scripts (report and admin).
-- Prepended to each of them at compile time (see `store::redis`).

-- Window bucket widths (ms), as `store::window::GEOMETRY`.
local W = {5000, 300000, 3600000}

-- Facts per pending decision: the profile dimensions (`PROFILE_DIMS`).
local NFACTS = 12
-- The first NGLOBAL of them are counted deployment-wide (`GLOBAL_SLOTS`).
local NGLOBAL = 11
-- Recent decisions shown per user (`RECENT_DECISIONS`).
local RECENT = 20

local function num(x)
  return string.format('%.0f', x)
end

local function bucket(at, w)
  local b = math.floor(at / w)
  if b < 0 then b = 0 end
  return b + 1
end

-- Counts one event of `kind` ('f' failures, 'a' attempts) at `at` in the
-- velocity hash `key`: its 5-second bucket's field, "<kind>1:<bucket>" (as
-- `store::redis` writes them from observe; coarser windows are read from
-- the same fields).
local function count_event(key, kind, at, ttl)
  redis.call('HINCRBY', key, kind .. '1:' .. num(bucket(at, W[1])), 1)
  redis.call('PEXPIRE', key, ttl)
end

-- Splits "a|b|c" (empty parts kept).
local function split(s)
  local t, i = {}, 1
  while true do
    local j = string.find(s, '|', i, true)
    if not j then
      t[#t + 1] = string.sub(s, i)
      return t
    end
    t[#t + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

local function load_hash(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

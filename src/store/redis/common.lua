-- riskgate: helpers shared by the store scripts (report, merge and admin).
-- Prepended to each of them at compile time (see `store::redis`).

-- Window bucket widths (ms), as `store::window::GEOMETRY`.
local W = {5000, 300000, 3600000}

-- Facts per pending decision: the profile dimensions (`PROFILE_DIMS`).
local NFACTS = 12
-- Recent decisions shown per user (`RECENT_DECISIONS`).
local RECENT = 20
-- Separators in a pending decision recorded with its answer: taught,
-- expires, at, hour, place, the facts, then action, score, codes and the
-- decision id (`store::redis::observe::pending_record`).
local ANSWERED_BARS = 4 + NFACTS + 4

-- Profile field prefixes per fact slot, written out: concatenating a Lua
-- number formats it with sprintf, which costs more than a command does.
local DP = {'d0:', 'd1:', 'd2:', 'd3:', 'd4:', 'd5:', 'd6:', 'd7:', 'd8:', 'd9:', 'd10:', 'd11:'}
local TP = {'t0:', 't1:', 't2:', 't3:', 't4:', 't5:', 't6:', 't7:', 't8:', 't9:', 't10:', 't11:'}
local NP = {'n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10', 'n11'}

local function num(x)
  return string.format('%.0f', x)
end

-- A count stored as decimal text, plus one (nil counts as 0), without
-- converting it to a number and back when its last digit is not a 9.
local function inc(s)
  if not s then return '1' end
  local a, b = string.byte(s, 1), string.byte(s, -1)
  if a and a >= 48 and a <= 57 and b >= 48 and b < 57 then
    return string.sub(s, 1, -2) .. string.char(b + 1)
  end
  return num((tonumber(s) or 0) + 1)
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

local function load_hash(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

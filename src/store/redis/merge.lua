-- riskgate: applies the global value counts and stats that one replica's
-- reports taught (`store::redis::global`, `Taught`), once per merge
-- interval instead of once per report. All keys are in the `{g}` slot.
--
-- KEYS: 1 the stats hash, 2 the replica's marker (the last batch applied),
--   3.. the value counts the batches change.
-- ARGV: 1 profile ttl (ms), 2 marker ttl (ms), 3 the marker's field in the
--   stats hash (the same number, so that one HMGET reads the stats and what
--   they include), then per batch: its number, logins change, users change,
--   n, then n (key index from 1 into KEYS[3..], slot, change) triples. A
--   batch numbered at or below the marker has been applied (a retried
--   merge) and is skipped.
-- Returns the marker after it.
--
-- Helpers come from common.lua.

local kstats = KEYS[1]
local pttl = ARGV[1]
-- The last batch applied: the key, or the stats' field should the key
-- have expired.
local marker = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'),
  tonumber(redis.call('HGET', kstats, ARGV[3]) or '0'))
local top = marker

-- Everything is computed first and written after, the marker first: a
-- script stopped half way (out of memory) leaves batches counted short,
-- never twice.
local st = redis.call('HMGET', kstats, 'logins', 'users')
local logins, users = tonumber(st[1] or '0'), tonumber(st[2] or '0')
local logins0, users0 = logins, users
local taught = false

-- The value counts, read at once (in chunks: Lua's unpack is bounded).
-- cur: each count as it goes; dn: change of the distinct values per slot.
local cur, seen, touched, dn = {}, {}, {}, {}
do
  local n = #KEYS - 2
  local from = 1
  while from <= n do
    local to = math.min(from + 999, n)
    local names = {}
    for k = from, to do names[#names + 1] = KEYS[2 + k] end
    local got = redis.call('MGET', unpack(names))
    for k = from, to do cur[k] = tonumber(got[k - from + 1] or '0') end
    from = to + 1
  end
end

local i = 4
while i <= #ARGV do
  local seq = tonumber(ARGV[i])
  local dl, du = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local n = tonumber(ARGV[i + 3])
  i = i + 4
  local apply = seq > marker
  for _ = 1, n do
    if apply then
      local k, slot, d = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
      local c = cur[k]
      local v = math.max(c + d, 0)
      if v ~= c then
        cur[k] = v
        if not touched[k] then
          touched[k] = true
          seen[#seen + 1] = k
        end
      end
      if d > 0 then
        -- Taught: the count lives a profile TTL from now.
        touched[k] = 'taught'
        taught = true
      end
      if c == 0 and v > 0 then
        dn[slot] = (dn[slot] or 0) + 1
      elseif c > 0 and v == 0 then
        dn[slot] = (dn[slot] or 0) - 1
      end
    end
    i = i + 3
  end
  if apply then
    logins = math.max(logins + dl, 0)
    users = math.max(users + du, 0)
    if dl > 0 or du > 0 then taught = true end
    if seq > top then top = seq end
  end
end

if top > marker then
  redis.call('SET', KEYS[2], num(top), 'PX', ARGV[2])
  redis.call('HSET', kstats, ARGV[3], num(top))
  taught = true
end
for _, k in ipairs(seen) do
  if touched[k] == 'taught' then
    redis.call('SET', KEYS[2 + k], num(cur[k]), 'PX', pttl)
  else
    redis.call('SET', KEYS[2 + k], num(cur[k]), 'KEEPTTL')
  end
end
local set = {}
if logins ~= logins0 then
  set[#set + 1] = 'logins'
  set[#set + 1] = num(logins)
end
if users ~= users0 then
  set[#set + 1] = 'users'
  set[#set + 1] = num(users)
end
if #set > 0 then redis.call('HSET', kstats, unpack(set)) end
for slot, d in pairs(dn) do
  if d > 0 then
    redis.call('HINCRBY', kstats, 'n' .. slot, d)
  elseif d < 0 then
    local c = tonumber(redis.call('HGET', kstats, 'n' .. slot) or '0')
    if c > 0 then redis.call('HSET', kstats, 'n' .. slot, num(math.max(c + d, 0))) end
  end
end
if taught then redis.call('PEXPIRE', kstats, pttl) end
return top

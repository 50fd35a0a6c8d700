-- riskgate: Store::observe in one script (one round trip).
--
-- KEYS: 1 user velocity, 2 profile, 3 pending, 4 decision index,
--       5 ip velocity, 6 ip users, 7 network velocity, 8 device velocity,
--       9 device users, 10 global velocity, 11 global stats,
--       12..22 global seen per profile dimension (slot 0..10).
-- ARGV: 1 at (ms), 2 failed (0/1), 3 user member (hex16), 4 hour of week,
--       5 user (hex32), 6 decision ttl (ms), 7 counter ttl (ms),
--       8 has ip, 9 has network, 10 has device, 11 place ("" if none),
--       12..22 fact per profile dimension (hex16, "" if none).
-- Returns a flat array, see `RedisStore::observe`.

-- Helpers (G, num, bucket, load_hash, ring_add) come from redis_common.lua.

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

local at = tonumber(ARGV[1])
local failed = ARGV[2] == '1'
local member = ARGV[3]
local hour = ARGV[4]
local cttl = ARGV[7]
local zero = {0, 0, 0}

local uf = velocity(KEYS[1], at, failed, false, cttl)
local ipf, ipa, ipu = zero, zero, 0
if ARGV[8] == '1' then
  ipf, ipa = velocity(KEYS[5], at, failed, true, cttl)
  distinct_add(KEYS[6], member, at, HOUR, cttl)
  ipu = distinct_count(KEYS[6], at, HOUR)
end
local nf = zero
if ARGV[9] == '1' then nf = velocity(KEYS[7], at, failed, false, cttl) end
local df, du1, du24 = zero, 0, 0
if ARGV[10] == '1' then
  df = velocity(KEYS[8], at, failed, false, cttl)
  distinct_add(KEYS[9], member, at, 24 * HOUR, cttl)
  du24 = distinct_count(KEYS[9], at, 24 * HOUR)
  du1 = distinct_count(KEYS[9], at, HOUR)
end
local gf, ga = velocity(KEYS[10], at, failed, true, cttl)

local p = load_hash(KEYS[2])
local stats = load_hash(KEYS[11])
local out = {}
local function push(x) out[#out + 1] = x end
for _, w in ipairs({uf, ipf, nf, df, ipa}) do
  for i = 1, 3 do push(w[i]) end
end
push(ipu)
push(du1)
push(du24)
for _, w in ipairs({ga, gf}) do
  for i = 1, 3 do push(w[i]) end
end
push(tonumber(p['v'] or '0'))
for i = 0, 10 do
  local fact = ARGV[12 + i]
  if fact ~= '' then push(tonumber(p['d' .. i .. ':' .. fact] or '0')) else push(0) end
end
for i = 0, 10 do push(tonumber(p['n' .. i] or '0')) end
push(tonumber(p['h' .. hour] or '0'))
push(p['la'] or '')
push(p['lp'] or '')
push(p['sa'] or '')
for i = 0, 10 do
  if ARGV[12 + i] ~= '' then
    push(tonumber(redis.call('GET', KEYS[12 + i]) or '0'))
  else
    push(0)
  end
end
for i = 0, 10 do push(tonumber(stats['n' .. i] or '0')) end
push(tonumber(stats['logins'] or '0'))
push(tonumber(stats['users'] or '0'))

-- The pending decision: what a report may teach or unteach.
local pending = {'at', ARGV[1], 'hr', hour, 'u', ARGV[5], 'pl', ARGV[11], 'taught', '0'}
for i = 0, 10 do
  pending[#pending + 1] = 'f' .. i
  pending[#pending + 1] = ARGV[12 + i]
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(pending))
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
return out

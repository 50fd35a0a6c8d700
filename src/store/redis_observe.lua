-- riskgate: Store::observe, one function per hash tag. `store::redis`
-- composes them: on a single node into one script (one EVALSHA, one round
-- trip), on a cluster into one script per tag, all sent at once.
--
-- ARGV (the same for every composition): 1 at (ms), 2 failed (0/1),
--   3 user member (hex16), 4 hour of week, 5 decision ttl (ms),
--   6 counter ttl (ms), 7 place ("" if none),
--   8..18 fact per profile dimension (hex16, "" if none).
--
-- Helpers (G, num, bucket, load_hash, ring_add, ring_count, velocity,
-- distinct_add, distinct_count) come from redis_common.lua.

local at = tonumber(ARGV[1])
local failed = ARGV[2] == '1'
local member = ARGV[3]
local hour = ARGV[4]
local cttl = ARGV[6]

local function fact(i)
  return ARGV[8 + i]
end

-- Tag {u:<user>}: user failures, the profile as of now, the pending decision
-- (and its entry in the user's pending index `kidx`, decision hex → expiry,
-- so that forgetting the user needs no SCAN).
-- Returns uf(3), verified, seen(11), distinct(11), hour count, la, lp, sa,
-- device revoked (0/1).
local function obs_user(kv, kprof, kpending, kidx)
  local out = velocity(kv, at, failed, false, cttl)
  local p = load_hash(kprof)
  out[#out + 1] = tonumber(p['v'] or '0')
  for i = 0, 10 do
    local f = fact(i)
    if f ~= '' then out[#out + 1] = tonumber(p['d' .. i .. ':' .. f] or '0') else out[#out + 1] = 0 end
  end
  for i = 0, 10 do out[#out + 1] = tonumber(p['n' .. i] or '0') end
  out[#out + 1] = tonumber(p['h' .. hour] or '0')
  out[#out + 1] = p['la'] or ''
  out[#out + 1] = p['lp'] or ''
  out[#out + 1] = p['sa'] or ''
  if fact(0) ~= '' and p['rv:' .. fact(0)] then out[#out + 1] = 1 else out[#out + 1] = 0 end
  -- The pending decision: what a report may teach or unteach.
  local pending = {'at', ARGV[1], 'hr', hour, 'pl', ARGV[7], 'taught', '0'}
  for i = 0, 10 do
    pending[#pending + 1] = 'f' .. i
    pending[#pending + 1] = fact(i)
  end
  redis.call('DEL', kpending)
  redis.call('HSET', kpending, unpack(pending))
  redis.call('PEXPIRE', kpending, ARGV[5])
  redis.call('ZREMRANGEBYSCORE', kidx, '-inf', '(' .. num(at))
  redis.call('ZADD', kidx, num(at + tonumber(ARGV[5])), string.match(kpending, ':p:(%x+)$'))
  redis.call('PEXPIRE', kidx, ARGV[5])
  return out
end

-- Tag {i:<ip>}: failures(3), attempts(3), distinct users in 1 h.
local function obs_ip(kv, kusers)
  local f, a = velocity(kv, at, failed, true, cttl)
  distinct_add(kusers, member, at, HOUR, cttl)
  return {f[1], f[2], f[3], a[1], a[2], a[3], distinct_count(kusers, at, HOUR)}
end

-- Tag {n:<network>}: failures(3).
local function obs_network(kv)
  return velocity(kv, at, failed, false, cttl)
end

-- Tag {dv:<device>}: failures(3), distinct users in 1 h and 24 h.
local function obs_device(kv, kusers)
  local f = velocity(kv, at, failed, false, cttl)
  distinct_add(kusers, member, at, 24 * HOUR, cttl)
  return {f[1], f[2], f[3], distinct_count(kusers, at, HOUR), distinct_count(kusers, at, 24 * HOUR)}
end

-- Tag {g}: global attempts(3), failures(3), verified count of each fact
-- value(11), distinct values per dimension(11), logins, users.
-- `kseen(i)` names the key of fact i's global count.
local function obs_global(kv, kstats, kseen)
  local f, a = velocity(kv, at, failed, true, cttl)
  local out = {a[1], a[2], a[3], f[1], f[2], f[3]}
  for i = 0, 10 do
    if fact(i) ~= '' then
      out[#out + 1] = tonumber(redis.call('GET', kseen(i)) or '0')
    else
      out[#out + 1] = 0
    end
  end
  local stats = load_hash(kstats)
  for i = 0, 10 do out[#out + 1] = tonumber(stats['n' .. i] or '0') end
  out[#out + 1] = tonumber(stats['logins'] or '0')
  out[#out + 1] = tonumber(stats['users'] or '0')
  return out
end

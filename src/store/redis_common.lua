-- riskgate: helpers shared by the observe and report scripts. Prepended to
-- each of them at compile time (see `store::redis`), so both bucket exactly
-- like `store::window::SlidingCounter`.

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


-- riskgate: writes a user's profile (one string, `store::profile::Profile`
-- encoded) if it is still what the replica read, and with it the mark of
-- the decision a report taught or untaught. The replica reads both, applies
-- the report with the memory store's own rules, and sends the result here;
-- if either changed in between, nothing is written and the replica reads
-- again. Touches only the user's slot.
--
-- KEYS: 1 the profile; 2 the pending decisions (a report only).
-- ARGV: 1 the profile as read: the string, '' for none, or
--   'hash:<fields>:<v>' for an earlier version's hash (converted by this
--   write); 2 the new profile ('' leaves it as it is); 3 its TTL in ms, or
--   'keep'. A report adds: 4 the decision's field; 5 its record as read;
--   6 the record to write (its taught mark changed); 7 the decision TTL in
--   ms; 8 '1' if the record came from the replica's queue (then Redis may
--   not have it yet).
-- Returns 1 written, 0 changed since it was read.

local k = KEYS[1]
-- One GET in the common case: it fails (WRONGTYPE) only on another type.
local cur = redis.pcall('GET', k)
if type(cur) == 'table' then
  -- Any other error is the caller's to see, not a change to retry.
  if not string.find(cur.err or '', 'WRONGTYPE', 1, true) then return cur end
  if redis.call('TYPE', k)['ok'] ~= 'hash' then return 0 end
  cur = 'hash:' .. redis.call('HLEN', k) .. ':' .. (redis.call('HGET', k, 'v') or '')
elseif not cur then
  cur = ''
end
if cur ~= ARGV[1] then return 0 end

if KEYS[2] then
  local rec = redis.call('HGET', KEYS[2], ARGV[4])
  -- A record from the replica's queue may not be written yet.
  if rec ~= ARGV[5] and not (ARGV[8] == '1' and not rec) then return 0 end
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[6])
  if not rec then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end
end

if ARGV[2] ~= '' then
  if ARGV[3] == 'keep' then
    redis.call('SET', k, ARGV[2], 'KEEPTTL')
  else
    redis.call('SET', k, ARGV[2], 'PX', ARGV[3])
  end
end
return 1

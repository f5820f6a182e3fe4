--[[
  Marks an order's cached version stale ahead of a change of its row, so that after this only a
  newer version may be cached: a reader that loaded the row a moment earlier cannot put it back.
  Written whether or not the order was cached (a reader may be loading it right now), with a short
  TTL: the mark only has to outlive the reads already on their way.

  KEYS[1]  the order's cache key (a hash: v = version, d = the order's JSON, '' for a stale mark)
  ARGV[1]  the version about to change (the row's version, read under the row's lock)
  ARGV[2]  the stale mark's time to live, in ms

  Returns 1 when the entry held the order's data (a reader cached it: the writer reloads it once
  its change commits), 0 when it did not (nothing, or only a mark: nobody reads it, nothing to
  reload), -1 when a newer version is cached already (nothing written).
]]
local current = redis.call('HMGET', KEYS[1], 'v', 'd')
if current[1] and tonumber(current[1]) > tonumber(ARGV[1]) then return -1 end
local cached = 0
if current[2] and current[2] ~= '' then cached = 1 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return cached

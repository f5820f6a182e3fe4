--[[
  Writes an order's cache entry only if it does not take the cached version backwards.

  KEYS[1]  the order's cache key (a hash: v = version, d = the order's JSON, '' for a tombstone)
  ARGV[1]  the version being written (integer)
  ARGV[2]  the order's JSON, or '' to write a tombstone ("version ARGV[1] is stale")
  ARGV[3]  time to live, in ms

  Data replaces only an older version. A tombstone replaces its own version too: the writer that
  is about to change the row marks the current version stale, so a reader that loaded it a moment
  earlier cannot put it back.

  Returns 1 when written, 0 when the cached version was newer.
]]
local current = redis.call('HGET', KEYS[1], 'v')
local version = tonumber(ARGV[1])
if current then
  current = tonumber(current)
  if ARGV[2] == '' then
    if current > version then return 0 end
  elseif current >= version then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

--[[
  Writes an order's cache entry only if it does not take the cached version backwards, and only
  within the cache epoch the writer started in.

  KEYS[1]  the order's cache key (a hash: v = version, d = the order's JSON, '' for a stale mark)
  KEYS[2]  the cache's epoch key (a random token, made anew whenever Redis lost everything)
  ARGV[1]  the version being written (integer)
  ARGV[2]  the order's JSON, or '' to write a stale mark ("version ARGV[1] is stale")
  ARGV[3]  time to live, in ms
  ARGV[4]  the epoch the writer read before it read MySQL ('' for a stale mark: no check)

  Data replaces only an older version. A stale mark replaces its own version too: the writer that
  is about to change the row marks the current version stale, so a reader that loaded it a moment
  earlier cannot put it back. The epoch closes the one hole versions cannot: Redis restarted
  empty between a reader's MySQL read and its write, so there is no newer version to compare with.

  Returns 1 when written, 0 when refused.
]]
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
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

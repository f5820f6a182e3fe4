--[[
  Writes an order's cache entry only if it does not take the cached version backwards, and only
  within the cache epoch the writer started in.

  KEYS[1]  the order's cache key (a hash: v = version, d = the order's JSON, '' for a stale mark)
  KEYS[2]  the cache's epoch key (a random token, made anew whenever Redis lost everything)
  ARGV[1]  the version being written (integer)
  ARGV[2]  the order's JSON
  ARGV[3]  time to live, in ms
  ARGV[4]  the epoch the writer read before it read MySQL

  Data replaces only an older version: a stale mark (written by mark-stale.lua before a change)
  of version N refuses N itself, so a reader that loaded the row before the change cannot put it
  back. The epoch closes the one hole versions cannot: Redis restarted empty between a reader's
  MySQL read and its write, so there is no newer version to compare with.

  Returns 1 when written, 0 when refused.
]]
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

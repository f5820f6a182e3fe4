--[[
  Releases a lock, only for the holder that took it: a holder paused past the lock's TTL, whose
  lock someone else now holds, deletes nothing.

  KEYS[1]  the lock's key
  ARGV[1]  the holder's token (random, one per batch of locks taken together)

  Returns 1 when released, 0 when the key holds another token or none.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

--[[
  Renews a held lock's TTL, only for the holder that took it.

  KEYS[1]  the lock's key
  ARGV[1]  the holder's token
  ARGV[2]  the new time to live, in ms

  Returns 1 when renewed, 0 when the lock is no longer this holder's (it expired, or was taken).
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0

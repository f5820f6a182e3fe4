--[[
  Leases tokens of an API client's one-second budget to one web process: adds them to the client's
  counter of the current window, opening the window (its TTL) if there is none. The process spends
  them in memory; only those the counter held below the limit were granted (the caller works that
  out from the count), so the processes together never pass the limit.

  KEYS[1]  the client's window counter (<CACHE_PREFIX>:ratelimit:<client id>; one key per client)
  ARGV[1]  the window, in ms
  ARGV[2]  how many tokens the process asks for

  Returns {the counter after the addition, the window's time left in ms}.
]]
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  -- A new window (or a counter that somehow lost its TTL: never a limit for ever).
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }

-- A node leaves on a clean stop, if nobody is logged in on it (a kernel that restarts with users
-- keeps its place): ARGV epoch node instance
-- Returns {'OK'} (also when the node was no member: nothing to leave).
if guard() then return {'OK'} end
if redis.call('SCARD', PREFIX .. 'on:' .. NODE) == 0 then
  redis.call('HDEL', KEYS[5], NODE)
  redis.call('DEL', PREFIX .. 'alive:' .. NODE, PREFIX .. 'pos:' .. NODE)
end
return {'OK'}

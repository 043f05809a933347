-- A node's presence, refreshed every second on a connection of its own (whatever its kernel is
-- busy with): ARGV epoch node instance ttl-ms
-- Only while this instance is the node's registered one (a fenced node must notice instead).
-- Returns {'OK'} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
stalled(ARGV[4])
redis.call('SET', PREFIX .. 'alive:' .. NODE, INSTANCE, 'PX', ARGV[4])
return {'OK'}

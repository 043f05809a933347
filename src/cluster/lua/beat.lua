-- A node's heartbeat: ARGV epoch node instance ttl-ms position reap
-- Refreshes its presence, records how far it delivered the stream, and (reap = '1') logs out, once
-- and for everyone, the users of every node whose presence expired.
-- Returns {'OK', how many were reaped, reaped node..., every member node...} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
-- Our own presence lapsed: Redis or this node stood still meanwhile, and the others' presence may
-- have lapsed for the same reason. Nobody is reaped on the strength of that.
local lapsed = redis.call('EXISTS', PREFIX .. 'alive:' .. NODE) == 0
redis.call('SET', PREFIX .. 'alive:' .. NODE, INSTANCE, 'PX', ARGV[4])
if ARGV[5] ~= '' then redis.call('SET', PREFIX .. 'pos:' .. NODE, ARGV[5]) end
local reaped = {}
local nodes = redis.call('HKEYS', KEYS[5])
if not stalled(ARGV[4]) and ARGV[6] == '1' and not lapsed then
  for _, node in ipairs(nodes) do
    if node ~= NODE and redis.call('EXISTS', PREFIX .. 'alive:' .. node) == 0 then
      for _, owner in ipairs(redis.call('SMEMBERS', PREFIX .. 'on:' .. node)) do
        leave(owner, 'r')
      end
      redis.call('DEL', PREFIX .. 'on:' .. node, PREFIX .. 'pos:' .. node)
      redis.call('HDEL', KEYS[5], node)
      reaped[#reaped + 1] = node
    end
  end
end
local answer = {'OK', tostring(#reaped)}
for _, node in ipairs(reaped) do answer[#answer + 1] = node end
for _, node in ipairs(redis.call('HKEYS', KEYS[5])) do answer[#answer + 1] = node end
return answer

-- Everyone logged in, and the stream's last entry, at one moment, for a kernel that starts (and
-- the node's delivered position, if it had none):
-- ARGV epoch node instance
-- Returns {'OK', last entry id, owner, record, owner, record...} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
-- A node that never recorded how far it delivered has delivered up to here, from now on.
redis.call('SET', PREFIX .. 'pos:' .. NODE, id, 'NX')
local all = redis.call('HGETALL', KEYS[2])
table.insert(all, 1, id)
table.insert(all, 1, 'OK')
return all

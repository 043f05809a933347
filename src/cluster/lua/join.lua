-- A node joins (its kernel starts, or it heals): ARGV candidate-epoch node instance ttl-ms
-- The first node of an empty Redis sets the epoch. A node name held by another instance that is
-- still alive is refused.
-- Returns {'OK', epoch, this node's delivered position or '', 'kept' | 'new'} | {'BUSY', ttl-ms
-- left}: 'kept' when this instance was registered still (its kernel restarted in time; Redis's
-- record of its users is theirs), 'new' otherwise (a first start, or reaped meanwhile).
redis.call('SET', KEYS[1], EPOCH, 'NX')
local epoch = redis.call('GET', KEYS[1])
local alive = PREFIX .. 'alive:' .. NODE
local holder = redis.call('HGET', KEYS[5], NODE)
if holder and holder ~= INSTANCE and redis.call('EXISTS', alive) == 1 then
  return {'BUSY', tostring(redis.call('PTTL', alive))}
end
if holder and holder ~= INSTANCE then
  -- Its previous instance is gone without being reaped yet: its sessions are not ours.
  for _, owner in ipairs(redis.call('SMEMBERS', PREFIX .. 'on:' .. NODE)) do
    leave(owner, 'r')
  end
  redis.call('DEL', PREFIX .. 'pos:' .. NODE)
end
local kept = 'new'
if holder == INSTANCE then kept = 'kept' end
redis.call('HSET', KEYS[5], NODE, INSTANCE)
redis.call('SET', alive, INSTANCE, 'PX', ARGV[4])
return {'OK', epoch, redis.call('GET', PREFIX .. 'pos:' .. NODE) or '', kept}

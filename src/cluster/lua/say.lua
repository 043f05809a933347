-- msg and msgall: ARGV epoch node instance owner finst frame time text [key...]
-- With keys, a private message to whoever holds the first of them; without, to everyone.
-- Returns {'OK', entry id} | {'DUP'} | {'ERR', 'first'|'notfound'} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
local owner, finst, frame = ARGV[4], ARGV[5], ARGV[6]
if dup(owner, finst, frame) then return {'DUP'} end
local record = redis.call('HGET', KEYS[2], owner)
if not record then return {'ERR', 'first'} end
local _, name = parse(record)
local keys = rest(9)
if #keys == 0 then
  mark(owner, finst, frame)
  return {'OK', append('k', 'all', 'o', owner, 'n', name, 'h', ARGV[7], 'x', ARGV[8])}
end
-- A typed name that is not valid comes with the one key '' that nobody holds.
for _, k in ipairs(keys) do
  local target = redis.call('HGET', KEYS[3], k)
  if target then
    local _, to = parse(redis.call('HGET', KEYS[2], target))
    mark(owner, finst, frame)
    return {'OK', append('k', 'msg', 'o', owner, 'n', name, 't', target, 'm', to, 'h', ARGV[7], 'x', ARGV[8])}
  end
end
return {'ERR', 'notfound'}

-- A node asserts a login its sessions hold but Redis does not: ARGV epoch node instance owner seq
-- name silent mode key...
-- mode 'fenced' (the node was reaped while cut off): the name is taken back only if nobody
-- holds it now, as a new login (everyone saw it leave). mode 'reset' (Redis came back empty):
-- the earlier login keeps a name, as when the embedded kernel restores from hellos: a later
-- holder is logged out (flag 't') for this one.
-- Returns {'OK', entry id or ''} | {'ERR', 'taken'} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
local owner, seq, name, silent, mode = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
if redis.call('HEXISTS', KEYS[2], owner) == 1 then return {'OK', ''} end
local keys = rest(9)
local later = {}
for _, k in ipairs(keys) do
  local holder = redis.call('HGET', KEYS[3], k)
  if holder and holder ~= owner then
    if mode ~= 'reset' then return {'ERR', 'taken'} end
    local their = parse(redis.call('HGET', KEYS[2], holder))
    if their < seq then return {'ERR', 'taken'} end
    later[#later + 1] = holder
  end
end
-- Every holder checked first: nobody is logged out for a claim that fails.
for _, holder in ipairs(later) do leave(holder, 't') end
if mode == 'reset' then
  -- Nobody saw it leave: it keeps its place in the login order.
  local last = tonumber(redis.call('GET', KEYS[7]) or '0')
  if seq > last then redis.call('SET', KEYS[7], string.format('%.0f', seq)) end
else
  -- Everyone saw it leave: it logs in again, as the newest.
  seq = next_seq()
end
claim(owner, seq, name, keys)
return {'OK', append('k', 'in', 'o', owner, 'n', name, 's', string.format('%.0f', seq), 'r', silent)}

-- login: ARGV epoch node instance owner finst frame valid name key...
-- Returns {'OK', entry id} | {'DUP'} | {'ERR', 'already'|'invalid'|'taken'} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
local owner, finst, frame = ARGV[4], ARGV[5], ARGV[6]
if dup(owner, finst, frame) then return {'DUP'} end
if redis.call('HEXISTS', KEYS[2], owner) == 1 then return {'ERR', 'already'} end
if ARGV[7] ~= '1' then return {'ERR', 'invalid'} end
local keys = rest(9)
for _, k in ipairs(keys) do
  if redis.call('HEXISTS', KEYS[3], k) == 1 then return {'ERR', 'taken'} end
end
local seq = next_seq()
claim(owner, seq, ARGV[8], keys)
mark(owner, finst, frame)
return {'OK', append('k', 'in', 'o', owner, 'n', ARGV[8], 's', string.format('%.0f', seq))}

-- logout and a session's end: ARGV epoch node instance finst frame flag owner...
-- flag 'c': the logout command of one owner (an error if it is not logged in); 'g': these
-- owners' connections ended.
-- Returns {'OK', entry id or ''} | {'DUP'} | {'ERR', 'first'} | {'RESET'} | {'FENCED'}
local g = guard() if g then return g end
local finst, frame, flag = ARGV[4], ARGV[5], ARGV[6]
local owners = rest(7)
if flag == 'c' then
  local owner = owners[1]
  if dup(owner, finst, frame) then return {'DUP'} end
  local id = leave(owner, 'c')
  if not id then return {'ERR', 'first'} end
  mark(owner, finst, frame)
  return {'OK', id}
end
local last = ''
for _, owner in ipairs(owners) do
  local id = leave(owner, flag)
  if id then last = id end
end
return {'OK', last}

-- Shared by every script (each is sent with this in front). The keys, the same for every script:
--   KEYS[1] epoch    this Redis's chat epoch (a random id; absent: the data is gone)
--   KEYS[2] users    owner -> "seq<TAB>name<TAB>key..." of every logged-in session
--   KEYS[3] names    name key -> owner holding it
--   KEYS[4] events   the stream every node reads
--   KEYS[5] nodes    node -> instance of each member
--   KEYS[6] (unused: each session's last frame applied is a key of its own, PREFIX frame:OWNER)
--   KEYS[7] seq      the last login sequence number given out
--   KEYS[8] prefix   what per-node keys are named from: PREFIX alive:NODE (TTL), on:NODE (its
--                    owners), pos:NODE (the last entry it delivered)
-- An owner is "node/frontend/session". Every script's ARGV starts with: epoch, node, instance.
local EPOCH, NODE, INSTANCE = ARGV[1], ARGV[2], ARGV[3]
local PREFIX = KEYS[8]
-- Entries older than this are trimmed from the stream (XADD MINID): a node whose kernel restarts
-- delivers what it missed if it was away for less. And never more than this many entries, so
-- that a flood cannot fill Redis.
local RETENTION_MS = 60000
local MAX_ENTRIES = 50000
-- How long a session's last applied frame is remembered (to know a frame sent again after a kernel
-- restart): far longer than any replay takes, and then gone without anyone cleaning up.
local FRAME_TTL_MS = 600000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The node must be this Redis's member: the same epoch, and registered as this instance.
local function guard()
  if redis.call('GET', KEYS[1]) ~= EPOCH then return {'RESET'} end
  if redis.call('HGET', KEYS[5], NODE) ~= INSTANCE then return {'FENCED'} end
  return nil
end

-- Whether frame FRAME of frontend process FINST was applied for OWNER already (a replay).
local function dup(owner, finst, frame)
  local a = redis.call('GET', PREFIX .. 'frame:' .. owner)
  if not a then return false end
  local i, f = string.match(a, '^(%d+):(%d+)$')
  return i == finst and tonumber(f) >= tonumber(frame)
end

local function mark(owner, finst, frame)
  redis.call('SET', PREFIX .. 'frame:' .. owner, finst .. ':' .. frame, 'PX', FRAME_TTL_MS)
end

-- ARGV from index FIRST on, as a table (`unpack` stops at 8000 values: a loop does not).
local function rest(first)
  local out = {}
  for i = first, #ARGV do out[#out + 1] = ARGV[i] end
  return out
end

-- Appends an event, stamped with the epoch it belongs to ('e'): a node still reading from before
-- a reset tells the new stream's events apart.
local function append(...)
  local minid = tostring(now_ms() - RETENTION_MS)
  local id = redis.call('XADD', KEYS[4], 'MINID', '~', minid, '*', 'e', redis.call('GET', KEYS[1]), ...)
  if redis.call('XLEN', KEYS[4]) > MAX_ENTRIES then
    redis.call('XTRIM', KEYS[4], 'MAXLEN', '~', MAX_ENTRIES)
  end
  return id
end

-- A login record: seq, name, keys.
local function parse(record)
  local fields = {}
  for f in string.gmatch(record, '[^\t]+') do fields[#fields + 1] = f end
  local keys = {}
  for i = 3, #fields do keys[#keys + 1] = fields[i] end
  return tonumber(fields[1]), fields[2], keys
end

local function node_of(owner)
  return string.match(owner, '^([^/]+)/')
end

local function claim(owner, seq, name, keys)
  local record = string.format('%.0f', seq) .. '\t' .. name
  for _, k in ipairs(keys) do
    record = record .. '\t' .. k
    redis.call('HSET', KEYS[3], k, owner)
  end
  redis.call('HSET', KEYS[2], owner, record)
  redis.call('SADD', PREFIX .. 'on:' .. node_of(owner), owner)
end

-- Frees OWNER's name; returns its name, or nil if it was not logged in.
local function release(owner)
  local record = redis.call('HGET', KEYS[2], owner)
  if not record then return nil end
  local _, name, keys = parse(record)
  for _, k in ipairs(keys) do
    if redis.call('HGET', KEYS[3], k) == owner then redis.call('HDEL', KEYS[3], k) end
  end
  redis.call('HDEL', KEYS[2], owner)
  redis.call('SREM', PREFIX .. 'on:' .. node_of(owner), owner)
  return name
end

-- The next login sequence number: the time in microseconds, kept strictly increasing (as the
-- embedded kernel does), so that order survives a Redis that restarted empty.
local function next_seq(at_least)
  local t = redis.call('TIME')
  local seq = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', KEYS[7]) or '0')
  if seq <= last then seq = last + 1 end
  if at_least and seq < at_least then seq = at_least end
  redis.call('SET', KEYS[7], string.format('%.0f', seq))
  return seq
end

-- Whether Redis itself stood still: no node's heartbeat for over half a presence's life. Then
-- every presence may have lapsed at once, and nobody is reaped until each has had a presence's
-- life to refresh its own ('noreap'). Called by every heartbeat.
local function stalled(ttl)
  local now = now_ms()
  local last = tonumber(redis.call('GET', PREFIX .. 'heard') or '0')
  redis.call('SET', PREFIX .. 'heard', tostring(now))
  if last > 0 and now - last > tonumber(ttl) / 2 then
    redis.call('SET', PREFIX .. 'noreap', '1', 'PX', ttl)
  end
  return redis.call('EXISTS', PREFIX .. 'noreap') == 1
end

-- Logs OWNER out for everyone: FLAG is 'c' (its logout command: close it), 'g' (its connection
-- ended), 'r' (its node was reaped) or 't' (its name went to an earlier login).
local function leave(owner, flag)
  local name = release(owner)
  if not name then return nil end
  return append('k', 'out', 'o', owner, 'n', name, 'f', flag)
end

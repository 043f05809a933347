-- Shared by every script (each is sent with this in front). The keys, the same for every script:
--   KEYS[1] epoch    this Redis's chat epoch (a random id; absent: the data is gone)
--   KEYS[2] users    owner -> "seq<TAB>name<TAB>key..." of every logged-in session
--   KEYS[3] names    name key -> owner holding it
--   KEYS[4] events   the stream every node reads
--   KEYS[5] nodes    node -> instance of each member
--   KEYS[6] applied  owner -> "instance:frame", the last frontend frame of that session applied
--   KEYS[7] seq      the last login sequence number given out
--   KEYS[8] prefix   what per-node keys are named from: PREFIX alive:NODE (TTL), on:NODE (its
--                    owners), pos:NODE (the last entry it delivered)
-- An owner is "node/frontend/session". Every script's ARGV starts with: epoch, node, instance.
local EPOCH, NODE, INSTANCE = ARGV[1], ARGV[2], ARGV[3]
local PREFIX = KEYS[8]
-- Entries older than this are trimmed from the stream (XADD MINID): a node whose kernel restarts
-- delivers what it missed if it was away for less.
local RETENTION_MS = 600000

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
  local a = redis.call('HGET', KEYS[6], owner)
  if not a then return false end
  local i, f = string.match(a, '^(%d+):(%d+)$')
  return i == finst and tonumber(f) >= tonumber(frame)
end

local function mark(owner, finst, frame)
  redis.call('HSET', KEYS[6], owner, finst .. ':' .. frame)
end

local function append(...)
  local minid = tostring(now_ms() - RETENTION_MS)
  return redis.call('XADD', KEYS[4], 'MINID', '~', minid, '*', ...)
end

-- A login record: seq, name, keys.
local function parse(record)
  local fields = {}
  for f in string.gmatch(record, '[^\t]+') do fields[#fields + 1] = f end
  return tonumber(fields[1]), fields[2], {unpack(fields, 3)}
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

-- Logs OWNER out for everyone: FLAG is 'c' (its logout command: close it), 'g' (its connection
-- ended), 'r' (its node was reaped) or 't' (its name went to an earlier login).
local function leave(owner, flag)
  local name = release(owner)
  if not name then return nil end
  return append('k', 'out', 'o', owner, 'n', name, 'f', flag)
end

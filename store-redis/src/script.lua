#!lua
-- The one script behind every store-redis call: it applies a batch of operations atomically,
-- on the server's clock, and publishes the keys it changed. See script.rs for the encoding.
--
-- KEYS[1] meta hash (e: version epoch, n: version counter)
-- KEYS[2] index sorted set (every stored key, score 0, read in byte order with ZRANGEBYLEX)
-- KEYS[3] expiry sorted set (keys with an expiry, scored by it in microseconds)
-- KEYS[4..] the record hash of each operation that names a key, in operation order
-- ARGV[1] change channel, ARGV[2] epoch tag of the calling process, ARGV[3] record key root
-- ARGV[4..] operations, each an opcode followed by its arguments
--
-- A record hash has v (value), n (version) and x (expiry in microseconds since the Unix
-- epoch, or '' for none). A record is live while x is '' or later than now.

local meta, idx, expiry = KEYS[1], KEYS[2], KEYS[3]
local channel, tag, root = ARGV[1], ARGV[2], ARGV[3]

-- The server's clock, in microseconds, kept as a string for commands (a Lua number would be
-- printed with 14 significant digits) and as a number (exact below 2^53) for comparisons.
local t = redis.call('TIME')
local now_s = t[1] .. string.format('%06d', tonumber(t[2]))
local now = tonumber(now_s)

local function expired(x)
  return x ~= '' and tonumber(x) <= now
end

-- Versions are "<epoch>.<counter>". The epoch is made when the meta hash is missing: on a new
-- store, or after the server lost its data (a restart without persistence, a flush). It is
-- the server's time in microseconds and the caller's random tag, so a new epoch differs from
-- every earlier one and the counter may start again from 1 without reusing a version.
local epoch
local function next_version()
  if not epoch then
    epoch = redis.call('HGET', meta, 'e')
    if not epoch then
      epoch = now_s .. '-' .. tag
      redis.call('HSET', meta, 'e', epoch, 'n', 0)
    end
  end
  local n = redis.call('HINCRBY', meta, 'n', 1)
  return epoch .. '.' .. string.format('%d', n)
end

local changed = {}

local function remove(rk, key)
  redis.call('DEL', rk)
  redis.call('ZREM', idx, key)
  redis.call('ZREM', expiry, key)
end

-- Stores value and expiry under a new version. A record whose expiry has already passed is
-- written and expired at once: whatever was there is removed, and nothing stays.
local function store(rk, key, value, x)
  local version = next_version()
  if expired(x) then
    remove(rk, key)
  else
    if redis.call('HSET', rk, 'v', value, 'n', version, 'x', x) > 0 then
      -- A new hash (fields were added): the key enters the index.
      redis.call('ZADD', idx, 0, key)
    end
    if x == '' then
      redis.call('ZREM', expiry, key)
    else
      redis.call('ZADD', expiry, x, key)
    end
  end
  changed[#changed + 1] = key
  return version
end

-- The live record's {v, n, x}, or nil.
local function live(rk)
  local r = redis.call('HMGET', rk, 'v', 'n', 'x')
  if not r[1] or not r[2] or not r[3] or expired(r[3]) then
    return nil
  end
  return r
end

-- The live record's version, or nil (without reading the value).
local function live_version(rk)
  local r = redis.call('HMGET', rk, 'n', 'x')
  if not r[1] or not r[2] or expired(r[2]) then
    return nil
  end
  return r[1]
end

local out = {}
local a, k = 4, 4
local nargs = #ARGV
while a <= nargs do
  local op = ARGV[a]
  if op == 'g' then
    -- get: {v, n, x} or 0
    out[#out + 1] = live(KEYS[k]) or 0
    a, k = a + 1, k + 1
  elseif op == 'p' then
    -- put key value x: version
    out[#out + 1] = store(KEYS[k], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
    a, k = a + 4, k + 1
  elseif op == 'c' then
    -- create key value x: {1, version} or {0, v, n, x} (the live record)
    local rk = KEYS[k]
    local r = live(rk)
    if r then
      out[#out + 1] = {0, r[1], r[2], r[3]}
    else
      out[#out + 1] = {1, store(rk, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])}
    end
    a, k = a + 4, k + 1
  elseif op == 's' then
    -- cas key value x expected: {1, version}, {0} missing or expired, {2} other version
    local rk = KEYS[k]
    local current = live_version(rk)
    if not current then
      out[#out + 1] = {0}
    elseif current ~= ARGV[a + 4] then
      out[#out + 1] = {2}
    else
      out[#out + 1] = {1, store(rk, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])}
    end
    a, k = a + 5, k + 1
  elseif op == 'm' then
    -- put_many count (key value x)*count: count
    local count = tonumber(ARGV[a + 1])
    a = a + 2
    for _ = 1, count do
      store(KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2])
      a, k = a + 3, k + 1
    end
    out[#out + 1] = count
  elseif op == 'd' then
    -- delete key: 1, or 0 when missing or expired
    local rk, key = KEYS[k], ARGV[a + 1]
    if live_version(rk) then
      remove(rk, key)
      changed[#changed + 1] = key
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
    a, k = a + 2, k + 1
  elseif op == 'l' then
    -- list min max count: {cursor, key...}; the cursor is the last key scanned when the
    -- range may hold more, '' when it is exhausted. Expired keys are left out: one ZMSCORE
    -- reads the expiry of every key of the page.
    local count = tonumber(ARGV[a + 3])
    local keys = redis.call('ZRANGEBYLEX', idx, ARGV[a + 1], ARGV[a + 2], 'LIMIT', 0, count)
    local page = {#keys == count and keys[#keys] or ''}
    if #keys > 0 then
      local expiries = redis.call('ZMSCORE', expiry, unpack(keys))
      for i = 1, #keys do
        local x = expiries[i]
        if not x or tonumber(x) > now then
          page[#page + 1] = keys[i]
        end
      end
    end
    out[#out + 1] = page
    a = a + 4
  elseif op == 'r' then
    -- reap limit: {reclaimed, next expiry in microseconds or ''}. Atomic, so two instances
    -- reaping at once never reclaim a key twice; every reclaimed key is published.
    local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', now_s, 'LIMIT', 0, tonumber(ARGV[a + 1]))
    local reclaimed = 0
    for i = 1, #due do
      local key = due[i]
      local rk = root .. key
      local x = redis.call('HGET', rk, 'x')
      if not x then
        -- No record (lost to eviction): drop the stale index entries.
        redis.call('ZREM', idx, key)
        redis.call('ZREM', expiry, key)
      elseif x == '' then
        redis.call('ZREM', expiry, key)
      elseif expired(x) then
        remove(rk, key)
        changed[#changed + 1] = key
        reclaimed = reclaimed + 1
      else
        redis.call('ZADD', expiry, x, key)
      end
    end
    local first = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')
    out[#out + 1] = {reclaimed, first[2] or ''}
    a = a + 2
  elseif op == 't' then
    -- stats: {keys, keys with an expiry, epoch, counter}
    local m = redis.call('HMGET', meta, 'e', 'n')
    out[#out + 1] = {redis.call('ZCARD', idx), redis.call('ZCARD', expiry), m[1] or '', m[2] or '0'}
    a = a + 1
  else
    return redis.error_reply('store-redis: unknown operation ' .. tostring(op))
  end
end

if #changed > 0 then
  -- One message per batch: each key as its length in decimal, a colon, then its bytes.
  local parts = {}
  for i = 1, #changed do
    parts[i] = #changed[i] .. ':' .. changed[i]
  end
  redis.call('PUBLISH', channel, table.concat(parts))
end

return out

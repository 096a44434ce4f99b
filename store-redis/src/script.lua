#!lua
-- The one script behind every store-redis call: it applies a batch of operations atomically,
-- on the server's clock, and publishes the keys it changed. See script.rs for the encoding.
--
-- KEYS[1] meta hash (e: version epoch, h: run_id of the server process that made it,
--          n: version counter, late: writes refused as late)
-- KEYS[2] index sorted set (every stored key, score 0, read in byte order with ZRANGEBYLEX)
-- KEYS[3] expiry sorted set (keys with an expiry, scored by it in microseconds)
-- KEYS[4..] the record of each operation that names a key, in operation order
-- ARGV[1] change channel, ARGV[2] epoch tag of the calling process, ARGV[3] record key root
-- ARGV[4] how many versions the batch may need (one per record it may write)
-- ARGV[5..] operations, each an opcode followed by its arguments
--
-- Every write carries a deadline first: the latest server time (microseconds) at which it may
-- still be applied, '' for none. A write that arrives later (its caller has been told it
-- failed) is not applied and answers -1: a write reported as failed never lands after the
-- report (store_core::net::ServerClock explains how the caller's deadline becomes this).
--
-- The answer is {now, results}: the server's time, which the caller uses to sample the
-- server's clock, and one result per operation.
--
-- A record is one string, "<x> <n> <v>": its expiry (microseconds since the Unix epoch, or
-- '' for none), its version, and its value. A record is live while x is '' or later than
-- now. One string rather than a hash of three fields, so that a read outside the script
-- (read.rs) is one GET answered with one bulk string, which costs the server and the client
-- what a plain GET costs; an array of three fields costs the client twice the parsing.

local meta, idx, expiry = KEYS[1], KEYS[2], KEYS[3]
local channel, tag, root, slots = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

-- The server's clock, in microseconds, kept as a string for commands (a Lua number would be
-- printed with 14 significant digits) and as a number (exact below 2^53) for comparisons.
local t = redis.call('TIME')
local now_s = t[1] .. string.format('%06d', tonumber(t[2]))
local now = tonumber(now_s)

-- The run_id of this server process, for the version epoch (see next_version), read before
-- the batch changes anything: a server that refuses INFO then fails the whole batch, never
-- half of it. It costs about 4 microseconds of the server's time per batch that may write
-- (INFO commandstats, on this project's test machine); a batch of reads and deletes skips it.
local here
if slots > 0 then
  local info = redis.pcall('INFO', 'server')
  here = type(info) == 'string' and string.match(info, 'run_id:(%x+)')
  if not here then
    return redis.error_reply('store-redis: the server refused INFO, which every write needs ' ..
      'to tell whether the server process changed since the version epoch was made (allow ' ..
      'the user INFO, ACL category @dangerous, and do not rename the command)')
  end
end

local function expired(x)
  return x ~= '' and tonumber(x) <= now
end

-- Whether a write's deadline has passed; such writes are counted in the meta hash ('late'),
-- for operators and for tests that wait for a delayed write to arrive and be refused.
local function late(d)
  if d ~= '' and now > tonumber(d) then
    redis.call('HINCRBY', meta, 'late', 1)
    return true
  end
  return false
end

-- The first HEAD bytes of a record hold its header: an expiry of at most 16 digits and a
-- version of at most 46 bytes (16 digits, '-', an 8-character tag, '.', up to 19 digits).
local HEAD = 128

-- The expiry and version at the start of record string s, or nil if s is not a record (only
-- another tool writes such a thing; reads report it, writes replace it).
local function header(s)
  local i = string.find(s, ' ', 1, true)
  if not i then
    return nil
  end
  local j = string.find(s, ' ', i + 1, true)
  if not j or j == i + 1 then
    return nil
  end
  local x = string.sub(s, 1, i - 1)
  if x ~= '' and not string.find(x, '^%d+$') then
    return nil
  end
  return x, string.sub(s, i + 1, j - 1)
end

-- Versions are "<epoch>.<counter>". A new epoch is made when the meta hash is missing (a new
-- store, or a server that lost its data: a restart without persistence, a flush) and when
-- the epoch was made by another server process ('h', the run_id of the process that made
-- it). The second case is the one where the data survived but the counter may not have:
-- a restart that loaded a snapshot older than the last versions handed out, or a replica
-- promoted before it received them. Either way the counter may be behind, so a version
-- would be handed out twice; a new epoch makes every later version differ from every
-- earlier one. The epoch is the server's time in microseconds and the caller's random tag,
-- so it differs from every earlier one too, and the counter starts again from 1.
--
-- The run_id (`here`) is read at the start of every batch that may write (see below).
--
-- The batch takes the counter values of every write it may make with one HINCRBY, at its
-- first write. Writes that do not happen (a lost cas, a create that finds a record) leave
-- gaps in the counter, which are harmless: versions are opaque and only compared for
-- equality.
local epoch, next_n, last_n
local function next_version()
  if not epoch then
    local made = redis.call('HMGET', meta, 'e', 'h')
    epoch = made[1]
    if not epoch or made[2] ~= here then
      epoch = now_s .. '-' .. tag
      redis.call('HSET', meta, 'e', epoch, 'n', 0, 'h', here)
    end
  end
  if not next_n or next_n > last_n then
    local want = math.max(slots, 1)
    last_n = redis.call('HINCRBY', meta, 'n', want)
    next_n = last_n - want + 1
  end
  local n = next_n
  next_n = n + 1
  return epoch .. '.' .. string.format('%d', n)
end

local changed = {}

-- Whether the expiry queue may hold keys. Checked once per batch, when a write first needs to
-- know: a store whose records have no expiry then never pays for taking keys out of the
-- queue (a ZREM for every put would cost about a fifth of the put).
local queue_used
local function may_be_queued()
  if queue_used == nil then
    queue_used = redis.call('ZCARD', expiry) > 0
  end
  return queue_used
end

local function remove(rk, key)
  redis.call('DEL', rk)
  redis.call('ZREM', idx, key)
  redis.call('ZREM', expiry, key)
end

-- Stores value and expiry under a new version. A record whose expiry has already passed is
-- written and expired at once: whatever was there is removed, and nothing stays.
--
-- old_x is what the caller knows of the key: the live record's expiry ('' for none) when it
-- read one (cas), false when it found no live record (create), nil when it did not look
-- (put). It saves commands: a live record is in the index already, and a record without an
-- expiry is not in the expiry queue. A put tries SET XX first, which succeeds for a key
-- that exists (and so is in the index) without a lookup of its own.
local function store(rk, key, value, x, old_x)
  local version = next_version()
  if expired(x) then
    remove(rk, key)
  else
    local record = x .. ' ' .. version .. ' ' .. value
    if old_x then
      redis.call('SET', rk, record)
    elseif old_x == false or not redis.call('SET', rk, record, 'XX') then
      redis.call('SET', rk, record)
      redis.call('ZADD', idx, 0, key)
    end
    if x ~= '' then
      redis.call('ZADD', expiry, x, key)
      queue_used = true
    elseif old_x ~= '' and may_be_queued() then
      redis.call('ZREM', expiry, key)
    end
  end
  changed[#changed + 1] = key
  return version
end

-- What a read answers: the record string unless it is missing or expired (a string that is
-- not a record is answered too, for the caller to report).
local function readable(rk)
  local s = redis.call('GET', rk)
  if not s then
    return nil
  end
  local x = header(s)
  if x and expired(x) then
    return nil
  end
  return s
end

-- The live record's string, or nil.
local function live(rk)
  local s = readable(rk)
  if s and header(s) then
    return s
  end
  return nil
end

-- The live record's version and expiry, or nil (reading only the header, not the value).
local function live_version(rk)
  local x, n = header(redis.call('GETRANGE', rk, 0, HEAD - 1))
  if not x or expired(x) then
    return nil
  end
  return n, x
end

local out = {}
local a, k = 5, 4
local nargs = #ARGV
while a <= nargs do
  local op = ARGV[a]
  if op == 'g' then
    -- get: the record string, or 0
    out[#out + 1] = readable(KEYS[k]) or 0
    a, k = a + 1, k + 1
  elseif op == 'p' then
    -- put deadline key value x: version
    if late(ARGV[a + 1]) then
      out[#out + 1] = -1
    else
      out[#out + 1] = store(KEYS[k], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
    end
    a, k = a + 5, k + 1
  elseif op == 'c' then
    -- create deadline key value x: {1, version} or {0, record string} (the live record)
    local rk = KEYS[k]
    if late(ARGV[a + 1]) then
      out[#out + 1] = -1
    else
      local r = live(rk)
      if r then
        out[#out + 1] = {0, r}
      else
        out[#out + 1] = {1, store(rk, ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], false)}
      end
    end
    a, k = a + 5, k + 1
  elseif op == 's' then
    -- cas deadline key value x expected: {1, version}, {0} missing or expired, {2} other
    -- version
    local rk = KEYS[k]
    if late(ARGV[a + 1]) then
      out[#out + 1] = -1
    else
      local current, old_x = live_version(rk)
      if not current then
        out[#out + 1] = {0}
      elseif current ~= ARGV[a + 5] then
        out[#out + 1] = {2}
      else
        out[#out + 1] = {1, store(rk, ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], old_x)}
      end
    end
    a, k = a + 6, k + 1
  elseif op == 'm' then
    -- put_many deadline count (key value x)*count: count
    local count = tonumber(ARGV[a + 2])
    local skip = late(ARGV[a + 1])
    a = a + 3
    for _ = 1, count do
      if not skip then
        store(KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2])
      end
      a, k = a + 3, k + 1
    end
    out[#out + 1] = skip and -1 or count
  elseif op == 'd' then
    -- delete deadline key: 1, or 0 when missing or expired
    local rk, key = KEYS[k], ARGV[a + 2]
    if late(ARGV[a + 1]) then
      out[#out + 1] = -1
    elseif live_version(rk) then
      remove(rk, key)
      changed[#changed + 1] = key
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
    a, k = a + 3, k + 1
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
      local s = redis.call('GETRANGE', rk, 0, HEAD - 1)
      local x = header(s)
      if s == '' then
        -- No record (lost to eviction): drop the stale index entries.
        redis.call('ZREM', idx, key)
        redis.call('ZREM', expiry, key)
      elseif not x or x == '' then
        -- No expiry, or not a record (written by another tool): not the reaper's to remove.
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
    -- stats: {keys, keys with an expiry, epoch, counter, late writes refused}
    local m = redis.call('HMGET', meta, 'e', 'n', 'late')
    out[#out + 1] = {redis.call('ZCARD', idx), redis.call('ZCARD', expiry), m[1] or '',
                     m[2] or '0', m[3] or '0'}
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

return {now_s, out}

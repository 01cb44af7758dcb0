/**
 * The server-side Lua scripts of `store.redis`. Every operation that reads before it writes runs
 * as one script, so it is atomic in Redis itself, whichever host sends it.
 *
 * Every script gets the store's four bookkeeping keys first, then the entry keys it works on:
 *   KEYS[1] index   sorted set of every stored key, all scores 0 (byte order for `list`, ZCARD for max_size)
 *   KEYS[2] expiry  sorted set of the keys with a TTL, scored by expiry time (server ms)
 *   KEYS[3] sizes   hash: key -> its key + value + metadata bytes (for `stats().bytes`)
 *   KEYS[4] meta    hash: `version` (the store's version counter, never reset), `bytes`
 *   KEYS[5..]       entry hashes { v = value, ver = version, m = metadata }, with Redis's own TTL
 * and ARGV[1] is the entry key prefix (`<key_prefix>{<store id>}:`), from which scripts that walk the
 * index derive entry keys. They share one hash tag, so a Cluster keeps them in one slot.
 *
 * With a quota two more keys of the same hash tag, derived from META: `#owners` (hash: key -> the
 * share that owns it) and `#shares` (hash: `k:<share>` keys, `b:<share>` bytes); META then also
 * counts `shares` (shares holding keys) and `owned` (keys that belong to a share). The write
 * scripts decide admission by the rules of src/store/share-ledger.ts (no LRU on Redis) in the
 * same script that writes, so they hold whichever host writes.
 *
 * Redis expires entry hashes by itself; the index, expiry and sizes structures learn about it
 * lazily (a script that meets an indexed key without its hash "forgets" it and reports it as
 * expired) and by the periodic sweep, which walks the expiry set up to now.
 *
 * Stale copies (stale_for): a value written with a TTL in such a store keeps its hash for the TTL
 * plus stale_for (PEXPIRE and the expiry set say so) and records its logical expiry, server ms, in
 * the field `x`. Every script takes a hash whose `x` has passed as missing (only luastoreGetStale
 * answers it); a write of the key replaces it (store() starts with DEL). A TTL argument then comes
 * as "<ttl>,<stale_for>" (see ttl_arg). Lists and sorted sets never get a stale copy.
 */

import { SCORE_BYTES } from "./store.js";

/** Shared helpers, prepended to every script. */
const PRELUDE = String.raw`
local INDEX, EXPIRY, SIZES, META = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local PREFIX = ARGV[1]
local BASE = string.sub(META, 1, -6)
local OWNERS, SHARES = BASE .. '#owners', BASE .. '#shares'

-- The key no longer belongs to its share (gone, or written by another share).
local function unown(member, size)
  local owner = redis.call('HGET', OWNERS, member)
  if not owner then return end
  redis.call('HDEL', OWNERS, member)
  redis.call('HINCRBY', META, 'owned', -1)
  redis.call('HINCRBY', SHARES, 'b:' .. owner, -size)
  if redis.call('HINCRBY', SHARES, 'k:' .. owner, -1) <= 0 then
    redis.call('HDEL', SHARES, 'k:' .. owner, 'b:' .. owner)
    redis.call('HINCRBY', META, 'shares', -1)
  end
end

local function own(member, share, size)
  redis.call('HSET', OWNERS, member, share)
  redis.call('HINCRBY', META, 'owned', 1)
  redis.call('HINCRBY', SHARES, 'b:' .. share, size)
  if redis.call('HINCRBY', SHARES, 'k:' .. share, 1) == 1 then redis.call('HINCRBY', META, 'shares', 1) end
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drops a key whose hash is gone from the bookkeeping; 1 when it was still indexed (it expired).
local function forget(member)
  if redis.call('ZREM', INDEX, member) == 0 then return 0 end
  redis.call('ZREM', EXPIRY, member)
  local size = redis.call('HGET', SIZES, member)
  if size then
    unown(member, tonumber(size))
    redis.call('HDEL', SIZES, member)
    redis.call('HINCRBY', META, 'bytes', -tonumber(size))
  end
  return 1
end

-- Whether the hash at ek is a stale copy: its logical expiry x (stale_for) has passed. pcall: ek
-- may hold a list or sorted set, which has no fields.
local function stale(ek, now)
  local x = redis.pcall('HGET', ek, 'x')
  return type(x) == 'string' and tonumber(x) <= now
end

-- A TTL argument: ms, or "ms,stale_for" in a store with stale_for. Returns ttl, grace.
local function ttl_arg(a)
  local t, g = string.match(a, '^(%d+),(%d+)$')
  if t then return tonumber(t), tonumber(g) end
  return tonumber(a), 0
end

-- Whether the key is stored and live, how many expired keys were forgotten on the way (0 or 1),
-- and whether it is stored at all. A stale copy is stored but not live: the write that follows
-- replaces it, so it takes no room of its own.
local function live(ek, member)
  if redis.call('EXISTS', ek) == 1 then return not stale(ek, now_ms()), 0, true end
  return false, forget(member), false
end

-- The key's Redis TYPE, 'none' for a stale copy (which a collection write then replaces: dropped here).
local function type_of(ek)
  local t = redis.call('TYPE', ek).ok
  if t == 'hash' and stale(ek, now_ms()) then
    redis.call('DEL', ek)
    return 'none'
  end
  return t
end

local function resize(member, size)
  local old = redis.call('HGET', SIZES, member)
  redis.call('HSET', SIZES, member, size)
  redis.call('HINCRBY', META, 'bytes', size - (tonumber(old) or 0))
  local owner = redis.call('HGET', OWNERS, member)
  if owner then redis.call('HINCRBY', SHARES, 'b:' .. owner, size - (tonumber(old) or 0)) end
end

-- After a write by share ('' = the host, which keeps the owner): the key is the writer's.
local function claim(member, share)
  if share == '' then return end
  local owner = redis.call('HGET', OWNERS, member)
  if owner == share then return end
  local size = tonumber(redis.call('HGET', SIZES, member))
  unown(member, size)
  own(member, share, size)
end

-- Whether writes of members (with new entry sizes; alive[i] when the key is live) by share fit
-- the quota: nil when they do, else an outcome code and a message. max_keys 0: no quota.
local function quota_refusal(share, members, sizes, alive, max, max_keys, max_bytes)
  local shares = tonumber(redis.call('HGET', META, 'shares') or '0')
  local unowned = redis.call('ZCARD', INDEX) - tonumber(redis.call('HGET', META, 'owned') or '0')
  if share == '' then
    local new = 0
    for i = 1, #members do if not alive[i] then new = new + 1 end end
    if unowned + new > max - shares * max_keys then
      return { 4, 'max_size ' .. max .. ', ' .. shares * max_keys .. ' reserved by shares' }
    end
    return nil
  end
  local keys = tonumber(redis.call('HGET', SHARES, 'k:' .. share) or '0')
  local bytes = tonumber(redis.call('HGET', SHARES, 'b:' .. share) or '0')
  local holds = keys > 0
  for i = 1, #members do
    if alive[i] and redis.call('HGET', OWNERS, members[i]) == share then
      bytes = bytes - tonumber(redis.call('HGET', SIZES, members[i]) or '0')
    else
      keys = keys + 1
    end
    bytes = bytes + sizes[i]
  end
  if keys > max_keys then return { 6, keys .. ' keys, over max_keys ' .. max_keys } end
  if max_bytes >= 0 and bytes > max_bytes then return { 6, bytes .. ' bytes, over max_bytes ' .. max_bytes } end
  if not holds and unowned + (shares + 1) * max_keys > max then
    return { 7, 'its max_size ' .. max .. ' is reserved by ' .. shares .. ' shares of max_keys ' .. max_keys }
  end
  return nil
end



local function next_version()
  return redis.call('HINCRBY', META, 'version', 1)
end

-- grace (stale_for, 0 = none) applies to values only: the hash lives on past its logical expiry x.
local function set_ttl(ek, member, ttl, now, grace)
  if ttl > 0 and grace > 0 then
    redis.call('HSET', ek, 'x', now + ttl)
    redis.call('PEXPIRE', ek, ttl + grace)
    redis.call('ZADD', EXPIRY, now + ttl + grace, member)
  elseif ttl > 0 then
    redis.call('PEXPIRE', ek, ttl)
    redis.call('ZADD', EXPIRY, now + ttl, member)
  else
    redis.call('PERSIST', ek)
    redis.call('ZREM', EXPIRY, member)
  end
end

-- Writes a whole entry: a new version, the metadata it carries (or none), the TTL (0 = none).
local function store(ek, member, value, ttl, meta, now, grace)
  local version = next_version()
  redis.call('DEL', ek)
  if meta then
    redis.call('HSET', ek, 'v', value, 'ver', version, 'm', meta)
  else
    redis.call('HSET', ek, 'v', value, 'ver', version)
  end
  set_ttl(ek, member, ttl, now, grace)
  redis.call('ZADD', INDEX, 0, member)
  resize(member, #member + #value + (meta and #meta or 0))
end

-- Forgets up to limit keys of the expiry set that are due and gone; returns forgotten, looked at.
local function reap_due(now, limit)
  local due = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, limit)
  local n = 0
  for _, member in ipairs(due) do
    if redis.call('EXISTS', PREFIX .. member) == 0 then n = n + forget(member) end
  end
  return n, #due
end

-- Whether needed new keys fit under max; reclaims expired keys first when they do not (a bounded
-- number, so that one call never holds Redis for a whole sweep).
local function make_room(needed, max, now)
  if redis.call('ZCARD', INDEX) + needed <= max then return true, 0 end
  local reaped = reap_due(now, needed + 1000)
  return redis.call('ZCARD', INDEX) + needed <= max, reaped
end

-- quota_refusal, after reclaiming expired keys when it refuses (they still count in their shares).
local function admit(share, members, sizes, alive, max, max_keys, max_bytes, now)
  local refusal = quota_refusal(share, members, sizes, alive, max, max_keys, max_bytes)
  if not refusal then return nil, 0 end
  local reaped = reap_due(now, #members + 1000)
  if reaped == 0 then return refusal, 0 end
  return quota_refusal(share, members, sizes, alive, max, max_keys, max_bytes), reaped
end
-- Room for a collection key growing to size bytes (quota, max_size), as a value write would
-- need: nil when it fits, else { outcome, message? }; and how many expired keys were reclaimed.
local function collection_room(member, alive, size, share, max_keys, max, max_bytes)
  local now = now_ms()
  if max_keys > 0 then
    return admit(share, { member }, { size }, { alive }, max, max_keys, max_bytes, now)
  elseif not alive then
    local fits, reaped = make_room(1, max, now)
    -- 4 is Outcome.FULL.
    if not fits then return { 4 }, reaped end
    return nil, reaped
  end
  return nil, 0
end

-- Keys of the index, less the stale copies when grace (stale_for) > 0: their hash lives until
-- x + grace, so their expiry-set score is within grace from now (a live key's is further).
local function live_count(grace)
  local n = redis.call('ZCARD', INDEX)
  if grace > 0 then
    local now = now_ms()
    n = n - redis.call('ZCOUNT', EXPIRY, '(' .. now, now + grace)
  end
  return n
end

-- After a collection write: a new key joins the index (no TTL); sizes and the owner follow.
local function collection_written(member, alive, size, share)
  if not alive then
    redis.call('ZADD', INDEX, 0, member)
    redis.call('ZREM', EXPIRY, member)
  end
  resize(member, size)
  claim(member, share)
end

`;

/** MessagePack numbers, read and written exactly as src/store/numbers.ts does. */
const NUMBERS = String.raw`
local function is_int32(x)
  return x == math.floor(x) and x >= -2147483648 and x <= 2147483647
end

local function integral(x)
  return x, not is_int32(x)
end

-- The number and whether it is a float, or nil when the bytes are not exactly one number.
local function decode(s)
  local n = #s
  if n == 0 then return nil end
  local b = string.byte(s, 1)
  if b < 0x80 then if n == 1 then return b, false end return nil end
  if b >= 0xe0 then if n == 1 then return b - 256, false end return nil end
  if b == 0xcc and n == 2 then return string.byte(s, 2), false end
  if b == 0xcd and n == 3 then return (struct.unpack('>I2', s, 2)), false end
  if b == 0xce and n == 5 then return integral((struct.unpack('>I4', s, 2))) end
  if b == 0xcf and n == 9 then
    return integral(struct.unpack('>I4', s, 2) * 4294967296 + struct.unpack('>I4', s, 6))
  end
  if b == 0xd0 and n == 2 then return (struct.unpack('>b', s, 2)), false end
  if b == 0xd1 and n == 3 then return (struct.unpack('>h', s, 2)), false end
  if b == 0xd2 and n == 5 then return (struct.unpack('>i4', s, 2)), false end
  if b == 0xd3 and n == 9 then
    return integral(struct.unpack('>i4', s, 2) * 4294967296 + struct.unpack('>I4', s, 6))
  end
  if b == 0xca and n == 5 then return (struct.unpack('>f', s, 2)), true end
  if b == 0xcb and n == 9 then return (struct.unpack('>d', s, 2)), true end
  return nil
end

-- An int in its smallest form, a float as float64 (what the Lua codec writes).
local function encode(x, float)
  if float then return '\203' .. struct.pack('>d', x) end
  if x >= 0 then
    if x < 128 then return string.char(x) end
    if x < 256 then return '\204' .. string.char(x) end
    if x < 65536 then return '\205' .. struct.pack('>I2', x) end
    return '\206' .. struct.pack('>I4', x)
  end
  if x >= -32 then return string.char(x + 256) end
  if x >= -128 then return '\208' .. struct.pack('>b', x) end
  if x >= -32768 then return '\209' .. struct.pack('>h', x) end
  return '\210' .. struct.pack('>i4', x)
end
`;

/** Outcome codes the write scripts return first. */
export const Outcome = {
  OK: 0,
  EXISTS: 1,
  MISSING: 2,
  CONFLICT: 3,
  FULL: 4,
  NOT_A_NUMBER: 5,
  OVER_QUOTA: 6,
  RESERVED: 7,
  /** The key holds another type; the reply's third element is its Redis TYPE. */
  WRONG_TYPE: 8,
  /** The collection would pass its bounds; the reply then carries its items and item bytes. */
  BOUNDS: 9,
} as const;

const BODIES = {
  /** KEYS +[entry]; ARGV +[member]. The value, or 0 when missing, 1 when it had expired. */
  luastoreGet: `
    local e = redis.call('HMGET', KEYS[5], 'v', 'x')
    if e[1] then
      if not e[2] or tonumber(e[2]) > now_ms() then return e[1] end
      return 0
    end
    return forget(ARGV[2])
  `,

  /** KEYS +[entry]; ARGV +[member]. { 0, value } live, { 1, value } a stale copy, else 0 / 1 like luastoreGet. */
  luastoreGetStale: `
    local e = redis.call('HMGET', KEYS[5], 'v', 'x')
    if e[1] then
      if not e[2] or tonumber(e[2]) > now_ms() then return { 0, e[1] } end
      return { 1, e[1] }
    end
    return forget(ARGV[2])
  `,

  /** KEYS +entries; ARGV +members. Per key: the value, or 0 (missing) / 1 (had expired). */
  luastoreGetMany: `
    local out = {}
    local now = now_ms()
    for i = 5, #KEYS do
      local e = redis.call('HMGET', KEYS[i], 'v', 'x')
      if not e[1] then out[#out + 1] = forget(ARGV[i - 3])
      elseif e[2] and tonumber(e[2]) <= now then out[#out + 1] = 0
      else out[#out + 1] = e[1] end
    end
    return out
  `,

  /** KEYS +[entry]; ARGV +[member]. { PTTL (-1 none, -2 missing), expired (0/1) }. */
  luastoreProbe: `
    local pttl = redis.call('PTTL', KEYS[5])
    if pttl == -2 then return { -2, forget(ARGV[2]) } end
    -- With a stale copy's grace the logical expiry x, not PTTL, says how long the key lives.
    local x = redis.pcall('HGET', KEYS[5], 'x')
    if type(x) ~= 'string' then return { pttl, 0 } end
    local left = tonumber(x) - now_ms()
    if left <= 0 then return { -2, 0 } end
    return { left, 0 }
  `,

  /** KEYS +[entry]; ARGV +[member]. { value, version, PTTL, metadata? }, or 0 / 1 like luastoreGet. */
  luastoreEntry: `
    local e = redis.call('HMGET', KEYS[5], 'v', 'ver', 'm', 'x')
    if not e[1] then return forget(ARGV[2]) end
    if not e[4] then return { e[1], e[2], redis.call('PTTL', KEYS[5]), e[3] } end
    local left = tonumber(e[4]) - now_ms()
    if left <= 0 then return 0 end
    return { e[1], e[2], left, e[3] }
  `,

  /**
   * KEYS +[entry]; ARGV +[member, value, ttl, max_size, mode, if_version, metadata or '', share or '',
   * max_keys (0: no quota), max_bytes (-1: none)] with mode one of set, add, replace, absent (put
   * onlyIfAbsent), version (put ifVersion), put. { outcome, expired, refusal message? }.
   */
  luastoreWrite: `
    local ek, member, mode = KEYS[5], ARGV[2], ARGV[6]
    local meta = ARGV[8] ~= '' and ARGV[8] or nil
    local share, max_keys = ARGV[9], tonumber(ARGV[10])
    local alive, expired, stored = live(ek, member)
    if alive and (mode == 'add' or mode == 'absent') then return { ${Outcome.EXISTS}, expired } end
    if not alive and (mode == 'replace' or mode == 'version') then return { ${Outcome.MISSING}, expired } end
    if mode == 'version' and redis.call('HGET', ek, 'ver') ~= ARGV[7] then return { ${Outcome.CONFLICT}, expired } end
    local now = now_ms()
    if max_keys > 0 then
      local size = #member + #ARGV[3] + (meta and #meta or 0)
      local refusal, reaped = admit(share, { member }, { size }, { alive }, tonumber(ARGV[5]), max_keys, tonumber(ARGV[11]), now)
      expired = expired + reaped
      if refusal then return { refusal[1], expired, refusal[2] } end
    elseif not stored then
      local fits, reaped = make_room(1, tonumber(ARGV[5]), now)
      expired = expired + reaped
      if not fits then return { ${Outcome.FULL}, expired } end
    end
    local ttl, grace = ttl_arg(ARGV[4])
    store(ek, member, ARGV[3], ttl, meta, now, grace)
    claim(member, share)
    return { ${Outcome.OK}, expired }
  `,

  /**
   * KEYS +[entry]; ARGV +[member, by (float64 bytes), by is float, init (float64), init is float,
   * init_ttl, max_size, share or '', max_keys (0: no quota), max_bytes (-1: none)].
   * { outcome, new value bytes, expired, refusal message? }.
   */
  luastoreIncr: `
    local ek, member = KEYS[5], ARGV[2]
    local share, max_keys = ARGV[9], tonumber(ARGV[10])
    local stored = redis.call('HGET', ek, 'v')
    -- A stale copy: the number starts afresh over it, in its room.
    local over_stale = stored and stale(ek, now_ms())
    if over_stale then stored = false end
    local expired = 0
    local current, float
    if stored then
      current, float = decode(stored)
      if current == nil then return { ${Outcome.NOT_A_NUMBER}, '', 0 } end
    else
      expired = forget(member)
      current, float = struct.unpack('>d', ARGV[5]), ARGV[6] == '1'
    end
    local by = struct.unpack('>d', ARGV[3])
    local sum = current + by
    local bytes = encode(sum, float or ARGV[4] == '1' or not is_int32(sum))
    if max_keys > 0 then
      local refusal, reaped = admit(share, { member }, { #member + #bytes }, { stored ~= false }, tonumber(ARGV[8]), max_keys, tonumber(ARGV[11]), now_ms())
      expired = expired + reaped
      if refusal then return { refusal[1], '', expired, refusal[2] } end
    end
    if stored then
      -- An existing key keeps its TTL; the write drops the metadata and bumps the version.
      redis.call('HSET', ek, 'v', bytes, 'ver', next_version())
      redis.call('HDEL', ek, 'm')
      resize(member, #member + #bytes)
    else
      local now = now_ms()
      local fits, reaped = true, 0
      if max_keys == 0 and not over_stale then fits, reaped = make_room(1, tonumber(ARGV[8]), now) end
      expired = expired + reaped
      if not fits then return { ${Outcome.FULL}, '', expired } end
      local ttl, grace = ttl_arg(ARGV[7])
      store(ek, member, bytes, ttl, nil, now, grace)
    end
    claim(member, share)
    return { ${Outcome.OK}, bytes, expired }
  `,

  /**
   * KEYS +entries (distinct); ARGV +[ttl, max_size, members..., values..., share or '', max_keys
   * (0: no quota), max_bytes (-1: none)]. { outcome, new keys, expired, refusal message? }: all
   * written, or none when the new keys do not fit.
   */
  luastoreSetMany: `
    local n = #KEYS - 4
    local ttl, grace = ttl_arg(ARGV[2])
    local max = tonumber(ARGV[3])
    local share, max_keys, max_bytes = ARGV[4 + 2 * n], tonumber(ARGV[5 + 2 * n]), tonumber(ARGV[6 + 2 * n])
    local expired, new = 0, 0
    local members, sizes, alive = {}, {}, {}
    for i = 1, n do
      local a, e, stored = live(KEYS[4 + i], ARGV[3 + i])
      expired = expired + e
      if not stored then new = new + 1 end
      members[i], sizes[i], alive[i] = ARGV[3 + i], #ARGV[3 + i] + #ARGV[3 + n + i], a
    end
    local now = now_ms()
    if max_keys > 0 then
      local refusal, reaped = admit(share, members, sizes, alive, max, max_keys, max_bytes, now)
      expired = expired + reaped
      if refusal then return { refusal[1], new, expired, refusal[2] } end
    elseif new > 0 then
      local fits, reaped = make_room(new, max, now)
      expired = expired + reaped
      if not fits then return { ${Outcome.FULL}, new, expired } end
    end
    for i = 1, n do
      store(KEYS[4 + i], ARGV[3 + i], ARGV[3 + n + i], ttl, nil, now, grace)
      claim(ARGV[3 + i], share)
    end
    return { ${Outcome.OK}, new, expired }
  `,

  /** KEYS +[entry]; ARGV +[member, ttl]. { changed (0/1), expired }. Keeps value and metadata. */
  luastoreExpire: `
    local ek, member = KEYS[5], ARGV[2]
    local alive, expired = live(ek, member)
    if not alive then return { 0, expired } end
    local ttl, grace = ttl_arg(ARGV[3])
    -- Lists and sorted sets (native types) keep no version field, and get no stale copy.
    if redis.call('TYPE', ek).ok == 'hash' then
      redis.call('HSET', ek, 'ver', next_version())
      redis.call('HDEL', ek, 'x')
    else
      grace = 0
    end
    set_ttl(ek, member, ttl, now_ms(), grace)
    return { 1, 0 }
  `,

  /** KEYS +[entry]; ARGV +[member]. { deleted (0/1), expired }. */
  luastoreDelete: `
    -- A stale copy goes, but was not there to delete.
    if stale(KEYS[5], now_ms()) then
      redis.call('DEL', KEYS[5])
      forget(ARGV[2])
      return { 0, 1 }
    end
    if redis.call('DEL', KEYS[5]) == 1 then
      forget(ARGV[2])
      return { 1, 0 }
    end
    return { 0, forget(ARGV[2]) }
  `,

  /** KEYS +entries (distinct); ARGV +members. { deleted, expired }: all in one script. */
  luastoreDeleteMany: `
    local deleted, expired = 0, 0
    local now = now_ms()
    for i = 5, #KEYS do
      if stale(KEYS[i], now) then
        redis.call('DEL', KEYS[i])
        expired = expired + forget(ARGV[i - 3])
      elseif redis.call('DEL', KEYS[i]) == 1 then
        forget(ARGV[i - 3])
        deleted = deleted + 1
      else
        expired = expired + forget(ARGV[i - 3])
      end
    end
    return { deleted, expired }
  `,

  /**
   * ARGV +[start, stop, limit, max_expired]: start and stop are ZRANGEBYLEX bounds. Walks the index
   * in byte order from start, forgetting expired keys on the way, until limit live keys plus one more
   * (to tell hasMore), or max_expired expired keys, or the end.
   * { has_more, last key looked at, expired, key1, metadata1 or 0, key2, ... }.
   */
  luastoreList: `
    local start, stop = ARGV[2], ARGV[3]
    local limit, max_expired = tonumber(ARGV[4]), tonumber(ARGV[5])
    local out = { 0, '', 0 }
    local found, expired, stepped, last, done = 0, 0, 0, nil, false
    local now = now_ms()
    while not done do
      local members = redis.call('ZRANGEBYLEX', INDEX, start, stop, 'LIMIT', 0, limit + 1)
      for _, member in ipairs(members) do
        local ek = PREFIX .. member
        local gone = redis.call('EXISTS', ek) == 0
        if gone or stale(ek, now) then
          if expired + stepped == max_expired then out[1] = 1; done = true; break end
          -- A stale copy stays (for get_stale) but costs the page a step.
          if gone then
            forget(member)
            expired = expired + 1
          else
            stepped = stepped + 1
          end
          last = member
        else
          if found == limit then out[1] = 1; done = true; break end
          found = found + 1
          out[#out + 1] = member
          -- A list or sorted set (not a hash) has no metadata.
          local m = redis.pcall('HGET', ek, 'm')
          out[#out + 1] = type(m) == 'string' and m or 0
          last = member
        end
      end
      if #members < limit + 1 then break end
      start = '(' .. members[#members]
    end
    if last then out[2] = last end
    out[3] = expired
    return out
  `,

  /**
   * KEYS +[entry]; ARGV +[member, end ('left' or 'right'), max_size, max_items, max_item_bytes, share
   * or '', max_keys (0: no quota), max_bytes (-1: none), values...]. { outcome, expired, new length
   * | TYPE | items, item bytes?, refusal message? }.
   */
  luastoreListPush: `
    local ek, member = KEYS[5], ARGV[2]
    local t = type_of(ek)
    local expired = 0
    if t == 'none' then expired = forget(member)
    elseif t ~= 'list' then return { ${Outcome.WRONG_TYPE}, 0, t } end
    local alive = t == 'list'
    local length = alive and redis.call('LLEN', ek) or 0
    local size = alive and tonumber(redis.call('HGET', SIZES, member) or '0') or #member
    for i = 10, #ARGV do size = size + #ARGV[i] end
    length = length + #ARGV - 9
    if length > tonumber(ARGV[5]) or size - #member > tonumber(ARGV[6]) then
      return { ${Outcome.BOUNDS}, expired, length, size - #member }
    end
    local share, max_keys = ARGV[7], tonumber(ARGV[8])
    local now = now_ms()
    if max_keys > 0 then
      local refusal, reaped = admit(share, { member }, { size }, { alive }, tonumber(ARGV[4]), max_keys, tonumber(ARGV[9]), now)
      expired = expired + reaped
      if refusal then return { refusal[1], expired, refusal[2] } end
    elseif not alive then
      local fits, reaped = make_room(1, tonumber(ARGV[4]), now)
      expired = expired + reaped
      if not fits then return { ${Outcome.FULL}, expired } end
    end
    redis.call(ARGV[3] == 'left' and 'LPUSH' or 'RPUSH', ek, unpack(ARGV, 10))
    if not alive then
      redis.call('ZADD', INDEX, 0, member)
      redis.call('ZREM', EXPIRY, member)
    end
    resize(member, size)
    claim(member, share)
    return { ${Outcome.OK}, expired, length }
  `,

  /** KEYS +[entry]; ARGV +[member, end, count]. { outcome, expired, TYPE | values... }. */
  luastoreListPop: `
    local ek, member = KEYS[5], ARGV[2]
    local t = type_of(ek)
    if t == 'none' then return { ${Outcome.OK}, forget(member) } end
    if t ~= 'list' then return { ${Outcome.WRONG_TYPE}, 0, t } end
    local values = redis.call(ARGV[3] == 'left' and 'LPOP' or 'RPOP', ek, tonumber(ARGV[4]))
    local bytes = 0
    for _, v in ipairs(values) do bytes = bytes + #v end
    -- Redis deletes a list that lost its last element: the bookkeeping lets it go too.
    if redis.call('EXISTS', ek) == 0 then forget(member)
    else resize(member, tonumber(redis.call('HGET', SIZES, member)) - bytes) end
    local out = { ${Outcome.OK}, 0 }
    for i = 1, #values do out[i + 2] = values[i] end
    return out
  `,

  /** KEYS +[entry]; ARGV +[member, start, stop] (Redis LTRIM indexes). { outcome, expired, new length | TYPE }. */
  luastoreListTrim: `
    local ek, member = KEYS[5], ARGV[2]
    local t = type_of(ek)
    if t == 'none' then return { ${Outcome.OK}, forget(member), 0 } end
    if t ~= 'list' then return { ${Outcome.WRONG_TYPE}, 0, t } end
    local length = redis.call('LLEN', ek)
    local from, to = tonumber(ARGV[3]), tonumber(ARGV[4])
    if from < 0 then from = from + length end
    if from < 0 then from = 0 end
    if to < 0 then to = to + length end
    if to >= length then to = length - 1 end
    if from > to or from >= length then
      redis.call('DEL', ek)
      forget(member)
      return { ${Outcome.OK}, 0, 0 }
    end
    local bytes = 0
    if from > 0 then for _, v in ipairs(redis.call('LRANGE', ek, 0, from - 1)) do bytes = bytes + #v end end
    if to < length - 1 then for _, v in ipairs(redis.call('LRANGE', ek, to + 1, -1)) do bytes = bytes + #v end end
    if bytes == 0 and from == 0 and to == length - 1 then return { ${Outcome.OK}, 0, length } end
    redis.call('LTRIM', ek, from, to)
    resize(member, tonumber(redis.call('HGET', SIZES, member)) - bytes)
    return { ${Outcome.OK}, 0, to - from + 1 }
  `,

  /**
   * KEYS +[entry]; ARGV +[member, max_size, max_items, max_item_bytes, share or '', max_keys (0: no
   * quota), max_bytes (-1: none), score1, member1, score2, member2, ...] with scores as ZADD takes
   * them. { outcome, expired, new members | TYPE | items, item bytes?, refusal message? }.
   */
  luastoreZsetAdd: `
    local ek, member = KEYS[5], ARGV[2]
    local t = type_of(ek)
    local expired = 0
    if t == 'none' then expired = forget(member)
    elseif t ~= 'zset' then return { ${Outcome.WRONG_TYPE}, 0, t } end
    local alive = t == 'zset'
    local card = alive and redis.call('ZCARD', ek) or 0
    local size = alive and tonumber(redis.call('HGET', SIZES, member) or '0') or #member
    local seen = {}
    for i = 10, #ARGV, 2 do
      local m = ARGV[i]
      if not seen[m] then
        seen[m] = true
        if not alive or not redis.call('ZSCORE', ek, m) then
          card = card + 1
          size = size + #m + ${SCORE_BYTES}
        end
      end
    end
    if card > tonumber(ARGV[4]) or size - #member > tonumber(ARGV[5]) then
      return { ${Outcome.BOUNDS}, expired, card, size - #member }
    end
    local refusal, e = collection_room(member, alive, size, ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[3]), tonumber(ARGV[8]))
    expired = expired + e
    if refusal then return { refusal[1], expired, refusal[2] } end
    local added = redis.call('ZADD', ek, unpack(ARGV, 9))
    collection_written(member, alive, size, ARGV[6])
    return { ${Outcome.OK}, expired, added }
  `,

  /**
   * KEYS +[entry]; ARGV +[member, max_size, max_items, max_item_bytes, share or '', max_keys,
   * max_bytes, by, set member]. { outcome, expired, new score (a string) | TYPE | ... }.
   */
  luastoreZsetIncr: `
    local ek, member = KEYS[5], ARGV[2]
    local t = type_of(ek)
    local expired = 0
    if t == 'none' then expired = forget(member)
    elseif t ~= 'zset' then return { ${Outcome.WRONG_TYPE}, 0, t } end
    local alive = t == 'zset'
    local m = ARGV[10]
    local old = alive and redis.call('ZSCORE', ek, m) or false
    local score = tonumber(old or '0') + tonumber(ARGV[9])
    if score ~= score then return { ${Outcome.NOT_A_NUMBER}, expired } end
    local card = (alive and redis.call('ZCARD', ek) or 0) + (old and 0 or 1)
    local size = (alive and tonumber(redis.call('HGET', SIZES, member) or '0') or #member) + (old and 0 or #m + ${SCORE_BYTES})
    if card > tonumber(ARGV[4]) or size - #member > tonumber(ARGV[5]) then
      return { ${Outcome.BOUNDS}, expired, card, size - #member }
    end
    local refusal, e = collection_room(member, alive, size, ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[3]), tonumber(ARGV[8]))
    expired = expired + e
    if refusal then return { refusal[1], expired, refusal[2] } end
    local new = redis.call('ZINCRBY', ek, ARGV[9], m)
    collection_written(member, alive, size, ARGV[6])
    return { ${Outcome.OK}, expired, new }
  `,

  /** KEYS +[entry]; ARGV +[member, set members...]. { outcome, expired, removed | TYPE }. */
  luastoreZsetRemove: `
    local ek, member = KEYS[5], ARGV[2]
    local t = type_of(ek)
    if t == 'none' then return { ${Outcome.OK}, forget(member), 0 } end
    if t ~= 'zset' then return { ${Outcome.WRONG_TYPE}, 0, t } end
    local removed, bytes = 0, 0
    for i = 3, #ARGV do
      if redis.call('ZREM', ek, ARGV[i]) == 1 then
        removed = removed + 1
        bytes = bytes + #ARGV[i] + ${SCORE_BYTES}
      end
    end
    -- Redis deletes a set that lost its last member: the bookkeeping lets it go too.
    if redis.call('EXISTS', ek) == 0 then forget(member)
    elseif removed > 0 then resize(member, tonumber(redis.call('HGET', SIZES, member)) - bytes) end
    return { ${Outcome.OK}, 0, removed }
  `,

  /**
   * KEYS +[checked..., set..., deleted..., incremented...] entries; ARGV +[max_size, ttl, share or '',
   * max_keys (0: no quota), max_bytes (-1: none), checks, sets, deletes, incrs, then per check: member,
   * version ('' = must be missing); per set: member, value; per delete: member; per incr: member,
   * by (float64 bytes), by is float]. { outcome, expired, failed check's index | incr values... }.
   */
  luastoreAtomic: `
    local max, share = tonumber(ARGV[2]), ARGV[4]
    local ttl, grace = ttl_arg(ARGV[3])
    local max_keys, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
    local nc, ns, nd, ni = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
    local a, k = 11, 5
    local expired = 0
    for i = 1, nc do
      local ek, member, version = KEYS[k], ARGV[a], ARGV[a + 1]
      local alive, e = live(ek, member)
      expired = expired + e
      -- A list or sorted set has no version field: it never matches one.
      local ver = alive and redis.pcall('HGET', ek, 'ver') or false
      if type(ver) ~= 'string' then ver = false end
      if (version == '' and alive) or (version ~= '' and ver ~= version) then return { ${Outcome.CONFLICT}, expired, i } end
      a, k = a + 2, k + 1
    end
    local members, sizes, alive, values, eks = {}, {}, {}, {}, {}
    for i = 1, ns do
      local ek, member, value = KEYS[k], ARGV[a], ARGV[a + 1]
      local l, e = live(ek, member)
      expired = expired + e
      local n = #members + 1
      members[n], sizes[n], alive[n], values[n], eks[n] = member, #member + #value, l, value, ek
      a, k = a + 2, k + 1
    end
    local dels, del_members = {}, {}
    for i = 1, nd do
      dels[i], del_members[i] = KEYS[k], ARGV[a]
      a, k = a + 1, k + 1
    end
    local first_incr = #members + 1
    local out = {}
    for i = 1, ni do
      local ek, member = KEYS[k], ARGV[a]
      local stored = redis.call('HGET', ek, 'v')
      if stored and stale(ek, now_ms()) then stored = false end
      local current, float = 0, false
      if stored then
        current, float = decode(stored)
        if current == nil then return { ${Outcome.NOT_A_NUMBER}, expired, i } end
      else
        expired = expired + forget(member)
      end
      local sum = current + struct.unpack('>d', ARGV[a + 1])
      local bytes = encode(sum, float or ARGV[a + 2] == '1' or not is_int32(sum))
      local n = #members + 1
      members[n], sizes[n], alive[n], values[n], eks[n] = member, #member + #bytes, stored ~= false, bytes, ek
      out[i] = bytes
      a, k = a + 3, k + 1
    end
    local now = now_ms()
    if max_keys > 0 then
      local refusal, reaped = admit(share, members, sizes, alive, max, max_keys, max_bytes, now)
      expired = expired + reaped
      if refusal then return { refusal[1], expired, refusal[2] } end
    else
      local new = 0
      for i = 1, #members do if not alive[i] then new = new + 1 end end
      for i = 1, nd do if redis.call('EXISTS', dels[i]) == 1 then new = new - 1 end end
      if new > 0 then
        local fits, reaped = make_room(new, max, now)
        expired = expired + reaped
        if not fits then return { ${Outcome.FULL}, expired, new } end
      end
    end
    for i = 1, nd do
      if redis.call('DEL', dels[i]) == 1 then forget(del_members[i]) else expired = expired + forget(del_members[i]) end
    end
    for i = 1, #members do
      if i >= first_incr and alive[i] then
        -- An existing number keeps its TTL; the write drops the metadata and bumps the version.
        redis.call('HSET', eks[i], 'v', values[i], 'ver', next_version())
        redis.call('HDEL', eks[i], 'm')
        resize(members[i], sizes[i])
      else
        store(eks[i], members[i], values[i], ttl, nil, now, grace)
      end
      claim(members[i], share)
    end
    local reply = { ${Outcome.OK}, expired }
    for i = 1, ni do reply[i + 2] = out[i] end
    return reply
  `,

  /** ARGV +[limit]. { forgotten, looked at }: one batch of the periodic sweep. */
  luastoreSweep: `
    local forgotten, looked = reap_due(now_ms(), tonumber(ARGV[2]))
    return { forgotten, looked }
  `,

  /** ARGV +[limit]. Deletes up to limit keys; returns how many (the caller repeats until 0). */
  luastoreClear: `
    local members = redis.call('ZRANGE', INDEX, 0, tonumber(ARGV[2]) - 1)
    for _, member in ipairs(members) do
      redis.call('DEL', PREFIX .. member)
      forget(member)
    end
    return #members
  `,

  /** ARGV +[limit]. Deletes up to limit keys: { live keys deleted, keys Redis had expired }. */
  luastoreFlush: `
    local members = redis.call('ZRANGE', INDEX, 0, tonumber(ARGV[2]) - 1)
    local live = 0
    for _, member in ipairs(members) do
      live = live + redis.call('DEL', PREFIX .. member)
      forget(member)
    end
    return { live, #members - live }
  `,

  /** ARGV +[share]. { keys, bytes } of that share. */
  luastoreShare: `
    local u = redis.call('HMGET', SHARES, 'k:' .. ARGV[2], 'b:' .. ARGV[2])
    return { tonumber(u[1] or '0'), tonumber(u[2] or '0') }
  `,

  /** { share1, keys1, bytes1, ... } of every share holding keys. */
  luastoreShares: `
    local all = redis.call('HGETALL', SHARES)
    local usage, order = {}, {}
    for i = 1, #all, 2 do
      local kind, name = string.sub(all[i], 1, 1), string.sub(all[i], 3)
      if not usage[name] then usage[name] = { 0, 0 }; order[#order + 1] = name end
      usage[name][kind == 'k' and 1 or 2] = tonumber(all[i + 1])
    end
    local out = {}
    for _, name in ipairs(order) do
      out[#out + 1] = name; out[#out + 1] = usage[name][1]; out[#out + 1] = usage[name][2]
    end
    return out
  `,

  /**
   * ARGV +[stale_for]. { live keys, bytes, the server's used_memory, its maxmemory (0 = no bound) };
   * live keys leave out stale copies (PEXPIRE'd within stale_for from now), which bytes counts.
   */
  luastoreCapacity: `
    local memory = redis.call('INFO', 'memory')
    return {
      live_count(tonumber(ARGV[2])), tonumber(redis.call('HGET', META, 'bytes') or '0'),
      tonumber(string.match(memory, 'used_memory:(%d+)') or '0'), tonumber(string.match(memory, 'maxmemory:(%d+)') or '0'),
    }
  `,

  /** ARGV +[stale_for, or 0 to count them]. { keys held (expired ones not yet forgotten included, stale copies unless stale_for), bytes }. */
  luastoreTotals: `
    return { live_count(tonumber(ARGV[2])), tonumber(redis.call('HGET', META, 'bytes') or '0') }
  `,
} as const;

export type ScriptName = keyof typeof BODIES;

/** The full source of each script: the shared helpers and its body. */
export const SCRIPTS: Readonly<Record<ScriptName, string>> = Object.fromEntries(
  Object.entries(BODIES).map(([name, body]) => [name, `${PRELUDE}${name === "luastoreIncr" || name === "luastoreAtomic" ? NUMBERS : ""}${body}`]),
) as Record<ScriptName, string>;

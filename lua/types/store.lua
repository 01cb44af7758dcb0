---@meta store
-- LuaLS annotations for luastore's `store` module (types only; the host implements it).
-- Point lua-language-server at this folder: `.luarc.json` → "workspace.library": ["lua/types"].

---A value a store keeps: booleans, strings (any bytes), integers, floats, and tables of those
---(an array when its keys are exactly 1..n, else a map with string or number keys). Not nil,
---functions, userdata, coroutines or cyclic tables. Every `get` returns a fresh copy.
---@alias store.Value boolean|string|number|table

---@class store.ListOptions
---@field prefix? string Only keys starting with this prefix (checked by policy as `meta.prefix`).
---@field after? string Start after this key (a previous page's `cursor`).
---@field limit? integer Keys per page: default 100, at most 1000.

---@class store.ListPage
---@field keys string[] Live keys in byte order (a page may be short, even empty, while `has_more`).
---@field cursor? string Feeds `after` for the next page; nil on the last page.
---@field has_more boolean Go on while this is true.
---@field metadata? table<string, table> Metadata of listed keys that have some.

---@class store.Entry
---@field key string
---@field value store.Value
---@field version string Changes on every write; compare for equality only.
---@field expires_at? number Seconds since the epoch; nil when the key does not expire.
---@field metadata? table

---@class store.PutOptions
---@field ttl? number Seconds (millisecond precision); nil or 0 = no expiry.
---@field expires_at? number Absolute expiry, seconds since the epoch (not with `ttl`); a time not in the future is INVALID.
---@field only_if_absent? boolean Write only when the key is missing (else ALREADY_EXISTS).
---@field if_version? string Write only when the key has this version (else CONFLICT, or NOT_FOUND when missing).
---@field metadata? table A small table (at most 1 KiB encoded) returned by `entry` and `list`.

---@class store.SetManyOptions
---@field ttl? number Seconds (millisecond precision).
---@field expires_at? number Absolute expiry, seconds since the epoch (not with `ttl`).

---@class store.Info
---@field id string
---@field kind string
---@field size integer Live entries.
---@field bytes integer Key, value and metadata bytes held.
---@field free_bytes? integer Bytes the backend can still take, where it bounds bytes (Redis with maxmemory).
---@field max_size integer
---@field eviction string
---@field quota? store.ShareInfo Present when the store has a quota: the caller's own share.

---@class store.ShareInfo
---@field by string The actor field naming shares, e.g. "actor.meta.tenant".
---@field share string The caller's share.
---@field keys integer Keys the share holds.
---@field bytes integer Key, value and metadata bytes the share holds.
---@field max_keys integer
---@field max_bytes? integer

---A pooled handle on one registry entry. Every method answers `value` or `nil, err` and never
---raises; a released handle answers `nil, err` (INVALID "store released").
---@class store.Store
local Store = {}

---The value, or nil when the key is missing or expired.
---@param key string
---@return store.Value|nil value
---@return errors.Error|nil err
function Store:get(key) end

---The value and `false` for a live key; the last value and `true` for a key that expired less than
---the store's `stale_for` ago (OpenResty's `get_stale`); nil otherwise. Without `stale_for` it answers
---as `get` does.
---@param key string
---@return store.Value|nil value
---@return boolean|errors.Error|nil is_stale `is_stale` on success, `err` on failure
function Store:get_stale(key) end

---Stores `value`; without `ttl` (or with 0) the key never expires (an earlier TTL is removed).
---@param key string
---@param value store.Value
---@param ttl? number Seconds, millisecond precision.
---@return true|nil ok
---@return errors.Error|nil err
function Store:set(key, value, ttl) end

---@param key string
---@return boolean|nil exists
---@return errors.Error|nil err
function Store:has(key) end

---@param key string
---@return boolean|nil existed
---@return errors.Error|nil err
function Store:delete(key) end

---Set-if-absent (locks, de-duplication): true when written, false when the key exists.
---@param key string
---@param value store.Value
---@param ttl? number
---@return boolean|nil written
---@return errors.Error|nil err
function Store:add(key, value, ttl) end

---Set-if-present: true when written, false when the key is absent. Replaces the TTL like `set`.
---@param key string
---@param value store.Value
---@param ttl? number
---@return boolean|nil written
---@return errors.Error|nil err
function Store:replace(key, value, ttl) end

---Adds `by` (default 1) to the number at `key` atomically and returns the new number. A missing
---key starts from `init` (default 0) and gets `init_ttl` only when created; an existing key keeps
---its TTL. A value that is not a number is INVALID.
---@param key string
---@param by? number
---@param init? number
---@param init_ttl? number
---@return number|nil value
---@return errors.Error|nil err
function Store:incr(key, by, init, init_ttl) end

---Seconds left (a float), 0 for no expiry, nil when the key is missing.
---@param key string
---@return number|nil seconds
---@return errors.Error|nil err
function Store:ttl(key) end

---Sets the expiry (`ttl` > 0) or removes it (`ttl` = 0). False when the key is missing.
---@param key string
---@param ttl number
---@return boolean|nil found
---@return errors.Error|nil err
function Store:expire(key, ttl) end

---Sets an absolute expiry: `expires_at` in seconds since the epoch (as `time.now()` gives). False
---when the key is missing; a time that is not in the future is INVALID and changes nothing.
---@param key string
---@param expires_at number
---@return boolean|nil found
---@return errors.Error|nil err
function Store:expire_at(key, expires_at) end

---Values by key (missing keys absent); every key is policy-checked; at most 1000 keys.
---@param keys string[]
---@return table<string, store.Value>|nil values
---@return errors.Error|nil err
function Store:get_many(keys) end

---Writes every key → value or none (validated, checked and sized before anything is written);
---at most 10 000 entries.
---@param values table<string, store.Value>
---@param ttl_or_options? number|store.SetManyOptions A TTL in seconds, or `{ ttl = }` / `{ expires_at = }`.
---@return true|nil ok
---@return errors.Error|nil err
function Store:set_many(values, ttl_or_options) end

---Deletes every key given that is live, all in one step, and answers how many it deleted. Every
---key is policy-checked (`store.key.delete`) before anything is deleted; at most 10 000 keys.
---@param keys string[]
---@return integer|nil deleted
---@return errors.Error|nil err
function Store:delete_many(keys) end

---One page of keys in byte order; feed `cursor` to `after` for the next page.
---@param options? store.ListOptions
---@return store.ListPage|nil page
---@return errors.Error|nil err
function Store:list(options) end

---The key's value with its version, expiry and metadata, or nil when missing.
---@param key string
---@return store.Entry|nil entry
---@return errors.Error|nil err
function Store:entry(key) end

---A conditional write (compare-and-set): see store.PutOptions.
---@param key string
---@param value store.Value
---@param options? store.PutOptions
---@return true|nil ok
---@return errors.Error|nil err ALREADY_EXISTS, CONFLICT (retryable), NOT_FOUND, INVALID, ...
function Store:put(key, value, options) end

---A view scoped to `prefix .. ":"` (nestable); keys it returns are relative. Policies see full keys.
---Releasing the view releases the handle it shares.
---@param prefix string
---@return store.Store|nil view
---@return errors.Error|nil err
function Store:namespace(prefix) end

---Removes every key of the store (action `store.flush`) and answers how many live keys it removed.
---INVALID on a namespace view: the whole store would go, not the view's keys.
---@return integer|nil removed
---@return errors.Error|nil err
function Store:flush() end

---@return store.Info|nil info
---@return errors.Error|nil err
function Store:info() end

---Pushes one or more values (at most 1000) onto the head of the list at `key` (the last value
---ends up first, as Redis LPUSH), creating the list (no TTL) when missing.
---@param key string
---@param ... store.Value
---@return integer|nil length The new length.
---@return errors.Error|nil err INVALID (not a list, bounds), UNAVAILABLE (full), RATE_LIMITED (quota), ...
function Store:lpush(key, ...) end

---Pushes one or more values (at most 1000) onto the tail of the list at `key`; see lpush.
---@param key string
---@param ... store.Value
---@return integer|nil length The new length.
---@return errors.Error|nil err
function Store:rpush(key, ...) end

---Removes and returns the first element (nil when empty), or with `n` (1..1000) an array of up
---to `n` elements. A list that loses its last element is deleted.
---@param key string
---@param n? integer
---@return store.Value|store.Value[]|nil value
---@return errors.Error|nil err
function Store:lpop(key, n) end

---Removes and returns the last element (nil when empty), or with `n` an array of up to `n`, last first.
---@param key string
---@param n? integer
---@return store.Value|store.Value[]|nil value
---@return errors.Error|nil err
function Store:rpop(key, n) end

---The number of elements; 0 when the key is missing.
---@param key string
---@return integer|nil length
---@return errors.Error|nil err
function Store:llen(key) end

---Elements `start..stop`, both included: 1 is the first, -1 the last (0 is INVALID).
---@param key string
---@param start? integer Default 1.
---@param stop? integer Default -1.
---@return store.Value[]|nil values
---@return errors.Error|nil err
function Store:lrange(key, start, stop) end

---Keeps elements `start..stop` (indexes as lrange) and removes the rest.
---@param key string
---@param start integer
---@param stop integer
---@return integer|nil length The new length (0: the key is gone).
---@return errors.Error|nil err
function Store:ltrim(key, start, stop) end

---@class store.ZrangeOptions
---@field rev? boolean From the highest score.
---@field limit? integer At most this many members.
---@field with_scores? boolean Answer `{ member=, score= }` tables instead of members.

---@class store.ZrangeRange
---@field start? integer First rank (1 = the lowest, or the highest with rev; -1 the last). Default 1.
---@field stop? integer Last rank, included. Default -1.
---@field min? number Lowest score, included (ranges by score instead of rank). Default -math.huge.
---@field max? number Highest score, included. Default math.huge.

---Sets the score of each member (member, score pairs; at most 1000), adding new members.
---@param key string
---@param member string
---@param score number
---@param ... string|number More member, score pairs.
---@return integer|nil added How many members were new.
---@return errors.Error|nil err
function Store:zadd(key, member, score, ...) end

---Adds `by` to the member's score (a new member starts from 0).
---@param key string
---@param member string
---@param by number
---@return number|nil score The new score.
---@return errors.Error|nil err
function Store:zincr(key, member, by) end

---@param key string
---@param member string
---@return number|nil score nil when the member is missing.
---@return errors.Error|nil err
function Store:zscore(key, member) end

---The member's rank from 1 (the lowest score; the highest with rev), or nil.
---@param key string
---@param member string
---@param options? { rev?: boolean }
---@return integer|nil rank
---@return errors.Error|nil err
function Store:zrank(key, member, options) end

---Members by rank ({start=, stop=}) or by score ({min=, max=}), ordered by score then member bytes.
---@param key string
---@param range store.ZrangeRange
---@param options? store.ZrangeOptions
---@return string[]|{ member: string, score: number }[]|nil members
---@return errors.Error|nil err
function Store:zrange(key, range, options) end

---Removes members; a sorted set that loses its last member is deleted.
---@param key string
---@param member string
---@param ... string
---@return integer|nil removed
---@return errors.Error|nil err
function Store:zrem(key, member, ...) end

---@param key string
---@return integer|nil count Members of the sorted set; 0 when missing.
---@return errors.Error|nil err
function Store:zcard(key) end

---@class store.Atomic
---@field checks? table<string, string|false> Each key must have this version (from entry), or not exist (false).
---@field set? table<string, store.Value>
---@field delete? string[]
---@field incr? table<string, number> A missing key starts from 0.
---@field ttl? number Seconds, for the keys set and the keys incr creates.

---Applies a multi-key write all or nothing. A failed check answers nil, err CONFLICT (retryable)
---whose `err:details().key` names the key.
---@param transaction store.Atomic
---@return table<string, number>|nil incr Each incr key's new number.
---@return errors.Error|nil err
function Store:atomic(transaction) end

---Gives the handle back to the pool (idempotent). Handles a run keeps are released when it ends.
---@return true
function Store:release() end

---@class storelib
local store = {}

---Acquires a pooled handle on a registry entry (`"<namespace>:<name>"`), after the policy check
---`store.get`. Errors: INVALID, NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE (pool exhausted, retryable),
---RATE_LIMITED (the run already holds maxHandles handles: release one first).
---@param id string
---@return store.Store|nil handle
---@return errors.Error|nil err
function store.get(id) end

return store

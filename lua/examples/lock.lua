-- lock.lua: a lease lock built on the store's set-if-absent `add`, with a TTL so a crashed
-- holder cannot keep it forever, and a safe release that never frees someone else's lease.
--
--   local lock = require("lock")
--   local lease, err = lock.acquire("app:cache", "acme:invoice:42", 30)   -- 30 s lease
--   if not lease then return nil, err end                                 -- Conflict: held by another run
--   ... critical section ...
--   lease:release()
--
-- acquire: `add(key, token, ttl)` succeeds for exactly one caller while the key is absent; a
-- released lock (the RELEASED tombstone) is taken over with compare-and-set.
-- release: read the entry; when it still holds our token, overwrite it with RELEASED by
-- compare-and-set (`put` with `if_version`) and a short TTL. If the lease expired and another
-- run took it in between, the version differs and the CAS fails: we never release a lease we
-- do not own (a plain `delete` after the check would).
local store = require("store")
local time = require("time")
local errors = require("errors")

local M = {}

local Lease = {}
Lease.__index = Lease

local RELEASED = "\0released"
local counter = 0
local function new_token()
  counter = counter + 1
  return ("%.6f:%d:%d"):format(time.now(), counter, math.random(1, 2^30))
end

--- Tries once to take the lock `key` of store `store_id` for `ttl` seconds.
--- Returns a lease, or nil, err (Conflict, retryable, when another holder has it).
function M.acquire(store_id, key, ttl)
  assert(type(ttl) == "number" and ttl > 0, "lock.acquire needs a ttl in seconds")
  local handle, err = store.get(store_id)
  if not handle then return nil, err end
  local token = new_token()
  local ok, add_err = handle:add(key, token, ttl)
  if ok == false then
    -- Held, or released a moment ago: take a released lock over atomically.
    local e = handle:entry(key)
    if e and e.value == RELEASED then
      ok, add_err = handle:put(key, token, { if_version = e.version, ttl = ttl })
      if ok == nil and errors.is(add_err, errors.CONFLICT) then ok, add_err = false, nil end
    end
  end
  if ok == nil then
    handle:release()
    return nil, add_err
  end
  if not ok then
    handle:release()
    return nil, errors.new({ kind = errors.CONFLICT, message = "lock " .. key .. " is held", retryable = true })
  end
  return setmetatable({ handle = handle, key = key, token = token, ttl = ttl }, Lease)
end

--- Waits for the lock, retrying every `interval` seconds until `timeout` seconds passed.
function M.acquire_wait(store_id, key, ttl, timeout, interval)
  local deadline = time.now() + timeout
  while true do
    local lease, err = M.acquire(store_id, key, ttl)
    if lease or not errors.is(err, errors.CONFLICT) then return lease, err end
    if time.now() >= deadline then return nil, err end
    time.sleep(interval or 0.05)
  end
end

--- True while this lease still holds the lock.
function Lease:held()
  local e = self.handle:entry(self.key)
  return e ~= nil and e.value == self.token
end

--- Extends the lease by its ttl when still held; false when it was lost.
function Lease:extend()
  local e = self.handle:entry(self.key)
  if not e or e.value ~= self.token then return false end
  local ok = self.handle:put(self.key, self.token, { if_version = e.version, ttl = self.ttl })
  return ok == true
end

--- Releases the lock if this lease still holds it. Returns true when it did.
function Lease:release()
  local released = false
  local e = self.handle:entry(self.key)
  if e and e.value == self.token then
    released = self.handle:put(self.key, RELEASED, { if_version = e.version, ttl = 1 }) == true
  end
  self.handle:release()
  return released
end

return M

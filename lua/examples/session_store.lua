-- session_store.lua: login sessions with a sliding idle timeout and an absolute lifetime.
--
--   local sessions = require("session_store")
--   local s = assert(sessions.open({ prefix = "acme:" }))   -- keys "acme:session:<id>" in app:sessions
--   local id = assert(s:create("user-42", { theme = "dark" }))
--   local session = s:get(id)          -- { user =, data =, created_at =, seen_at = } or nil once expired
--   s:touch(id)                        -- a request came in: the idle timeout starts again
--   s:update(id, { theme = "light" })  -- merges into data (and counts as activity)
--   s:destroy(id)                      -- logout
--   s:close()
--
-- A session expires after `idle_ttl` seconds without activity and never lives longer than
-- `max_age`, however often it is touched. Both are store TTLs: a touch rewrites the session with
-- a fresh TTL ("touch by rewrite"), capped by what is left of its lifetime. Time is the host's
-- clock (`time.now()`), which `luastore test` replaces with a virtual one.
local store = require("store")
local time = require("time")

local M = {}

M.DEFAULT_STORE = "app:sessions"
M.DEFAULT_IDLE_TTL = 30 * 60 -- 30 minutes
M.DEFAULT_MAX_AGE = 8 * 60 * 60 -- 8 hours

local Sessions = {}
Sessions.__index = Sessions

--- Opens the session store. options: store (id), prefix (e.g. the tenant's "acme:"), idle_ttl, max_age.
--- Returns the sessions object, or nil, err when the store cannot be opened.
function M.open(options)
  options = options or {}
  local handle, err = store.get(options.store or M.DEFAULT_STORE)
  if not handle then return nil, err end
  return setmetatable({
    handle = handle,
    prefix = (options.prefix or "") .. "session:",
    idle_ttl = options.idle_ttl or M.DEFAULT_IDLE_TTL,
    max_age = options.max_age or M.DEFAULT_MAX_AGE,
  }, Sessions)
end

-- Not a secret generator: a platform that needs unguessable IDs passes its own to create().
local function random_id()
  return ("%08x%08x%08x"):format(math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

function Sessions:key(id)
  return self.prefix .. id
end

--- Seconds the session may still live: the idle timeout, cut short by its absolute lifetime.
function Sessions:ttl_for(session, now)
  return math.min(self.idle_ttl, session.created_at + self.max_age - now)
end

--- Starts a session for `user` with `data` (a table); `id` is generated when not given.
--- Returns the id, or nil, err.
function Sessions:create(user, data, id)
  if id == nil then
    repeat
      id = random_id()
      local taken, err = self.handle:has(self:key(id))
      if taken == nil then return nil, err end
    until not taken
  end
  local now = time.now()
  local session = { user = user, data = data or {}, created_at = now, seen_at = now }
  local ok, err = self.handle:set(self:key(id), session, self:ttl_for(session, now))
  if not ok then return nil, err end
  return id
end

--- The session, or nil when it does not exist or expired (nil, err when the store refused).
function Sessions:get(id)
  return self.handle:get(self:key(id))
end

--- Rewrites a live session with `change` applied, as activity: a fresh idle TTL.
--- Returns true, false when the session is gone, or nil, err.
function Sessions:rewrite(id, change)
  local session, err = self:get(id)
  if session == nil then
    if err then return nil, err end
    return false
  end
  local now = time.now()
  local ttl = self:ttl_for(session, now)
  if ttl <= 0 then
    self.handle:delete(self:key(id))
    return false
  end
  if change then change(session) end
  session.seen_at = now
  local ok, set_err = self.handle:set(self:key(id), session, ttl)
  if not ok then return nil, set_err end
  return true
end

--- Marks activity: the idle timeout starts again (never past max_age).
function Sessions:touch(id)
  return self:rewrite(id, nil)
end

--- Merges `fields` into the session's data; counts as activity.
function Sessions:update(id, fields)
  return self:rewrite(id, function(session)
    for k, v in pairs(fields) do session.data[k] = v end
  end)
end

--- Ends the session. Returns true when it existed.
function Sessions:destroy(id)
  return self.handle:delete(self:key(id))
end

function Sessions:close()
  self.handle:release()
end

return M

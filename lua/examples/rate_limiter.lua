-- rate_limiter.lua: a fixed-window rate limiter on the store's atomic counter.
--
--   local limiter = require("rate_limiter")
--   local api = assert(limiter.new({ limit = 100, window = 60, prefix = "acme:" }))
--   local allowed, info = api:take("user-42")   -- info = { count =, remaining =, reset_in = }
--   if not allowed then return { status = 429, retry_after = info.reset_in } end
--   api:close()
--
-- Each window has its own counter, `<prefix>rl:<key>:<window start>`, made by `incr` with an
-- `init_ttl` of the time left in the window, so counters of past windows expire by themselves
-- and `incr` keeps every run's count exact even when many run at once.
local store = require("store")
local time = require("time")

local M = {}

M.DEFAULT_STORE = "app:cache"

local Limiter = {}
Limiter.__index = Limiter

--- options: limit (requests per window), window (seconds), store (id), prefix (e.g. "acme:").
function M.new(options)
  assert(type(options) == "table" and options.limit and options.window, "rate_limiter.new needs { limit =, window = }")
  local handle, err = store.get(options.store or M.DEFAULT_STORE)
  if not handle then return nil, err end
  return setmetatable({
    handle = handle,
    limit = options.limit,
    window = options.window,
    prefix = (options.prefix or "") .. "rl:",
  }, Limiter)
end

--- Counts `cost` (default 1) against `key` in the current window.
--- Returns allowed (boolean) and { count =, remaining =, reset_in = }, or nil, err.
function Limiter:take(key, cost)
  local now = time.now()
  local start = math.floor(now / self.window) * self.window
  local reset_in = start + self.window - now
  local counter = ("%s%s:%.0f"):format(self.prefix, key, start)
  local count, err = self.handle:incr(counter, cost or 1, 0, reset_in)
  if count == nil then return nil, err end
  local info = { count = count, remaining = math.max(0, self.limit - count), reset_in = reset_in }
  return count <= self.limit, info
end

function Limiter:close()
  self.handle:release()
end

return M

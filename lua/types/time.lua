---@meta time
-- LuaLS annotations for luastore's `time` module. Under `luastore test` both functions use the
-- test file's virtual clock (see `test.clock`): `time.sleep(3600)` returns at once.

---@class timelib
local time = {}

---Seconds since the Unix epoch as a float, from the host's clock.
---@return number
function time.now() end

---Suspends the script for `seconds` without blocking the host; counts toward the run's
---wall-clock limit. Returns true, or nil, err (INVALID for a negative or non-finite time).
---@param seconds number
---@return true|nil ok
---@return errors.Error|nil err
function time.sleep(seconds) end

return time

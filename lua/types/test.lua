---@meta test
-- LuaLS annotations for the `test` module, available when scripts run under `luastore test`.
-- Assertion names follow Wippy's `wippy/test`. A failed assertion raises
-- "file:line: <name> failed[: msg]" with what was expected and what came, at the line of the
-- assertion; the optional `msg` says what the check was about.

---@class testlib
local test = {}

-- ---- structure --------------------------------------------------------------------------------

---Groups tests (and hooks); `body` runs at once, while the file loads. Nestable.
---@param name string
---@param body fun()
function test.describe(name, body) end

---Declares a test: it passes when `fn` returns and fails when it raises.
---@param name string
---@param fn fun()
function test.it(name, fn) end

---Declares a test that is reported as skipped and not run.
---@param name string
---@param fn fun()
function test.it_skip(name, fn) end

---Runs `fn` once before the first test of the enclosing describe (or file).
---@param fn fun()
function test.before_all(fn) end

---Runs `fn` once after the last test of the enclosing describe (or file).
---@param fn fun()
function test.after_all(fn) end

---Runs `fn` before each test of the enclosing describe (or file), outer hooks first.
---@param fn fun()
function test.before_each(fn) end

---Runs `fn` after each test of the enclosing describe (or file), inner hooks first, also after a failure.
---@param fn fun()
function test.after_each(fn) end

-- ---- assertions -------------------------------------------------------------------------------

---`actual` equals `expected`: deep equality for tables (keys and values), `==` otherwise.
---A failure lists each differing path (`at .user.roles[2]: expected "dev", actual "ops"`).
---@param actual any
---@param expected any
---@param msg? string
function test.eq(actual, expected, msg) end

---`actual` is not (deeply) equal to `unexpected`.
---@param actual any
---@param unexpected any
---@param msg? string
function test.neq(actual, unexpected, msg) end

---`value` is truthy (neither nil nor false).
---@param value any
---@param msg? string
function test.ok(value, msg) end

---Fails the test.
---@param msg? string
function test.fail(msg) end

---@param value any
---@param msg? string
function test.is_nil(value, msg) end

---@param value any
---@param msg? string
function test.not_nil(value, msg) end

---`value == true`.
---@param value any
---@param msg? string
function test.is_true(value, msg) end

---`value == false`.
---@param value any
---@param msg? string
function test.is_false(value, msg) end

---@param value any
---@param msg? string
function test.is_string(value, msg) end

---@param value any
---@param msg? string
function test.is_number(value, msg) end

---@param value any
---@param msg? string
function test.is_table(value, msg) end

---A string containing `needle` as plain text, or a table with a value deep-equal to `needle`.
---@param haystack string|table
---@param needle any
---@param msg? string
function test.contains(haystack, needle, msg) end

---A string matching the Lua pattern (`string.find`).
---@param s string
---@param pattern string
---@param msg? string
function test.matches(s, pattern, msg) end

---A table with `t[key] ~= nil`.
---@param t table
---@param key any
---@param msg? string
function test.has_key(t, key, msg) end

---`#value == n` for a string or table.
---@param value string|table
---@param n integer
---@param msg? string
function test.len(value, n, msg) end

---`a > b` (numbers, or strings).
---@param a number|string
---@param b number|string
---@param msg? string
function test.gt(a, b, msg) end

---`a >= b`.
---@param a number|string
---@param b number|string
---@param msg? string
function test.gte(a, b, msg) end

---`a < b`.
---@param a number|string
---@param b number|string
---@param msg? string
function test.lt(a, b, msg) end

---`a <= b`.
---@param a number|string
---@param b number|string
---@param msg? string
function test.lte(a, b, msg) end

---Calls `fn`, which must raise; when `pattern` is given, the error's message must match it (a Lua
---pattern; an `errors` value matches by its message). Returns the error value.
---@param fn fun()
---@param pattern? string
---@param msg? string
---@return any err
function test.throws(fn, pattern, msg) end

---For `value, err` results: fails when `err` is not nil, else returns `value`.
---`local s = test.no_error(store.get("app:cache"))`
---@generic T
---@param value T
---@param err? any
---@param msg? string
---@return T
function test.no_error(value, err, msg) end

---`err` is an `errors` value of `kind`: `test.error_kind(err, errors.PERMISSION_DENIED)`.
---@param err any
---@param kind errors.Kind|string
---@param msg? string
function test.error_kind(err, kind, msg) end

-- ---- virtual time, stores, actors -------------------------------------------------------------

---The test file's virtual clock. Store TTLs, `time.now()` and `time.sleep()` use it; it starts at
---2026-01-01T00:00:00Z in every file and moves only when told (a sleep moves it by its length).
---@class test.Clock
test.clock = {}

---Seconds since the epoch (what `time.now()` returns).
---@return number
function test.clock.now() end

---Moves time forward; keys whose TTL ran out are gone.
---@param seconds number >= 0
function test.clock.advance(seconds) end

---Sets the time (seconds since the epoch); it may move backwards.
---@param seconds number
function test.clock.set(seconds) end

---Empties every store of the registry. Each test file starts with fresh stores; within a file,
---state carries over from test to test unless a hook calls this.
function test.reset_stores() end

---Runs `fn` as another actor, so the policies decide as they would for it; the previous actor is
---restored afterwards, also when `fn` raises. Returns what `fn` returns.
---`test.as("tenant:acme", { tenant = "acme" }, function() ... end)`
---@generic R
---@param actor_id string
---@param meta table<string, string|number|boolean>|nil
---@param fn fun(): R
---@return R
function test.as(actor_id, meta, fn) end

return test

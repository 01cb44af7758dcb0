-- The Lua side of the `test` module (`require("test")` under `luastore test`).
--
-- src/harness/test-module.ts loads this chunk once per test file with the host functions as
-- `...` and gets back { api = <the module scripts see>, main = <runs the file> }. Structure,
-- assertions and the diff live here, where Lua values are at hand; the clock, the stores, the
-- actor and the reporting are host functions.
--
-- Assertion failures are raised as strings "file:line: message" whose position is the line of
-- the assertion in the test (found by the host's `where`, as `error(msg, level)` would). The
-- runner remembers the last such string, so it can tell an assertion from any other error.
local host = ...
local errors = require("errors")

local type, tostring, tonumber, pairs, ipairs, error, xpcall, pcall =
  type, tostring, tonumber, pairs, ipairs, error, xpcall, pcall
local concat, sort, unpack, pack = table.concat, table.sort, table.unpack, table.pack
local format = string.format
local mtype, huge = math.type, math.huge

local test = {}

-- ---- values as text ------------------------------------------------------------------------

local MAX_STRING = 200
local MAX_DEPTH = 4
local MAX_ITEMS = 20
local MAX_DIFFS = 10

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local KEYWORDS = {}
for word in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do
  KEYWORDS[word] = true
end

local function escape(c)
  return ESCAPES[c] or format("\\%03d", c:byte())
end

local function quote(s)
  local clipped = #s > MAX_STRING and s:sub(1, MAX_STRING) or s
  local body = clipped:gsub('[%c"\\]', escape)
  if #s > MAX_STRING then body = body .. format('"... (%d bytes)', #s) else body = body .. '"' end
  return '"' .. body
end

local function show_number(n)
  if mtype(n) == "integer" then return tostring(n) end
  if n ~= n then return "nan" end
  if n == huge then return "inf" end
  if n == -huge then return "-inf" end
  -- The shortest form that reads back as the same float, so two different floats never look alike.
  local s = format("%.14g", n)
  if tonumber(s) ~= n then s = format("%.17g", n) end
  if not s:find("[%.e]") then s = s .. ".0" end
  return s
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

-- Orders keys so that tables print and diff the same way every time.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local oa, ob = TYPE_ORDER[ta] or 4, TYPE_ORDER[tb] or 4
    if oa ~= ob then return oa < ob end
    return ta < tb
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, key_less)
  return keys
end

local show

local function show_key(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  return "[" .. show(k, MAX_DEPTH) .. "]"
end

local function path_key(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return "." .. k end
  return "[" .. show(k, MAX_DEPTH) .. "]"
end

--- A value as readable Lua-like text (strings quoted, tables expanded with sorted keys).
show = function(v, depth, seen)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "number" then return show_number(v) end
  if tv == "table" then
    depth, seen = depth or 0, seen or {}
    if seen[v] then return "<cycle>" end
    if depth >= MAX_DEPTH then return "{...}" end
    local keys = sorted_keys(v)
    if #keys == 0 then return "{}" end
    seen[v] = true
    local sequence = true
    for i = 1, #keys do
      if keys[i] ~= i then sequence = false break end
    end
    local parts = {}
    for i, k in ipairs(keys) do
      if i > MAX_ITEMS then
        parts[#parts + 1] = format("... (%d more)", #keys - MAX_ITEMS)
        break
      end
      local shown = show(v[k], depth + 1, seen)
      parts[#parts + 1] = sequence and shown or (show_key(k) .. " = " .. shown)
    end
    seen[v] = nil
    return "{ " .. concat(parts, ", ") .. " }"
  end
  if errors.is(v) then
    local kind = v:kind()
    return "error(" .. (kind ~= "" and kind .. ": " or "") .. quote(v:message()) .. ")"
  end
  return tostring(v)
end

-- ---- deep equality -------------------------------------------------------------------------

local function same_scalar(a, b)
  if a == b then return true end
  -- NaN is not equal to itself, but an expected NaN is met by an actual NaN.
  return type(a) == "number" and type(b) == "number" and a ~= a and b ~= b
end

--- Appends to `out` where `actual` differs from `expected` (at most MAX_DIFFS + 1 entries).
local function collect_diffs(expected, actual, path, out, seen)
  if #out > MAX_DIFFS then return end
  if type(expected) == "table" and type(actual) == "table" then
    if expected == actual then return end
    local pairs_seen = seen[expected]
    if pairs_seen == nil then
      pairs_seen = {}
      seen[expected] = pairs_seen
    elseif pairs_seen[actual] then
      return -- already being compared further up (a cycle)
    end
    pairs_seen[actual] = true
    local keys, known = {}, {}
    for k in pairs(expected) do
      keys[#keys + 1] = k
      known[k] = true
    end
    for k in pairs(actual) do
      if not known[k] then keys[#keys + 1] = k end
    end
    sort(keys, key_less)
    for _, k in ipairs(keys) do
      collect_diffs(expected[k], actual[k], path .. path_key(k), out, seen)
    end
    return
  end
  if not same_scalar(expected, actual) then
    out[#out + 1] = { path = path, expected = expected, actual = actual }
  end
end

local function deep_equal(a, b)
  local diffs = {}
  collect_diffs(a, b, "", diffs, {})
  return #diffs == 0, diffs
end

-- ---- failing -------------------------------------------------------------------------------

local last_failure = nil

--- Raises an assertion failure at the line of the assertion's caller. `depth` counts helper
--- frames between the assertion and this function. Never tail-call it: a tail call drops the
--- frame whose line is reported.
local function fail(message, depth)
  -- Levels: 0 = where, 1 = fail, 2 = the assertion (+ helpers), 3 = the test's line.
  local text = host.where(3 + (depth or 0)) .. message
  last_failure = text
  error(text, 0)
end

local function headline(name, msg)
  if msg == nil then return name .. " failed" end
  return name .. " failed: " .. tostring(msg)
end

--- Fails with "expected: <expectation>, actual: <value>" unless `ok`.
local function check(ok, name, msg, expectation, actual)
  if ok then return end
  fail(headline(name, msg) .. "\n  expected: " .. expectation .. "\n    actual: " .. actual, 1)
end

--- Raises a usage error (a wrong argument to the test module) at the caller's line.
local function check_arg(fname, n, value, expected)
  if type(value) ~= expected then
    error(format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(value)), 3)
  end
end

-- ---- assertions ----------------------------------------------------------------------------

--- Deep equality for tables (keys and values, recursively), `==` otherwise.
function test.eq(actual, expected, msg)
  local equal, diffs = deep_equal(expected, actual)
  if equal then return end
  local lines = { headline("eq", msg) }
  if type(expected) == "table" and type(actual) == "table" then
    for i, d in ipairs(diffs) do
      if i > MAX_DIFFS then
        lines[#lines + 1] = "  ... more differences"
        break
      end
      lines[#lines + 1] = format("  at %s: expected %s, actual %s", d.path, show(d.expected), show(d.actual))
    end
  end
  lines[#lines + 1] = "  expected: " .. show(expected)
  lines[#lines + 1] = "    actual: " .. show(actual)
  fail(concat(lines, "\n"))
end

function test.neq(actual, unexpected, msg)
  check(not deep_equal(unexpected, actual), "neq", msg, "anything but " .. show(unexpected), show(actual))
end

function test.ok(value, msg)
  check(value, "ok", msg, "a truthy value", show(value))
end

function test.fail(msg)
  fail(msg == nil and "failed (test.fail)" or tostring(msg))
end

function test.is_nil(value, msg)
  check(value == nil, "is_nil", msg, "nil", show(value))
end

function test.not_nil(value, msg)
  check(value ~= nil, "not_nil", msg, "a value other than nil", show(value))
end

function test.is_true(value, msg)
  check(value == true, "is_true", msg, "true", show(value))
end

function test.is_false(value, msg)
  check(value == false, "is_false", msg, "false", show(value))
end

function test.is_string(value, msg)
  check(type(value) == "string", "is_string", msg, "a string", show(value))
end

function test.is_number(value, msg)
  check(type(value) == "number", "is_number", msg, "a number", show(value))
end

function test.is_table(value, msg)
  check(type(value) == "table", "is_table", msg, "a table", show(value))
end

--- A string containing `needle` (plain text), or a table with a value deep-equal to `needle`.
function test.contains(haystack, needle, msg)
  local found = false
  if type(haystack) == "string" then
    found = type(needle) == "string" and haystack:find(needle, 1, true) ~= nil
    check(found, "contains", msg, "a string containing " .. show(needle), show(haystack))
  elseif type(haystack) == "table" then
    for _, v in pairs(haystack) do
      if deep_equal(needle, v) then
        found = true
        break
      end
    end
    check(found, "contains", msg, "a table containing " .. show(needle), show(haystack))
  else
    check(false, "contains", msg, "a string or table containing " .. show(needle), show(haystack))
  end
end

--- A string matching the Lua pattern.
function test.matches(s, pattern, msg)
  check_arg("matches", 2, pattern, "string")
  check(type(s) == "string" and s:find(pattern) ~= nil, "matches", msg, "a string matching " .. show(pattern), show(s))
end

function test.has_key(t, key, msg)
  check(type(t) == "table" and t[key] ~= nil, "has_key", msg, "a table with key " .. show(key), show(t))
end

--- `#value` of a string or table.
function test.len(value, n, msg)
  check_arg("len", 2, n, "number")
  local tv = type(value)
  if tv ~= "string" and tv ~= "table" then
    check(false, "len", msg, "a string or table of length " .. show(n), show(value))
    return
  end
  check(#value == n, "len", msg, "length " .. show(n), format("length %d: %s", #value, show(value)))
end

local function comparable(a, b)
  local ta, tb = type(a), type(b)
  return ta == tb and (ta == "number" or ta == "string")
end

function test.gt(a, b, msg)
  check(comparable(a, b) and a > b, "gt", msg, "a value > " .. show(b), show(a))
end

function test.gte(a, b, msg)
  check(comparable(a, b) and a >= b, "gte", msg, "a value >= " .. show(b), show(a))
end

function test.lt(a, b, msg)
  check(comparable(a, b) and a < b, "lt", msg, "a value < " .. show(b), show(a))
end

function test.lte(a, b, msg)
  check(comparable(a, b) and a <= b, "lte", msg, "a value <= " .. show(b), show(a))
end

--- Calls `fn`, which must raise (with a message matching the Lua `pattern` when given).
--- Returns the error value.
function test.throws(fn, pattern, msg)
  check_arg("throws", 1, fn, "function")
  if pattern ~= nil then check_arg("throws", 2, pattern, "string") end
  local expectation = pattern == nil and "an error" or ("an error matching " .. show(pattern))
  local ok, err = pcall(fn)
  if ok then
    fail(headline("throws", msg) .. "\n  expected: " .. expectation .. "\n    actual: no error")
  end
  if err == last_failure then last_failure = nil end
  if pattern ~= nil then
    local text = errors.is(err) and err:message() or (type(err) == "string" and err) or show(err)
    check(text:find(pattern) ~= nil, "throws", msg, expectation, show(err))
  end
  return err
end

--- For `value, err` results: fails when `err` is not nil, else returns `value`.
function test.no_error(value, err, msg)
  if err ~= nil then
    fail(headline("no_error", msg) .. "\n  expected: no error\n    actual: " .. show(err))
  end
  return value
end

--- `err` is an `errors` value of `kind` (e.g. errors.NOT_FOUND).
function test.error_kind(err, kind, msg)
  check_arg("error_kind", 2, kind, "string")
  check(errors.is(err, kind), "error_kind", msg, "an error of kind " .. show(kind), show(err))
end

-- ---- virtual time, stores, actors ----------------------------------------------------------

--- The file's virtual clock, in seconds since the epoch (what `time.now()` reads).
test.clock = {
  now = host.clock_now,
  advance = host.clock_advance,
  set = host.clock_set,
}

--- Empties every store of the registry (each test file starts with empty stores anyway).
test.reset_stores = host.reset_stores

--- Runs `fn` as another actor (policies see `actor_id` and `meta`), then restores the actor,
--- also when `fn` raises. Returns what `fn` returns.
function test.as(actor_id, meta, fn)
  if type(actor_id) ~= "string" or actor_id == "" then
    error("bad argument #1 to 'as' (non-empty string expected, got " .. show(actor_id) .. ")", 2)
  end
  if meta ~= nil and type(meta) ~= "table" then check_arg("as", 2, meta, "table") end
  check_arg("as", 3, fn, "function")
  for k, v in pairs(meta or {}) do
    local tv = type(v)
    if type(k) ~= "string" or (tv ~= "string" and tv ~= "number" and tv ~= "boolean") then
      error("bad argument #2 to 'as' (meta." .. tostring(k) .. " must be a string, number or boolean)", 2)
    end
  end
  host.push_actor(actor_id, meta or {})
  local results = pack(pcall(fn))
  host.pop_actor()
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, results.n)
end

-- ---- declaring tests -----------------------------------------------------------------------

local function new_suite(name, parent)
  return {
    name = name,
    parent = parent,
    children = {},
    before_all = {},
    after_all = {},
    before_each = {},
    after_each = {},
  }
end

local root = new_suite(nil, nil)
local current = root
local loading = false

local function check_declaring(fname)
  if not loading then
    error(fname .. " may only be called while the file loads (at top level or inside test.describe)", 3)
  end
end

function test.describe(name, body)
  check_declaring("test.describe")
  check_arg("describe", 1, name, "string")
  check_arg("describe", 2, body, "function")
  local suite = new_suite(name, current)
  current.children[#current.children + 1] = suite
  current = suite
  body()
  current = suite.parent
end

local function declare(fname, name, fn, skip)
  if type(name) ~= "string" then
    error(format("bad argument #1 to '%s' (string expected, got %s)", fname, type(name)), 3)
  end
  if type(fn) ~= "function" then
    error(format("bad argument #2 to '%s' (function expected, got %s)", fname, type(fn)), 3)
  end
  current.children[#current.children + 1] = { name = name, fn = fn, skip = skip }
end

function test.it(name, fn)
  check_declaring("test.it")
  declare("it", name, fn, false)
end

function test.it_skip(name, fn)
  check_declaring("test.it_skip")
  declare("it_skip", name, fn, true)
end

local function hook(kind)
  local fname = "test." .. kind
  return function(fn)
    check_declaring(fname)
    check_arg(kind, 1, fn, "function")
    local list = current[kind]
    list[#list + 1] = fn
  end
end

test.before_all = hook("before_all")
test.after_all = hook("after_all")
test.before_each = hook("before_each")
test.after_each = hook("after_each")

-- ---- running -------------------------------------------------------------------------------

local function append(list, value)
  local out = { unpack(list) }
  out[#out + 1] = value
  return out
end

local WRAPPED = {}

--- xpcall's message handler: keeps the traceback of where the error was raised.
local function wrap_error(err)
  -- Levels: 0 = traceback, 1 = this handler, 2 = the function that raised.
  return { [WRAPPED] = true, err = err, traceback = host.traceback(2) }
end

--- Calls `fn`; nil when it returned, else { err, traceback, assertion }.
local function protect(fn)
  last_failure = nil
  local ok, caught = xpcall(fn, wrap_error)
  if ok then return nil end
  local err, traceback = caught, nil
  if type(caught) == "table" and caught[WRAPPED] then err, traceback = caught.err, caught.traceback end
  return { err = err, traceback = traceback, assertion = type(err) == "string" and err == last_failure }
end

local function report_failure(failure, hook_name)
  host.finish("failed", failure.err, failure.assertion, failure.traceback, hook_name)
end

--- Marks the selected tests (filter) and counts, per suite, tests that will run and tests listed.
local function mark(suite, path)
  local runnable, listed = 0, 0
  suite.path = path
  for _, child in ipairs(suite.children) do
    local child_path = append(path, child.name)
    if child.children then
      local r, l = mark(child, child_path)
      runnable, listed = runnable + r, listed + l
    else
      child.path = child_path
      child.selected = host.selected(unpack(child_path))
      if child.selected then
        listed = listed + 1
        if not child.skip then runnable = runnable + 1 end
      end
    end
  end
  suite.runnable, suite.listed = runnable, listed
  return runnable, listed
end

local function run_test(node, suites, before_all_failure)
  host.begin(unpack(node.path))
  if before_all_failure then
    report_failure(before_all_failure, "before_all")
    return
  end
  local failure, hook_name
  for _, suite in ipairs(suites) do -- outermost first
    for _, fn in ipairs(suite.before_each) do
      failure = protect(fn)
      if failure then
        hook_name = "before_each"
        break
      end
    end
    if failure then break end
  end
  if not failure then failure = protect(node.fn) end
  for i = #suites, 1, -1 do -- innermost first, and always, so cleanup runs after a failure
    for _, fn in ipairs(suites[i].after_each) do
      local f = protect(fn)
      if f and not failure then failure, hook_name = f, "after_each" end
    end
  end
  if failure then
    report_failure(failure, hook_name)
  else
    host.finish("passed")
  end
end

local function run_suite(suite, suites, before_all_failure)
  if suite.listed == 0 then return end
  local chain = append(suites, suite)
  local ran_before_all = false
  if suite.runnable > 0 and not before_all_failure then
    ran_before_all = true
    for _, fn in ipairs(suite.before_all) do
      before_all_failure = protect(fn)
      if before_all_failure then break end
    end
  end
  for _, child in ipairs(suite.children) do
    if host.should_stop() then break end
    if child.children then
      run_suite(child, chain, before_all_failure)
    elseif child.selected then
      if child.skip then
        host.skip(unpack(child.path))
      else
        run_test(child, chain, before_all_failure)
      end
    end
  end
  if ran_before_all then
    for _, fn in ipairs(suite.after_all) do
      local failure = protect(fn)
      if failure then
        host.begin(unpack(append(suite.path, "after_all hook")))
        report_failure(failure, "after_all")
        break
      end
    end
  end
end

local function list(suite)
  for _, child in ipairs(suite.children) do
    if child.children then
      list(child)
    elseif child.selected then
      host.listed(child.skip, unpack(child.path))
    end
  end
end

local started = false

--- Loads the file under test (which declares its tests), then runs them or lists them.
local function main()
  if started then error("the test harness runs once per file", 2) end
  started = true
  local chunk = host.load_file()
  if chunk ~= nil then
    loading = true
    local failure = protect(chunk)
    loading = false
    if failure then
      host.file_error(failure.err, failure.traceback)
    else
      mark(root, {})
      -- The host learns every selected test first, so that the tests a stopped run never reached
      -- are reported as skipped, with the reason.
      list(root)
      if not host.listing() then run_suite(root, {}, nil) end
    end
  end
end

return { api = test, main = main }

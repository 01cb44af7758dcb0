-- quickstart.lua: acquire a pooled store handle, write, read, expire and clean up.
-- Run it with: npx luastore run lua/examples/quickstart.lua
local store = require("store")
local time = require("time")

local cache, err = store.get("app:cache")
if not cache then
  error("cannot open app:cache: " .. tostring(err))
end

-- Values are Lua values: strings, numbers, booleans and tables (stored as a snapshot).
assert(cache:set("greeting", "hello from luastore"))
assert(cache:set("user:42", { name = "Ada", roles = { "admin", "dev" }, score = 9.5 }, 60))

print(cache:get("greeting"))
local user = cache:get("user:42")
print(("user:42 is %s with roles %s, score %.1f"):format(user.name, table.concat(user.roles, ","), user.score))

-- Errors are values, never exceptions: nil, err with a kind.
local ok, bad = cache:set("callback", function() end)
print("storing a function:", ok, bad:kind(), bad:message())

-- A key with a TTL disappears once the TTL passes.
cache:set("flash", "now you see me", 0.05)
print("flash before:", cache:get("flash"))
time.sleep(0.1)
print("flash after: ", cache:get("flash"))

print("deleted greeting:", cache:delete("greeting"), "has it:", cache:has("greeting"))
cache:release()

-- Tests for rate_limiter.lua. Run: npx luastore test lua/examples
local test = require("test")
local store = require("store")
local limiter = require("rate_limiter")

local api

test.before_each(function()
  test.reset_stores()
  -- Start every test at the beginning of a minute, so windows are easy to reason about.
  test.clock.set(math.floor(test.clock.now() / 60) * 60)
  api = test.no_error(limiter.new({ limit = 3, window = 60 }))
end)

test.after_each(function()
  api:close()
end)

test.it("allows up to the limit within a window, then refuses", function()
  for i = 1, 3 do
    local allowed, info = api:take("user-42")
    test.is_true(allowed, "request " .. i)
    test.eq(info.remaining, 3 - i)
  end
  local allowed, info = api:take("user-42")
  test.is_false(allowed)
  test.eq(info, { count = 4, remaining = 0, reset_in = 60 })
end)

test.it("counts each key on its own", function()
  for _ = 1, 3 do api:take("user-1") end
  test.is_false((api:take("user-1")))
  test.is_true((api:take("user-2")))
end)

test.it("a new window starts from zero", function()
  for _ = 1, 4 do api:take("user-42") end
  test.clock.advance(59)
  local allowed, info = api:take("user-42")
  test.is_false(allowed)
  test.eq(info.reset_in, 1)
  test.clock.advance(1)
  allowed, info = api:take("user-42")
  test.is_true(allowed)
  test.eq(info.count, 1)
end)

test.it("a cost counts as that many requests", function()
  test.is_true((api:take("upload", 3)))
  test.is_false((api:take("upload", 1)))
end)

test.it("a window's counter expires when the window ends", function()
  test.clock.advance(15)
  api:take("user-42")
  local cache = test.no_error(store.get("app:cache"))
  local key = ("rl:user-42:%.0f"):format(test.clock.now() - 15)
  test.eq(cache:get(key), 1)
  test.eq(cache:ttl(key), 45)
  test.clock.advance(45)
  test.is_nil(cache:get(key))
  cache:release()
end)

test.describe("as a tenant", function()
  test.it("counts under the tenant's prefix", function()
    test.as("tenant:acme", { tenant = "acme" }, function()
      local tenant_api = test.no_error(limiter.new({ limit = 1, window = 60, prefix = "acme:" }))
      test.is_true((tenant_api:take("login")))
      test.is_false((tenant_api:take("login")))
      tenant_api:close()
    end)
  end)

  test.it("refuses counters outside the tenant's prefix", function()
    test.as("tenant:acme", { tenant = "acme" }, function()
      local tenant_api = test.no_error(limiter.new({ limit = 1, window = 60, prefix = "globex:" }))
      local allowed, err = tenant_api:take("login")
      test.is_nil(allowed)
      test.error_kind(err, errors.PERMISSION_DENIED)
      tenant_api:close()
    end)
  end)
end)

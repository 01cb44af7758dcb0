-- Tests for session_store.lua. Run: npx luastore test lua/examples
-- Every expiry is driven by the virtual clock: nothing here waits for real time.
local test = require("test")
local time = require("time")
local sessions = require("session_store")

local IDLE = 30 * 60
local MAX_AGE = 8 * 60 * 60

test.describe("session store", function()
  local s

  test.before_each(function()
    test.reset_stores()
    s = test.no_error(sessions.open({ idle_ttl = IDLE, max_age = MAX_AGE }))
  end)

  test.after_each(function()
    s:close()
  end)

  test.it("creates a session and reads it back", function()
    local id = test.no_error(s:create("user-42", { theme = "dark" }))
    test.is_string(id)
    local session = s:get(id)
    test.eq(session.user, "user-42")
    test.eq(session.data, { theme = "dark" })
    test.eq(session.created_at, time.now())
  end)

  test.it("uses the id it is given", function()
    test.eq(test.no_error(s:create("user-1", nil, "fixed-id")), "fixed-id")
    test.not_nil(s:get("fixed-id"))
  end)

  test.it("expires after the idle timeout without activity", function()
    local id = test.no_error(s:create("user-42"))
    test.clock.advance(IDLE - 1)
    test.not_nil(s:get(id), "one second before the idle timeout")
    test.clock.advance(1)
    test.is_nil(s:get(id), "at the idle timeout")
  end)

  test.it("a touch starts the idle timeout again", function()
    local id = test.no_error(s:create("user-42"))
    test.clock.advance(IDLE - 60)
    test.is_true(s:touch(id))
    test.clock.advance(IDLE - 60)
    test.not_nil(s:get(id), "kept alive by the touch")
    test.eq(s:get(id).seen_at, time.now() - (IDLE - 60))
    test.clock.advance(60)
    test.is_nil(s:get(id))
  end)

  test.it("touching never extends a session past its max age", function()
    local id = test.no_error(s:create("user-42"))
    -- Active every 20 minutes for 8 hours.
    for _ = 1, (MAX_AGE // (20 * 60)) - 1 do
      test.clock.advance(20 * 60)
      test.is_true(s:touch(id))
    end
    test.clock.advance(20 * 60)
    test.is_nil(s:get(id), "gone at max age despite the activity")
    test.is_false(s:touch(id))
  end)

  test.it("time.sleep moves the virtual clock at once", function()
    local id = test.no_error(s:create("user-42"))
    local before = time.now()
    time.sleep(3600)
    test.eq(time.now() - before, 3600)
    test.is_nil(s:get(id))
  end)

  test.it("update merges into the data and counts as activity", function()
    local id = test.no_error(s:create("user-42", { theme = "dark", lang = "en" }))
    test.clock.advance(IDLE - 1)
    test.is_true(s:update(id, { theme = "light" }))
    test.clock.advance(IDLE - 1)
    test.eq(s:get(id).data, { theme = "light", lang = "en" })
  end)

  test.it("touch and update report a missing session as false", function()
    test.is_false(s:touch("nope"))
    test.is_false(s:update("nope", { a = 1 }))
  end)

  test.it("destroy ends the session", function()
    local id = test.no_error(s:create("user-42"))
    test.is_true(s:destroy(id))
    test.is_nil(s:get(id))
    test.is_false(s:destroy(id))
  end)
end)

test.describe("session store as a tenant", function()
  local ACME = { tenant = "acme" }

  test.it("a tenant keeps sessions under its own prefix", function()
    test.as("tenant:acme", ACME, function()
      local s = test.no_error(sessions.open({ prefix = "acme:" }))
      local id = test.no_error(s:create("user-7"))
      test.eq(s:get(id).user, "user-7")
      s:close()
    end)
  end)

  test.it("a tenant cannot write under another tenant's prefix", function()
    test.as("tenant:acme", ACME, function()
      local s = test.no_error(sessions.open({ prefix = "globex:" }))
      local id, err = s:create("user-7", nil, "stolen")
      test.is_nil(id)
      test.error_kind(err, errors.PERMISSION_DENIED)
      s:close()
    end)
  end)

  test.it("the test's own actor is back after test.as", function()
    test.as("tenant:acme", ACME, function() end)
    local s = test.no_error(sessions.open({ prefix = "globex:" }))
    test.no_error(s:create("user-7", nil, "allowed-again"))
    s:close()
  end)
end)

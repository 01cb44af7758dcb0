/** The Lua `test` module and the per-file runner: structure, hooks, assertions, time, stores, actors. */
import { afterEach, describe, expect, it } from "vitest";
import { discoverTestFiles } from "../../src/harness/discover.js";
import { listTestFile } from "../../src/harness/run-file.js";
import type { PolicyDocument } from "../../src/policy/types.js";
import { READER, tenant } from "../helpers.js";
import { lineOf, luaProject, statuses, testNamed, type LuaProject } from "./project.js";

let project: LuaProject | undefined;
afterEach(() => {
  project?.remove();
  project = undefined;
});

/** Runs one test file with this source. */
async function runLua(source: string, options: Parameters<LuaProject["runFile"]>[1] = {}) {
  project = luaProject({ "case_test.lua": source });
  return project.runFile("case_test.lua", options);
}

describe("tests and their outcome", () => {
  it("a test passes when it returns, fails when it raises, and a failure does not stop the others", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("returns", function() end)
      test.it("raises", function() error("boom") end)
      test.it("runs after a failure", function() end)
    `);
    expect(statuses(result)).toEqual({ returns: "passed", raises: "failed", "runs after a failure": "passed" });
    expect(result.error).toBeUndefined();
  });

  it("it_skip reports the test as skipped without running it", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it_skip("later", function() error("must not run") end)
    `);
    expect(result.tests).toMatchObject([{ path: ["later"], status: "skipped", durationMs: 0 }]);
  });

  it("describe blocks nest, and results name the whole path in declaration order", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("top", function() end)
      test.describe("outer", function()
        test.it("a", function() end)
        test.describe("inner", function()
          test.it("b", function() end)
        end)
        test.it("c", function() end)
      end)
    `);
    expect(result.tests.map((t) => t.path)).toEqual([["top"], ["outer", "a"], ["outer", "inner", "b"], ["outer", "c"]]);
  });

  it("a failure carries the message and the line that raised; a traceback when it came from deeper", async () => {
    const source = `
      local test = require("test")
      local function helper()
        local t = nil
        return t.x -- raises here
      end
      test.it("uses a helper", function()
        helper() -- called here
      end)
    `;
    const result = await runLua(source);
    const failure = testNamed(result, "uses a helper").failure!;
    expect(failure).toMatchObject({
      message: "attempt to index a nil value (local 't')",
      location: { file: "case_test.lua", line: lineOf(source, "raises here") },
      assertion: false,
    });
    expect(failure.traceback?.split("\n")).toEqual([
      `case_test.lua:${lineOf(source, "raises here")}: in upvalue 'helper'`,
      `case_test.lua:${lineOf(source, "called here")}: in function <case_test.lua:${lineOf(source, "uses a helper")}>`,
    ]);
  });

  it("a file deep enough that Lua clips its name in messages is still located by its full path", async () => {
    const file = "a/directory/path/long/enough/that/lua/clips/chunk/names/case_test.lua";
    project = luaProject({ [file]: `local test = require("test")\ntest.it("fails", function() test.fail("here") end)\n` });
    const result = await project.runFile();
    expect(result.tests[0]!.failure).toEqual({ message: "here", location: { file, line: 2 }, assertion: true });
  });

  it("an errors value raised by a test is reported with its kind", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("raises an error value", function() error(errors.new({ kind = errors.CONFLICT, message = "version moved" })) end)
    `);
    expect(result.tests[0]!.failure).toMatchObject({ message: "Conflict: version moved", assertion: false });
  });

  it("what a test prints is kept with that test, the rest with the file", async () => {
    const result = await runLua(`
      local test = require("test")
      print("loading")
      test.it("talks", function() print("hello", 42) end)
    `);
    expect(result.tests[0]!.output).toBe("hello\t42\n");
    expect(result.output).toBe("loading\n");
  });

  it("a test cannot declare tests", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("declares", function() test.it("nested", function() end) end)
    `);
    expect(result.tests[0]!.failure?.message).toBe(
      "test.it may only be called while the file loads (at top level or inside test.describe)",
    );
  });

  it("a test file can require the Lua modules next to it", async () => {
    project = luaProject({
      "scripts/greeter.lua": `return { hello = function(name) return "hello " .. name end }`,
      "scripts/lib/strings.lua": `return { shout = function(s) return s:upper() end }`,
      "scripts/greeter_test.lua": `
        local test = require("test")
        local greeter = require("greeter")
        local strings = require("lib.strings")
        test.it("greets", function() test.eq(strings.shout(greeter.hello("ada")), "HELLO ADA") end)
      `,
    });
    const result = await project.runFile();
    expect(result.file).toBe("scripts/greeter_test.lua");
    expect(statuses(result)).toEqual({ greets: "passed" });
  });
});

describe("hooks", () => {
  it("run in order: before_all once before the first test, before_each outer first, after_each inner first, after_all once", async () => {
    const result = await runLua(`
      local test = require("test")
      local log = {}
      local function note(s) return function() log[#log + 1] = s end end
      test.before_all(note("root:before_all"))
      test.before_each(note("root:before_each"))
      test.after_each(note("root:after_each"))
      test.after_all(function() print("root:after_all") end)
      test.describe("suite", function()
        test.before_all(note("suite:before_all"))
        test.before_each(note("suite:before_each"))
        test.after_each(note("suite:after_each"))
        test.after_all(note("suite:after_all"))
        test.it("one", note("one"))
        test.it("two", note("two"))
      end)
      test.describe("check", function()
        test.it("order", function() print(table.concat(log, "\\n")) end)
      end)
    `);
    expect(statuses(result)).toEqual({ "suite > one": "passed", "suite > two": "passed", "check > order": "passed" });
    expect(testNamed(result, "check > order").output.trim().split("\n")).toEqual([
      "root:before_all",
      "suite:before_all",
      "root:before_each",
      "suite:before_each",
      "one",
      "suite:after_each",
      "root:after_each",
      "root:before_each",
      "suite:before_each",
      "two",
      "suite:after_each",
      "root:after_each",
      "suite:after_all",
      "root:before_each",
    ]);
    expect(result.output).toBe("root:after_all\n");
  });

  it("a failing before_each fails the test without running it, and after_each still runs", async () => {
    const result = await runLua(`
      local test = require("test")
      test.before_each(function() error("setup broke") end)
      test.after_each(function() print("cleaned up") end)
      test.it("body", function() print("body ran") end)
    `);
    expect(result.tests[0]).toMatchObject({ status: "failed", output: "cleaned up\n", failure: { hook: "before_each" } });
    expect(result.tests[0]!.failure?.message).toBe("setup broke");
  });

  it("a failing after_each fails a test that passed", async () => {
    const result = await runLua(`
      local test = require("test")
      test.after_each(function() test.fail("leaked a handle") end)
      test.it("body", function() end)
    `);
    expect(result.tests[0]!.failure).toMatchObject({ hook: "after_each", message: "leaked a handle", assertion: true });
  });

  it("a failing before_all fails every test of its describe, and only those", async () => {
    const result = await runLua(`
      local test = require("test")
      test.describe("broken", function()
        test.before_all(function() error("no fixture") end)
        test.it("a", function() end)
        test.it_skip("b", function() end)
        test.it("c", function() end)
      end)
      test.it("elsewhere", function() end)
    `);
    expect(statuses(result)).toEqual({ "broken > a": "failed", "broken > b": "skipped", "broken > c": "failed", elsewhere: "passed" });
    expect(testNamed(result, "broken > c").failure).toMatchObject({ hook: "before_all", message: "no fixture" });
  });

  it("a failing after_all is reported as a failure of the describe", async () => {
    const result = await runLua(`
      local test = require("test")
      test.describe("suite", function()
        test.after_all(function() error("teardown broke") end)
        test.it("a", function() end)
      end)
    `);
    expect(statuses(result)).toEqual({ "suite > a": "passed", "suite > after_all hook": "failed" });
    expect(testNamed(result, "suite > after_all hook").failure).toMatchObject({ hook: "after_all", message: "teardown broke" });
  });

  it("hooks of a describe whose tests are all skipped do not run", async () => {
    const result = await runLua(`
      local test = require("test")
      test.describe("skipped", function()
        test.before_all(function() print("before_all ran") end)
        test.it_skip("a", function() end)
      end)
    `);
    expect(result.output).toBe("");
    expect(statuses(result)).toEqual({ "skipped > a": "skipped" });
  });
});

describe("assertions", () => {
  it("every assertion passes on a value that meets it", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("all pass", function()
        test.eq({ a = { 1, 2, { b = "x" } }, n = 1 }, { n = 1.0, a = { 1, 2, { b = "x" } } })
        test.eq(0/0, 0/0)
        test.neq({ 1 }, { 2 })
        test.ok(0)
        test.is_nil(nil)
        test.not_nil(false)
        test.is_true(true)
        test.is_false(false)
        test.is_string("")
        test.is_number(1.5)
        test.is_table({})
        test.contains("hello world", "o w")
        test.contains({ 1, { x = 1 } }, { x = 1 })
        test.matches("user:42", "^user:%d+$")
        test.has_key({ a = false }, "a")
        test.len("abc", 3)
        test.len({ 1, 2 }, 2)
        test.gt(2, 1); test.gte(2, 2); test.lt("a", "b"); test.lte(1, 1)
        test.no_error(true, nil)
        test.error_kind(errors.new({ kind = errors.NOT_FOUND, message = "m" }), errors.NOT_FOUND)
      end)
    `);
    expect(result.tests[0]).toMatchObject({ status: "passed" });
  });

  // [assertion call, expected message]; each fails at its own line.
  const failing: [string, string][] = [
    [`test.eq("Bob", "Ada")`, 'eq failed\n  expected: "Ada"\n    actual: "Bob"'],
    [`test.eq(1, 1.5, "the score")`, "eq failed: the score\n  expected: 1.5\n    actual: 1"],
    [`test.eq(0.1 + 0.2, 0.3)`, "eq failed\n  expected: 0.3\n    actual: 0.30000000000000004"],
    [`test.eq("a\\nb", "a\\tb")`, 'eq failed\n  expected: "a\\tb"\n    actual: "a\\nb"'],
    [
      `test.eq({ user = { name = "Bob", roles = { "admin", "ops" } } }, { user = { name = "Ada", roles = { "admin", "dev" } }, active = true })`,
      [
        "eq failed",
        "  at .active: expected true, actual nil",
        '  at .user.name: expected "Ada", actual "Bob"',
        '  at .user.roles[2]: expected "dev", actual "ops"',
        '  expected: { active = true, user = { name = "Ada", roles = { "admin", "dev" } } }',
        '    actual: { user = { name = "Bob", roles = { "admin", "ops" } } }',
      ].join("\n"),
    ],
    [`test.eq({ ["two words"] = 1, [10] = 2 }, {})`, 'eq failed\n  at [10]: expected nil, actual 2\n  at ["two words"]: expected nil, actual 1\n  expected: {}\n    actual: { [10] = 2, ["two words"] = 1 }'],
    [`test.eq({ 1 }, 1)`, "eq failed\n  expected: 1\n    actual: { 1 }"],
    [`test.neq({ a = 1 }, { a = 1 })`, "neq failed\n  expected: anything but { a = 1 }\n    actual: { a = 1 }"],
    [`test.ok(nil, "must be set")`, "ok failed: must be set\n  expected: a truthy value\n    actual: nil"],
    [`test.fail("not yet")`, "not yet"],
    [`test.fail()`, "failed (test.fail)"],
    [`test.is_nil(false)`, "is_nil failed\n  expected: nil\n    actual: false"],
    [`test.not_nil(nil)`, "not_nil failed\n  expected: a value other than nil\n    actual: nil"],
    [`test.is_true(1)`, "is_true failed\n  expected: true\n    actual: 1"],
    [`test.is_false(nil)`, "is_false failed\n  expected: false\n    actual: nil"],
    [`test.is_string(1)`, "is_string failed\n  expected: a string\n    actual: 1"],
    [`test.is_number("1")`, 'is_number failed\n  expected: a number\n    actual: "1"'],
    [`test.is_table("t")`, 'is_table failed\n  expected: a table\n    actual: "t"'],
    [`test.contains("hello", "x")`, 'contains failed\n  expected: a string containing "x"\n    actual: "hello"'],
    [`test.contains({ 1, 2 }, 3)`, "contains failed\n  expected: a table containing 3\n    actual: { 1, 2 }"],
    [`test.matches("user:x", "^user:%d+$")`, 'matches failed\n  expected: a string matching "^user:%d+$"\n    actual: "user:x"'],
    [`test.has_key({}, "a")`, 'has_key failed\n  expected: a table with key "a"\n    actual: {}'],
    [`test.len({ 1 }, 2)`, "len failed\n  expected: length 2\n    actual: length 1: { 1 }"],
    [`test.gt(1, 2)`, "gt failed\n  expected: a value > 2\n    actual: 1"],
    [`test.gte(1, 2)`, "gte failed\n  expected: a value >= 2\n    actual: 1"],
    [`test.lt(2, 1)`, "lt failed\n  expected: a value < 1\n    actual: 2"],
    [`test.lte("b", "a")`, 'lte failed\n  expected: a value <= "a"\n    actual: "b"'],
    [`test.gt("2", 1)`, 'gt failed\n  expected: a value > 1\n    actual: "2"'],
    [`test.throws(function() end)`, "throws failed\n  expected: an error\n    actual: no error"],
    [`test.throws(function() error("boom") end, "bang")`, 'throws failed\n  expected: an error matching "bang"\n    actual: "case_test.lua:LINE: boom"'],
    [`test.no_error(nil, errors.new({ kind = errors.NOT_FOUND, message = "no such key" }))`, 'no_error failed\n  expected: no error\n    actual: error(NotFound: "no such key")'],
    [`test.error_kind(errors.new("plain"), errors.NOT_FOUND)`, 'error_kind failed\n  expected: an error of kind "NotFound"\n    actual: error("plain")'],
    [`test.error_kind(nil, errors.NOT_FOUND)`, 'error_kind failed\n  expected: an error of kind "NotFound"\n    actual: nil'],
  ];

  it.each(failing)("%s fails with what was expected and what came, at its line", async (call, message) => {
    const source = `
      local test = require("test")
      test.it("asserts", function()
        local unrelated = 1
        ${call} -- the assertion
      end)
    `;
    const result = await runLua(source);
    const line = lineOf(source, "the assertion");
    expect(result.tests[0]!.failure).toEqual({
      message: message.replace("LINE", String(line)),
      location: { file: "case_test.lua", line },
      assertion: true,
    });
  });

  it("a failed assertion inside a helper function points at the helper's line", async () => {
    const source = `
      local test = require("test")
      local function expect_user(u)
        test.eq(u.name, "Ada") -- in the helper
      end
      test.it("uses a helper", function() expect_user({ name = "Bob" }) end)
    `;
    const result = await runLua(source);
    expect(result.tests[0]!.failure?.location).toEqual({ file: "case_test.lua", line: lineOf(source, "in the helper") });
  });

  it("throws returns the error and matches an errors value by its message", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("throws", function()
        local err = test.throws(function() error(errors.new({ kind = errors.CONFLICT, message = "version moved" })) end, "version")
        test.error_kind(err, errors.CONFLICT)
        test.throws(function() test.eq(1, 2) end, "eq failed")
      end)
    `);
    expect(result.tests[0]).toMatchObject({ status: "passed" });
  });

  it("no_error returns the value of a successful call", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("opens", function()
        local s = test.no_error(require("store").get("app:cache"))
        test.eq(tostring(s), 'store "app:cache"')
      end)
    `);
    expect(result.tests[0]).toMatchObject({ status: "passed" });
  });

  it("a table diff lists at most ten differences and survives cycles", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("many", function()
        local a, b = {}, {}
        for i = 1, 12 do a[i] = i; b[i] = -i end
        a.self = a; b.self = b
        test.eq(a, b)
      end)
    `);
    const lines = result.tests[0]!.failure!.message.split("\n");
    expect(lines.filter((l) => l.startsWith("  at "))).toHaveLength(10);
    expect(lines).toContain("  ... more differences");
    expect(lines.at(-2)).toContain("self = <cycle>");
  });
});

describe("virtual time", () => {
  it("starts at 2026-01-01T00:00:00Z and drives time.now(), TTLs and time.sleep", async () => {
    const result = await runLua(`
      local test = require("test")
      local time = require("time")
      local store = require("store")
      test.it("ttl", function()
        test.eq(test.clock.now(), 1767225600)
        test.eq(time.now(), test.clock.now())
        local s = test.no_error(store.get("app:cache"))
        s:set("k", "v", 60)
        test.clock.advance(59.999)
        test.eq(s:get("k"), "v")
        test.clock.advance(0.001)
        test.is_nil(s:get("k"))
      end)
      test.it("sleep", function()
        local before = time.now()
        time.sleep(3600)
        test.eq(time.now() - before, 3600)
      end)
      test.it("set", function()
        test.clock.set(1000)
        test.eq(time.now(), 1000)
      end)
    `);
    // A real hour's sleep would have hit the file's wall-clock limit and failed "sleep".
    expect(statuses(result)).toEqual({ ttl: "passed", sleep: "passed", set: "passed" });
  });

  it("stale_for follows the virtual clock too, on the stand-in of any store kind", async () => {
    const registry = {
      version: "1.0",
      namespace: "app",
      entries: [{ name: "cache", kind: "store.redis", url: "redis://127.0.0.1:1/0", stale_for: "30s" }],
    } as const;
    const result = await runLua(
      `
      local test = require("test")
      test.it("stale", function()
        local s = test.no_error(require("store").get("app:cache"))
        s:set("k", "v", 60)
        test.clock.advance(60)
        test.is_nil(s:get("k"))
        local v, stale = s:get_stale("k")
        test.eq({ v, stale }, { "v", true })
        test.clock.advance(30)
        test.is_nil(s:get_stale("k"))
      end)
    `,
      { registry: [registry] },
    );
    expect(statuses(result)).toEqual({ stale: "passed" });
  });

  it("advance refuses a negative or non-finite time", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("negative", function() test.clock.advance(-1) end)
      test.it("nan", function() test.clock.set(0/0) end)
    `);
    expect(result.tests.map((t) => t.failure?.message)).toEqual([
      "bad argument #1 to 'advance' (seconds must be a finite number >= 0, got -1)",
      "bad argument #1 to 'set' (seconds must be a finite number, got NaN)",
    ]);
  });

  it("each file has its own clock", async () => {
    project = luaProject({
      "a_test.lua": `local test = require("test"); test.it("moves", function() test.clock.advance(100) end)`,
      "b_test.lua": `local test = require("test"); test.it("starts fresh", function() test.eq(test.clock.now(), 1767225600) end)`,
    });
    const summary = await project.runAll();
    expect(summary).toMatchObject({ passed: 2, failed: 0 });
  });
});

describe("stores", () => {
  it("state carries over from test to test within a file until reset_stores", async () => {
    const result = await runLua(`
      local test = require("test")
      local store = require("store")
      local s
      test.before_all(function() s = test.no_error(store.get("app:cache")) end)
      test.it("writes", function() s:set("k", 1) end)
      test.it("still there", function() test.eq(s:get("k"), 1) end)
      test.it("reset", function()
        test.reset_stores()
        test.is_nil(s:get("k"))
      end)
    `);
    expect(statuses(result)).toEqual({ writes: "passed", "still there": "passed", reset: "passed" });
  });

  it("each file starts with fresh stores", async () => {
    project = luaProject({
      "a_test.lua": `local test = require("test"); test.it("writes", function() assert(require("store").get("app:cache")):set("k", 1) end)`,
      "b_test.lua": `local test = require("test"); test.it("sees nothing", function() test.is_nil(assert(require("store").get("app:cache")):get("k")) end)`,
    });
    expect(await project.runAll()).toMatchObject({ passed: 2, failed: 0 });
  });
});

describe("test.as", () => {
  it("switches the actor the policies see, and restores it afterwards", async () => {
    const result = await runLua(`
      local test = require("test")
      local store = require("store")
      test.it("switches", function()
        local s = test.no_error(store.get("app:tenant"))
        test.as("tenant:acme", { tenant = "acme" }, function()
          test.no_error(s:set("acme:k", 1))
          local ok, err = s:set("globex:k", 1)
          test.is_nil(ok)
          test.error_kind(err, errors.PERMISSION_DENIED)
          local _, denied = store.get("app:cache")
          test.error_kind(denied, errors.PERMISSION_DENIED)
        end)
        test.no_error(s:set("globex:k", 1))
      end)
    `);
    expect(result.tests[0]).toMatchObject({ status: "passed" });
  });

  it("restores the actor when fn raises, nests, and returns what fn returns", async () => {
    const result = await runLua(`
      local test = require("test")
      local store = require("store")
      test.it("raises", function()
        test.throws(function() test.as("reader", nil, function() error("inside") end) end, "inside")
        local s = test.no_error(store.get("app:cache"))
        test.no_error(s:set("k", 1), nil, "the test's own actor again")
      end)
      test.it("nests", function()
        local a, b = test.as("tenant:acme", { tenant = "acme" }, function()
          return test.as("reader", {}, function()
            return select(2, store.get("app:tenant")):kind(), store.get("app:cache") ~= nil
          end)
        end)
        test.eq({ a, b }, { errors.PERMISSION_DENIED, true })
      end)
    `);
    expect(statuses(result)).toEqual({ raises: "passed", nests: "passed" });
  });

  it("a handle allowed every key for one actor is checked per key again for the actor test.as switches to", async () => {
    // bob may use every key of app:tenant (no condition), tenants only their own: the handle
    // opened as bob must not keep bob's answer inside test.as, nor the tenant's after it.
    const policies = {
      version: "1.0",
      policies: [
        { id: "open", effect: "allow", actions: ["store.get"], resources: ["app:*"] },
        { id: "bob", effect: "allow", actors: ["bob"], actions: ["store.key.*"], resources: ["app:tenant"] },
        {
          id: "own-keys",
          effect: "allow",
          actors: ["tenant:*"],
          actions: ["store.key.*"],
          resources: ["app:tenant"],
          conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
        },
      ],
    } as PolicyDocument;
    const result = await runLua(
      `
      local test = require("test")
      test.it("switches", function()
        local s = test.no_error(require("store").get("app:tenant"))
        test.no_error(s:set("globex:k", 1))
        test.no_error(s:get("globex:k"))
        test.as("tenant:acme", { tenant = "acme" }, function()
          test.no_error(s:set("acme:k", 1))
          test.error_kind(select(2, s:set("globex:k", 2)), errors.PERMISSION_DENIED)
          test.error_kind(select(2, s:get("globex:k")), errors.PERMISSION_DENIED)
        end)
        test.eq(s:get("globex:k"), 1)
        test.no_error(s:set("globex:k", 3))
      end)
    `,
      { policies, actor: { id: "bob", meta: {} } },
    );
    expect(result.tests[0]).toMatchObject({ status: "passed" });
  });

  it("checks its arguments", async () => {
    const result = await runLua(`
      local test = require("test")
      test.it("no id", function() test.as("", nil, function() end) end)
      test.it("bad meta", function() test.as("x", { n = {} }, function() end) end)
    `);
    expect(result.tests.map((t) => t.failure?.message)).toEqual([
      `bad argument #1 to 'as' (non-empty string expected, got "")`,
      "bad argument #2 to 'as' (meta.n must be a string, number or boolean)",
    ]);
  });

  it("the file's actor comes from the options", async () => {
    const source = `
      local test = require("test")
      test.it("reads only", function()
        local s = test.no_error(require("store").get("app:cache"))
        test.error_kind(select(2, s:set("k", 1)), errors.PERMISSION_DENIED)
      end)
    `;
    expect((await runLua(source, { actor: READER })).tests[0]).toMatchObject({ status: "passed" });
    project?.remove();
    expect((await runLua(source, { actor: tenant("acme") })).tests[0]).toMatchObject({ status: "failed" });
  });
});

describe("files that fail outside any test", () => {
  it("a file that does not compile is a compile error with its line", async () => {
    const result = await runLua(`local test = require("test")\ntest.it("x", function()\n  local = 1\nend)\n`);
    expect(result.tests).toEqual([]);
    expect(result.error).toEqual({ kind: "compile", message: "<name> expected near '='", location: { file: "case_test.lua", line: 3 } });
  });

  it("a module that does not compile while the file loads is a compile error too", async () => {
    project = luaProject({ "broken.lua": "return {", "case_test.lua": `local broken = require("broken")` });
    const result = await project.runFile("case_test.lua");
    expect(result.error).toMatchObject({ kind: "compile", location: { file: "broken.lua", line: 1 } });
  });

  it("a file that raises while loading is a load error, and its tests do not run", async () => {
    const source = `
      local test = require("test")
      test.it("declared first", function() end)
      local config = nil
      local limit = config.limit -- raises
    `;
    const result = await runLua(source);
    expect(result.tests).toEqual([]);
    expect(result.error).toEqual({
      kind: "load",
      message: "attempt to index a nil value (local 'config')",
      location: { file: "case_test.lua", line: lineOf(source, "raises") },
    });
  });

  it("a run stopped by a limit fails the running test, and the tests it never reached are skipped with the reason", async () => {
    const result = await runLua(
      `
      local test = require("test")
      test.it("spins", function()
        while true do end
      end)
      test.it("never runs", function() end)
      test.describe("group", function()
        test.it("nor this", function() end)
        test.it_skip("skipped anyway", function() end)
      end)
    `,
      { limits: { maxInstructions: 100_000 } },
    );
    // The kill unwinds the stack before the host sees it, so there is no line to show.
    expect(result.tests).toEqual([
      expect.objectContaining({
        path: ["spins"],
        status: "failed",
        failure: { message: "InstructionLimit: instruction limit exceeded (100000 instructions)", assertion: false },
      }),
      expect.objectContaining({ path: ["never runs"], status: "skipped", skipReason: "not run: the file's run was stopped by InstructionLimit" }),
      expect.objectContaining({ path: ["group", "nor this"], status: "skipped", skipReason: "not run: the file's run was stopped by InstructionLimit" }),
      expect.objectContaining({ path: ["group", "skipped anyway"], status: "skipped" }),
    ]);
    expect(result.tests[3]!.skipReason).toBeUndefined();
  });

  it("a run stopped in a before_all hook skips every test of the file with the reason", async () => {
    const result = await runLua(
      `
      local test = require("test")
      test.before_all(function() while true do end end)
      test.it("a", function() end)
      test.it("b", function() end)
    `,
      { limits: { maxInstructions: 100_000 } },
    );
    expect(result.tests.map((t) => [t.path.join(" > "), t.status, t.skipReason])).toEqual([
      ["a", "skipped", "not run: the file's run was stopped by InstructionLimit"],
      ["b", "skipped", "not run: the file's run was stopped by InstructionLimit"],
    ]);
    expect(result.error?.kind).toBe("run");
  });
});

describe("filter and bail", () => {
  it("a filter runs only the tests whose full name matches, and the hooks they need", async () => {
    const result = await runLua(
      `
      local test = require("test")
      test.describe("sessions", function()
        test.before_all(function() print("sessions setup") end)
        test.it("expire", function() end)
        test.it("touch", function() end)
      end)
      test.describe("flags", function()
        test.before_all(function() print("flags setup") end)
        test.it("expire", function() end)
      end)
    `,
      { filter: /sessions > exp/ },
    );
    expect(statuses(result)).toEqual({ "sessions > expire": "passed" });
    expect(result.output).toBe("sessions setup\n");
  });

  it("a listing run lists the tests without running them, only those the filter selects", async () => {
    project = luaProject({
      "case_test.lua": `
        local test = require("test")
        test.describe("sessions", function()
          test.it("expire", function() error("must not run") end)
          test.it_skip("touch", function() end)
        end)
        test.it("other", function() end)
      `,
    });
    const [file] = discoverTestFiles(["case_test.lua"], project.dir);
    expect(await listTestFile(file!, project.options)).toEqual({
      file: "case_test.lua",
      tests: [
        { path: ["sessions", "expire"], skip: false },
        { path: ["sessions", "touch"], skip: true },
        { path: ["other"], skip: false },
      ],
    });
    expect((await listTestFile(file!, { ...project.options, filter: /sessions/ })).tests.map((t) => t.path.at(-1))).toEqual([
      "expire",
      "touch",
    ]);
  });

  it("bail stops at the first failure, within a file and across files", async () => {
    project = luaProject({
      "a_test.lua": `local test = require("test")
        test.it("one", function() end)
        test.it("two", function() error("x") end)
        test.it("three", function() end)`,
      "b_test.lua": `local test = require("test"); test.it("four", function() end)`,
    });
    const summary = await project.runAll({ bail: true });
    expect(summary).toMatchObject({ passed: 1, failed: 1, bailed: true });
    expect(summary.files.map((f) => f.file)).toEqual(["a_test.lua"]);
  });
});

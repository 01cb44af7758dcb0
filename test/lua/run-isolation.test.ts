/**
 * Each run gets a fresh Lua state built from a per-thread template of shared immutable values,
 * and scripts are compiled once and instantiated per run. Nothing one run does may be visible
 * to the next: every kind of mutation a script can attempt is made by one run and looked for by
 * the next, on one worker (so both runs share the worker's template and compile cache) and inline.
 */
import { lauxlib, lua } from "fengari";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../../src/host.js";
import { CompileCache } from "../../src/lua/compile-cache.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";

const COUNTER_MODULE = `local n = 0 return { bump = function() n = n + 1 return n end, name = "counter" }`;

/** Each mutation a run may attempt (guarded by pcall where the sandbox refuses it). */
const MUTATE = `
  leaked_global = "yes"
  print = nil
  _G.pairs = function() return "hijacked" end
  setmetatable(_G, { __index = function(_, k) return "from-metatable:" .. k end })
  pcall(function() string.upper = function() return "hijacked" end end)
  pcall(rawset, string, "lower", function() return "hijacked" end)
  pcall(rawset, table, "insert", nil)
  pcall(function() math.pi = 3 end)
  pcall(setmetatable, string, {})
  pcall(function() getmetatable("").__index = { evil = true } end)
  pcall(function() os.time = function() return 0 end end)
  pcall(function() coroutine.wrap = nil end)
  local store, errors_module, time = require("store"), require("errors"), require("time")
  pcall(function() store.get = nil end)
  pcall(rawset, store, "get", nil)
  pcall(rawset, errors_module, "new", nil)
  pcall(function() errors.INVALID = "changed" end)
  pcall(rawset, time, "now", nil)
  local counter = require("counter")
  pcall(function() counter.name = "changed" end)
  for i = 1, 5 do counter.bump() end
  bump_count = 0
  local function bump() bump_count = bump_count + 1 return bump_count end
  bump() bump()
  return "mutated"
`;

/** Looks for every mutation above; returns one table of what it saw. */
const INSPECT = `
  local seen = {}
  seen.leaked_global = rawget(_G, "leaked_global")
  seen.print = type(print)
  seen.pairs_is_native = pairs({}) == next
  seen.globals_metatable = getmetatable(_G)
  seen.upper = ("a"):upper()
  seen.lower = ("A"):lower()
  seen.insert = type(table.insert)
  seen.pi = math.pi > 3.14 and math.pi < 3.15
  seen.string_meta = getmetatable("")
  seen.os_time = os.time() > 0
  seen.wrap = type(coroutine.wrap)
  seen.store_get = type(require("store").get)
  seen.errors_new = type(require("errors").new)
  seen.errors_invalid = errors.INVALID
  seen.errors_same = require("errors") == errors
  seen.time_now = type(require("time").now)
  seen.counter_name = require("counter").name
  seen.counter_first_bump = require("counter").bump()
  seen.bump_count = rawget(_G, "bump_count")
  return seen
`;

const FRESH = {
  leaked_global: undefined,
  print: "function",
  pairs_is_native: true,
  globals_metatable: undefined,
  upper: "A",
  lower: "a",
  insert: "function",
  pi: true,
  string_meta: false,
  os_time: true,
  wrap: "function",
  store_get: "function",
  errors_new: "function",
  errors_invalid: "Invalid",
  errors_same: true,
  time_now: "function",
  counter_name: "counter",
  counter_first_bump: 1,
  bump_count: undefined,
};

for (const mode of ["inline", "worker"] as const) {
  describe(`nothing of one run reaches the next (${mode})`, () => {
    let host: Host;
    beforeAll(async () => {
      host = createHost({
        registry: TEST_REGISTRY,
        policies: TEST_POLICIES,
        sweepTimers: false,
        isolation: mode,
        workers: 1,
        modules: { counter: COUNTER_MODULE },
      });
      await host.ready();
    });
    afterAll(async () => {
      await host.close();
    });

    const inspect = async (): Promise<Record<string, unknown>> => {
      const r = await host.run(INSPECT, { actor: ADMIN });
      expect(r.error, r.error?.message).toBeUndefined();
      const seen = r.values[0] as Record<string, unknown>;
      return Object.fromEntries(Object.keys(FRESH).map((k) => [k, seen[k] ?? undefined]));
    };

    it("a fresh run sees the pristine sandbox", async () => {
      expect(await inspect()).toEqual(FRESH);
    });

    it("after a run that mutated everything it could, the next run sees the pristine sandbox", async () => {
      const r = await host.run(MUTATE, { actor: ADMIN });
      expect(r.values, r.error?.message).toEqual(["mutated"]);
      expect(await inspect()).toEqual(FRESH);
      // Twice, so that the second inspection runs from the compile cache as well.
      expect(await inspect()).toEqual(FRESH);
    });

    it("the same cached chunk gets new upvalues and new closures every run", async () => {
      const src = `local n = 0 local function f() n = n + 1 return n end f() f() return f(), tostring(f) ~= tostring(print)`;
      const a = await host.run(src, { actor: ADMIN });
      const b = await host.run(src, { actor: ADMIN });
      expect(a.values).toEqual([3, true]);
      expect(b.values).toEqual([3, true]);
    });

    it("a cached syntax error is the same error, with its position, every time", async () => {
      const bad = `local x = 1\nreturn +`;
      const first = await host.run(bad, { actor: ADMIN, chunkName: "=bad.lua" });
      const second = await host.run(bad, { actor: ADMIN, chunkName: "=bad.lua" });
      expect(first.error).toMatchObject({ kind: "SyntaxError" });
      expect(first.error?.message).toMatch(/^bad\.lua:2:/);
      expect(second.error).toEqual(first.error);
    });
  });
}

describe("CompileCache", () => {
  const state = () => lauxlib.luaL_newstate();
  const call = (L: ReturnType<typeof state>): unknown => {
    lua.lua_call(L, 0, 1);
    const v = lua.lua_tonumber(L, -1);
    lua.lua_pop(L, 1);
    return v;
  };

  it("compiles a chunk once and instantiates it in any state", () => {
    const cache = new CompileCache(1024);
    const L1 = state();
    const L2 = state();
    expect(cache.load(L1, "return 40 + 2", "=a")).toBe(lua.LUA_OK);
    expect(call(L1)).toBe(42);
    expect(cache.load(L2, "return 40 + 2", "=a")).toBe(lua.LUA_OK);
    expect(call(L2)).toBe(42);
    expect(cache.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1 });
  });

  it("keys by chunk name and exact source", () => {
    const cache = new CompileCache(1024);
    const L = state();
    cache.load(L, "return 1", "=a");
    cache.load(L, "return 1", "=b");
    cache.load(L, "return 1 ", "=a");
    cache.load(L, new TextEncoder().encode("return 1"), "=a");
    expect(cache.stats()).toMatchObject({ entries: 3, hits: 1, misses: 3 });
  });

  it("holds at most maxBytes of source, dropping the least recently used", () => {
    const cache = new CompileCache(50);
    const L = state();
    const src = (n: number) => `return ${n} --${"x".repeat(10)}`; // 21 bytes + a 2-byte name: two fit
    cache.load(L, src(1), "=a");
    cache.load(L, src(2), "=a");
    cache.load(L, src(1), "=a"); // 1 is now the most recent
    cache.load(L, src(3), "=a"); // evicts 2
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 46 });
    const before = cache.stats().misses;
    cache.load(L, src(3), "=a");
    expect(cache.stats().misses).toBe(before);
    cache.load(L, src(2), "=a");
    expect(cache.stats().misses).toBe(before + 1);
  });

  it("with 0 bytes caches nothing and still loads", () => {
    const cache = new CompileCache(0);
    const L = state();
    expect(cache.load(L, "return 7", "=z")).toBe(lua.LUA_OK);
    expect(call(L)).toBe(7);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });
});

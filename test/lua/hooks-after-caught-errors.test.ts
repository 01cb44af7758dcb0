/**
 * The count hook carries the instruction limit, the inline wall-clock limit and the memory
 * probe. fengari 0.1's lua_pcallk lost the saved "hooks allowed" bit on its continuation path,
 * so after one error caught by `pcall` inside a coroutine (every run's main chunk is one) the
 * hook never fired again. scripts/patch-fengari.mjs repairs it at install; these cases are one
 * regression test per way a script can catch or survive an error before it loops, in both
 * isolation modes.
 */
import { lauxlib, lua, lualib } from "fengari";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../../src/host.js";
import { assertHooksSurviveCaughtErrors } from "../../src/lua/control.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";
// @ts-expect-error -- a plain .mjs script without types
import { FAULTY, REPAIRED, repair } from "../../scripts/patch-fengari.mjs";

/** Ways to catch or outlive an error; each is followed by a loop that must be stopped. */
const CAUGHT: Record<string, string> = {
  "pcall(error)": `pcall(error, "x")`,
  "pcall with a table error": `pcall(error, { code = 1 })`,
  "pcall with an error value": `pcall(error, errors.new({ kind = "Invalid", message = "m" }))`,
  "a runtime error caught by pcall": `pcall(function() local t = nil; return t.x end)`,
  "xpcall whose handler returns": `xpcall(error, function(m) return m end, "x")`,
  "xpcall whose handler errors": `xpcall(error, function() error("again") end, "x")`,
  "an error caught and rethrown, caught again": `pcall(function() local ok, e = pcall(error, "x") error(e, 0) end)`,
  "pcall inside a coroutine": `coroutine.wrap(function() pcall(error, "x") end)()`,
  "a coroutine that died of an error": `local co = coroutine.create(function() error("x") end) coroutine.resume(co) coroutine.resume(co)`,
  "an error in coroutine.wrap caught outside": `pcall(coroutine.wrap(function() error("x") end))`,
  "an error in __index caught": `pcall(function() return setmetatable({}, { __index = function() error("x") end }).k end)`,
  "an error in __tostring caught": `pcall(tostring, setmetatable({}, { __tostring = function() error("x") end }))`,
  "an error in a table.sort comparator caught": `pcall(table.sort, { 3, 2, 1 }, function() error("x") end)`,
  "an error in a string.gsub callback caught": `pcall(string.gsub, "abc", ".", function() error("x") end)`,
  "an error inside a loaded chunk caught": `pcall(load("error('x')"))`,
  "a syntax error from load": `local f, e = load("this is not lua")`,
  "an error through a tail call caught": `local function f(...) return error(...) end pcall(f, "x")`,
  "a failed store call": `require("store").get("app:nope")`,
  "a thousand caught errors": `for i = 1, 1000 do pcall(error, i) end`,
};

const LOOP = "local n = 0 while true do n = n + 1 end";

for (const mode of ["inline", "worker"] as const) {
  describe(`the count hook keeps firing after a caught error (${mode})`, () => {
    let host: Host;
    beforeAll(async () => {
      // The watchdog's grace is far beyond every deadline here: only the count hook may stop a run.
      host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: mode, workers: 1, watchdogGraceMs: 30_000 });
      await host.ready();
    });
    afterAll(async () => {
      await host.close();
    });

    for (const [name, caught] of Object.entries(CAUGHT)) {
      // 200 000 instructions take milliseconds; the 60 s wall clock must never be the one hit.
      it(`${name}, then a loop: InstructionLimit`, async () => {
        const r = await host.run(`${caught}\n${LOOP}`, { actor: ADMIN, limits: { maxInstructions: 200_000, timeoutMs: 60_000 } });
        expect(r.error?.kind, r.error?.message).toBe("InstructionLimit");
        expect(r.stats.instructions).toBeLessThanOrEqual(200_000 + 1000);
      });
    }

    it("the issue's script: pcall(error), then 3 000 000 additions under a 1 000 000 limit", async () => {
      const r = await host.run(`pcall(error, "x") local n = 0 for i = 1, 3000000 do n = n + 1 end print(n)`, {
        actor: ADMIN,
        limits: { maxInstructions: 1_000_000, timeoutMs: 60_000 },
      });
      expect(r.error?.kind).toBe("InstructionLimit");
      expect(r.output).toBe("");
    });

    it("a string limit hit inside `..` after a caught error ends with StringLimit, not a crash of the host", async () => {
      // Found by the generated scripts: the kill raised from inside OP_CONCAT had no stack slot.
      const r = await host.run(`pcall(error, "x") local s = "xy" while true do s = s .. s end`, {
        actor: ADMIN,
        limits: { maxStringBytes: 64 * 1024, timeoutMs: 60_000 },
      });
      expect(r.error?.kind).toBe("StringLimit");
      expect((await host.run(`return 1`, { actor: ADMIN })).values).toEqual([1]);
    });

    it("pcall(error), then an endless loop with no instruction budget: Timeout from the hook", async () => {
      // The hook checks the deadline every 1000 instructions; the worker watchdog is pushed far
      // out so that only the hook can be what stops the run.
      const r = await host.run(`pcall(error, "x") while true do end`, { actor: ADMIN, limits: { maxInstructions: 1e12, timeoutMs: 200 } });
      expect(r.error?.kind).toBe("Timeout");
      expect(r.error?.message).not.toMatch(/worker stopped/);
      expect(r.stats.wallMs).toBeGreaterThanOrEqual(200);
    });
  });
}

describe("fengari itself", () => {
  it("a hook set on a coroutine fires after lbaselib's own pcall caught an error (the repaired lua_pcallk)", () => {
    const L = lauxlib.luaL_newstate();
    lauxlib.luaL_requiref(L, "_G", lualib.luaopen_base, 1);
    lua.lua_pop(L, 1);
    const co = lua.lua_newthread(L);
    const src = new TextEncoder().encode(`pcall(error, "x") for i = 1, 100000 do end`);
    expect(lauxlib.luaL_loadbufferx(co, src, src.length, "=t", "t")).toBe(lua.LUA_OK);
    let fired = 0;
    lua.lua_sethook(co, () => void fired++, lua.LUA_MASKCOUNT, 100);
    expect(lua.lua_resume(co, L, 0)).toBe(lua.LUA_OK);
    expect(fired).toBeGreaterThan(500);
  });

  it("the sandbox's self-check passes on the installed fengari", () => {
    expect(() => assertHooksSurviveCaughtErrors()).not.toThrow();
  });
});

describe("scripts/patch-fengari.mjs", () => {
  const lapi = (line: string) => `        L.errfunc = func;\n        ${line}\n        ci.callstatus |= lstate.CIST_YPCALL;\n`;

  it("rewrites the faulty line with C Lua's parentheses", () => {
    const { text, state } = repair(lapi(FAULTY));
    expect(state).toBe("repaired");
    expect(text).toBe(lapi(REPAIRED));
    expect(REPAIRED).toContain("(ci.callstatus & ~lstate.CIST_OAH) | L.allowhook");
  });

  it("is idempotent", () => {
    expect(repair(lapi(REPAIRED))).toEqual({ text: lapi(REPAIRED), state: "already repaired" });
  });

  it("fails loudly on a lapi.js it does not recognise", () => {
    expect(() => repair(lapi("ci.callstatus = something_else;"))).toThrow(/found 0/);
  });
});

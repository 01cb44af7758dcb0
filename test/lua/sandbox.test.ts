/** The sandbox: what a script can reach, what it cannot change, and limits it cannot escape. */
import { CompileCache } from "../../src/lua/compile-cache.js";
import { lua, lauxlib } from "fengari";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { resolveLimits } from "../../src/lua/limits.js";
import { RunContext } from "../../src/lua/run-context.js";
import { createSandbox } from "../../src/lua/sandbox.js";
import { failureFromStatus } from "../../src/lua/status.js";
import type { RunGateway } from "../../src/lua/gateway.js";
import { makeHost, type TestHost } from "../helpers.js";

let t: TestHost;
afterEach(async () => {
  await t?.host.close();
});

describe("what a script can reach", () => {
  it("io, debug, package, dofile, loadfile and string.dump are absent", async () => {
    t = makeHost();
    expect(await t.eval(`return io, debug, package, dofile, loadfile, string.dump, js, fengari`)).toEqual(
      Array(8).fill(null),
    );
  });

  it("os holds only time, clock, date and difftime", async () => {
    t = makeHost();
    const [names] = await t.eval(`local n = {}; for k in pairs(os) do n[#n + 1] = k end; table.sort(n); return table.concat(n, ",")`);
    expect(names).toBe("clock,date,difftime,time");
    expect(await t.eval(`return os.execute, os.exit, os.getenv, os.remove`)).toEqual([null, null, null, null]);
  });

  it("load accepts text chunks, with and without an env", async () => {
    t = makeHost();
    expect(await t.eval(`return load("return 1 + 1")(), load("return x", "c", "t", { x = 7 })()`)).toEqual([2, 7]);
  });

  it("load refuses binary chunks even when the mode asks for them", async () => {
    t = makeHost();
    const [f, err] = await t.eval(`return load("\\27Lua\\83\\0", "bin", "b")`);
    expect(f).toBeNull();
    expect(err).toMatch(/attempt to load a binary chunk/);
  });

  it("load takes a reader function, with its chunk name and env, and reports a syntax error as nil, message", async () => {
    t = makeHost();
    const src = `
      local parts, i = { "return ", "x ", "+ 1" }, 0
      local f = load(function() i = i + 1 return parts[i] end, "=pieces", "t", { x = 41 })
      local g, err = load(function() return nil end)
      local h, err2 = load("return +", "=broken")
      return f(), type(g), err2`;
    expect(await t.eval(src)).toEqual([42, "function", expect.stringMatching(/^broken:1:/)]);
  });

  it("a chunk assembled by a load reader obeys the string limit: StringLimit, which pcall cannot catch", async () => {
    t = makeHost();
    // 20 pieces of 1 MiB make one 20 MiB string literal under a 16 MiB limit.
    const r = await t.run(
      `local piece, n = string.rep("x", 2^20), 0
       pcall(load, function() n = n + 1 if n == 1 then return "return '" elseif n <= 21 then return piece else return nil end end)
       return "escaped"`,
      { limits: { maxStringBytes: 16 << 20 } },
    );
    expect(r.error?.kind).toBe("StringLimit");
  });

  it("string.rep of an empty string returns at once whatever the count", async () => {
    t = makeHost();
    // fengari would loop 2^31 - 1 times inside one call, out of the count hook's reach.
    expect(await t.eval(`return string.rep("", 2^31 - 1), ("").rep("", 2^31 - 1, ""), #string.rep("ab", 3, "")`)).toEqual(["", "", 6]);
  });

  it("require resolves only host modules", async () => {
    t = makeHost();
    expect(await t.eval(`return type(require("store")), require("errors") == errors, require("time") == require("time")`)).toEqual([
      "table",
      true,
      true,
    ]);
    const r = await t.run(`require("fs")`);
    expect(r.error).toMatchObject({ kind: "RuntimeError" });
    expect(r.error?.message).toMatch(/module 'fs' not found/);
  });

  it("configured Lua modules can be required", async () => {
    t = makeHost({ modules: { greet: `return { hello = function(n) return "hi " .. n end }` } });
    expect(await t.eval(`return require("greet").hello("ada")`)).toEqual(["hi ada"]);
  });

  it("collectgarbage is harmless", async () => {
    t = makeHost();
    expect(await t.eval(`return collectgarbage("count"), collectgarbage()`)).toEqual([0, 0]);
  });
});

describe("what a script cannot change", () => {
  it("the string metatable is hidden", async () => {
    t = makeHost();
    expect(await t.eval(`return getmetatable("")`)).toEqual([false]);
  });

  it.each(["string", "table", "math", "os", "coroutine", "utf8"])("the %s library is read-only", async (lib) => {
    t = makeHost();
    const [ok1, msg1, ok2, ok3] = await t.eval(`
      local ok1, msg1 = pcall(function() ${lib}.evil = 1 end)
      local ok2 = pcall(rawset, ${lib}, "evil", 1)
      local ok3 = pcall(setmetatable, ${lib}, nil)
      return ok1, msg1, ok2, ok3, ${lib}.evil`);
    expect([ok1, ok2, ok3]).toEqual([false, false, false]);
    expect(msg1).toMatch(/read-only/);
  });

  it("library functions are still enumerable and callable", async () => {
    t = makeHost();
    expect(await t.eval(`local n = 0; for k, v in pairs(string) do n = n + 1 end; return n > 10, ("x"):rep(3), string.upper("a")`)).toEqual([
      true,
      "xxx",
      "A",
    ]);
  });

  it("globals and tampering do not leak into the next run", async () => {
    t = makeHost();
    await t.eval(`leaked = 1; _G.print = nil; string = nil`);
    expect(await t.eval(`return leaked, type(print), type(string.rep)`)).toEqual([null, "function", "function"]);
  });
});

describe("limits a script cannot escape", () => {
  const loops: [string, string][] = [
    ["a plain loop", `while true do end`],
    ["pcall", `pcall(function() while true do end end)`],
    ["xpcall with a looping handler", `xpcall(function() while true do end end, function() while true do end end)`],
    ["pcall in a loop", `while true do pcall(function() while true do end end) end`],
    ["coroutine.wrap", `coroutine.wrap(function() while true do end end)()`],
    ["coroutine.resume", `print(coroutine.resume(coroutine.create(function() while true do end end))); while true do end`],
    ["a table.sort comparator", `local t = {3, 2, 1}; table.sort(t, function(a, b) while true do end end)`],
    ["a string.gsub callback", `string.gsub("abc", "%w", function() while true do end end)`],
    ["a metamethod", `local t = setmetatable({}, { __index = function() while true do end end }); local _ = t.x`],
    ["an error handler that retries", `local function f() while true do end end; while true do pcall(f) end`],
  ];
  it.each(loops)("an endless loop in %s ends with InstructionLimit", async (_n, src) => {
    t = makeHost();
    const r = await t.run(src, { limits: { maxInstructions: 200_000 } });
    expect(r.error?.kind).toBe("InstructionLimit");
    expect(r.stats.instructions).toBeLessThan(200_000 + 50_000);
  });

  it("work spread over many short coroutines shares one budget", async () => {
    t = makeHost();
    const r = await t.run(
      `for i = 1, 100000 do
         local co = coroutine.create(function() local x = 0; for j = 1, 100 do x = x + j end end)
         coroutine.resume(co)
       end`,
      { limits: { maxInstructions: 1_000_000 } },
    );
    expect(r.error?.kind).toBe("InstructionLimit");
  });

  it("an endless loop ends with Timeout at the wall-clock deadline", async () => {
    t = makeHost();
    const r = await t.run(`while true do end`, { limits: { maxInstructions: 1e12, timeoutMs: 150 } });
    expect(r.error?.kind).toBe("Timeout");
  });

  it("a sleep past the deadline ends with Timeout", async () => {
    t = makeHost({ clock: undefined });
    const r = await t.run(`require("time").sleep(10)`, { limits: { timeoutMs: 100 } });
    expect(r.error?.kind).toBe("Timeout");
  });

  it("too many store operations end with StoreOpsLimit, which pcall cannot catch", async () => {
    t = makeHost();
    const r = await t.run(
      `local s = require("store").get("app:cache")
       while true do pcall(s.get, s, "k") end`,
      { limits: { maxStoreOps: 1000 } },
    );
    expect(r.error?.kind).toBe("StoreOpsLimit");
    expect(r.stats.storeOps).toBe(1001);
  });

  it("too much output ends with OutputLimit", async () => {
    t = makeHost();
    const r = await t.run(`while true do pcall(print, string.rep("x", 100)) end`, { limits: { maxOutputBytes: 10_000 } });
    expect(r.error?.kind).toBe("OutputLimit");
    expect(r.output.length).toBeLessThanOrEqual(10_000);
  });
});

describe("errors and results", () => {
  it("a syntax error is reported as SyntaxError with chunk and line", async () => {
    t = makeHost();
    const r = await t.run(`local x = \n x +`);
    expect(r.error).toMatchObject({ kind: "SyntaxError" });
    expect(r.error?.message).toMatch(/script:2:/);
  });

  it("error('boom') is a RuntimeError with position and traceback", async () => {
    t = makeHost();
    const r = await t.run(`local function f() error("boom") end\nf()`);
    expect(r.error?.kind).toBe("RuntimeError");
    expect(r.error?.message).toBe("script:1: boom");
    expect(r.error?.traceback).toMatch(/in (local|function) 'f'/);
  });

  it("raising an errors value keeps its kind", async () => {
    t = makeHost();
    const r = await t.run(`error(errors.new({ kind = errors.NOT_FOUND, message = "gone", retryable = true }))`);
    expect(r.error).toMatchObject({ kind: "NotFound", message: "gone", retryable: true });
  });

  it("an error object whose __tostring loops is reported without running it", async () => {
    t = makeHost();
    const r = await t.run(`error(setmetatable({}, { __tostring = function() while true do end end }))`);
    expect(r.error).toMatchObject({ kind: "RuntimeError", message: "(error object is a table value)" });
  });

  it("return values come back decoded; functions as descriptions", async () => {
    t = makeHost();
    const r = await t.run(`return 1, 2.5, "s", true, nil, { a = { 1, 2 } }, print`);
    expect(r.values).toEqual([1, 2.5, "s", true, null, { a: [1, 2] }, "<function>"]);
  });

  it("args are passed as ...", async () => {
    t = makeHost();
    expect(await t.run(`local a, b = ...; return a + b.n`, { args: [1, { n: 2 }] })).toMatchObject({ values: [3] });
  });

  it("print output is captured", async () => {
    t = makeHost();
    expect((await t.run(`print("a", 1, nil, true); print()`)).output).toBe("a\t1\tnil\ttrue\n\n");
  });

  it("a JS exception inside a host function becomes a Lua error of kind Internal", () => {
    const clock = new ManualClock();
    const run = new RunContext({ runId: "r", limits: resolveLimits(), clock, gateway: {} as RunGateway, compileCache: new CompileCache() });
    const L = createSandbox(run, {
      modules: new Map([
        [
          "boom",
          (L2) => {
            lua.lua_createtable(L2, 0, 1);
            lua.lua_pushcfunction(L2, () => {
              throw new TypeError("host bug");
            });
            lua.lua_setfield(L2, -2, "f");
            return 1;
          },
        ],
        ["errors", (L2) => (lua.lua_createtable(L2, 0, 0), 1)],
      ]),
    });
    const src = `local ok, err = pcall(require("boom").f); return ok, err:kind(), err:message()`;
    lauxlib.luaL_loadbufferx(L, new TextEncoder().encode(src), src.length, "=t", "t");
    const thread = lua.lua_newthread(L);
    run.mainThread = thread;
    lua.lua_pushvalue(L, -2);
    lua.lua_xmove(L, thread, 1);
    const status = lua.lua_resume(thread, L, 0);
    if (status !== lua.LUA_OK) throw new Error(failureFromStatus(L, thread, status, run).message);
    expect(lua.lua_toboolean(thread, 1)).toBe(false);
    expect(new TextDecoder().decode(lua.lua_tolstring(thread, 2)!)).toBe("Internal");
    expect(new TextDecoder().decode(lua.lua_tolstring(thread, 3)!)).toMatch(/host bug/);
  });
});

describe("coroutines and host waits", () => {
  it("time.sleep inside coroutines and pcall suspends and resumes the right coroutine", async () => {
    t = makeHost();
    const start = t.clock.now();
    const values = await t.eval(`
      local time = require("time")
      local co = coroutine.wrap(function(a)
        local ok = pcall(time.sleep, 2)
        local b = coroutine.yield(a + 1)
        time.sleep(3)
        return b * 2, ok
      end)
      local first = co(1)
      local second, ok = co(10)
      return first, second, ok, coroutine.isyieldable()`);
    expect(values).toEqual([2, 20, true, false]);
    expect(t.clock.now() - start).toBe(5000);
  });

  it("yield from the main chunk is an error, as in plain Lua", async () => {
    t = makeHost();
    const r = await t.run(`coroutine.yield(1)`);
    expect(r.error?.message).toMatch(/attempt to yield from outside a coroutine/);
  });

  it("coroutine.status and running behave as in Lua", async () => {
    t = makeHost();
    const values = await t.eval(`
      local co; co = coroutine.create(function() return coroutine.status(co), select(2, coroutine.running()) end)
      local _, inside, main = coroutine.resume(co)
      return coroutine.status(co), inside, main, select(2, coroutine.running())`);
    expect(values).toEqual(["dead", "running", false, true]);
  });
});

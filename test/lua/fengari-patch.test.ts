/**
 * scripts/patch-fengari.mjs's speed fixes: stack slots above the top are cleared by assignment
 * instead of `delete` (a V8 runtime call that took ~15 % of a loop of store calls), luaV_execute's
 * call cases come first in its switch (a yield unwinds through that frame; see the script), and
 * luaL_Buffer writes in place instead of taking a view per call. The installed fengari must carry
 * them, the script must be idempotent and refuse a fengari it does not know, and the rewritten
 * code must still run calls, tail calls and yields, build the same strings, and let the string
 * limit see every byte.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { lauxlib, lua, lualib } from "fengari";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error -- a plain .mjs script without types
import { BUFFER_MARK, CALLS_FIRST_MARK, callsFirst, clearSlotsByAssignment, FAULTY, FUNCTION_PATCHES, patchFengari, patchFunctions, REPAIRED, SELF_CACHE_MARK, SLOT_DELETES, SLOTS_MARK } from "../../scripts/patch-fengari.mjs";
import { makeHost, type TestHost } from "../helpers.js";

const slotDeletes = SLOT_DELETES as Record<string, number>;
const functionPatches = FUNCTION_PATCHES as Record<string, [string, string][]>;
const fengariSrc = join(dirname(createRequire(import.meta.url).resolve("fengari/package.json")), "src");
const DELETE = /\bdelete [A-Za-z_]\w*\.stack\[/g;

describe("the installed fengari", () => {
  for (const file of Object.keys(slotDeletes)) {
    it(`${file} clears stack slots by assignment (run \`node scripts/patch-fengari.mjs\` if this fails)`, () => {
      const text = readFileSync(join(fengariSrc, file), "utf8");
      expect(text.startsWith(SLOTS_MARK)).toBe(true);
      expect(text.match(DELETE)).toBeNull();
    });
  }

  it("lvm.js has the OP_CALL and OP_TAILCALL cases first in luaV_execute (run `node scripts/patch-fengari.mjs` if this fails)", () => {
    const text = readFileSync(join(fengariSrc, "lvm.js"), "utf8");
    expect(text).toMatch(/switch \(opcode\) \{\n\s*\/\* luastore: OP_CALL[^\n]*\n\s*case OP_CALL: \{/);
    expect(text.indexOf("case OP_TAILCALL: {")).toBeLessThan(text.indexOf("case OP_MOVE: {"));
  });

  it("runs calls, tail calls and yields from JS functions with the cases moved", () => {
    const L = lauxlib.luaL_newstate();
    lauxlib.luaL_requiref(L, "_G", lualib.luaopen_base, 1);
    lauxlib.luaL_requiref(L, "coroutine", lualib.luaopen_coroutine, 1);
    lua.lua_pop(L, 2);
    const src = new TextEncoder().encode(`
      local function count(n, acc) if n == 0 then return acc end return count(n - 1, acc + 1) end
      local co = coroutine.wrap(function(a)
        local got = {}
        for i = 1, 3 do got[#got + 1] = coroutine.yield(a + i) end
        return #got
      end)
      return count(100000, 0), co(10), co("x"), co("y"), co("z")`);
    expect(lauxlib.luaL_loadbufferx(L, src, src.length, "=t", "t")).toBe(lua.LUA_OK);
    expect(lua.lua_pcall(L, 0, lua.LUA_MULTRET, 0)).toBe(lua.LUA_OK);
    expect([1, 2, 3, 4, 5].map((i) => lua.lua_tointeger(L, i))).toEqual([100000, 11, 12, 13, 3]);
  });

  it("lauxlib.js's buffer functions write in place (run `node scripts/patch-fengari.mjs` if this fails)", () => {
    const text = readFileSync(join(fengariSrc, "lauxlib.js"), "utf8");
    expect(text).toContain(BUFFER_MARK);
    for (const [original, patched] of functionPatches["lauxlib.js"]!) {
      expect(text).toContain(patched);
      expect(text).not.toContain(original);
    }
  });

  it("lvm.js's OP_SELF, lopcodes.js and lundump.js carry the method cache (run `node scripts/patch-fengari.mjs` if this fails)", () => {
    for (const file of ["lvm.js", "lopcodes.js", "lundump.js"]) {
      const text = readFileSync(join(fengariSrc, file), "utf8");
      for (const [original, patched] of functionPatches[file]!) {
        expect(text).toContain(patched);
        if (!patched.includes(original)) expect(text).not.toContain(original);
      }
    }
    expect(readFileSync(join(fengariSrc, "lvm.js"), "utf8")).toContain(SELF_CACHE_MARK);
  });

  it("leaves no value referenced above the top after calls, pops and settop", () => {
    const L = lauxlib.luaL_newstate();
    lauxlib.luaL_requiref(L, "_G", lualib.luaopen_base, 1);
    lua.lua_pop(L, 1);
    const src = new TextEncoder().encode(`local function f() return 1, 2, 3 end local a = f() local t = { f() } return a, #t`);
    expect(lauxlib.luaL_loadbufferx(L, src, src.length, "=t", "t")).toBe(lua.LUA_OK);
    expect(lua.lua_pcall(L, 0, lua.LUA_MULTRET, 0)).toBe(lua.LUA_OK);
    expect([lua.lua_tointeger(L, 1), lua.lua_tointeger(L, 2)]).toEqual([1, 3]);
    for (let i = 0; i < 10; i++) lua.lua_pushinteger(L, i);
    lua.lua_settop(L, 1);
    lua.lua_pop(L, 1);
    const stack = (L as unknown as { stack: unknown[]; top: number }).stack;
    const top = (L as unknown as { top: number }).top;
    for (let i = top; i < stack.length; i++) expect(stack[i]).toBeUndefined();
  });
});

describe("OP_SELF's method cache, patched", () => {
  /** Runs `source` in a bare state with `mk(mt)`, which makes a userdata with metatable `mt`. */
  const run = (source: string): string => {
    const L = lauxlib.luaL_newstate();
    for (const [name, open] of [["_G", lualib.luaopen_base], ["table", lualib.luaopen_table], ["string", lualib.luaopen_string]] as const) {
      lauxlib.luaL_requiref(L, name, open, 1);
    }
    lua.lua_pop(L, 3);
    lua.lua_pushcfunction(L, (L2) => {
      lua.lua_newuserdata(L2, 0);
      lua.lua_pushvalue(L2, 1);
      lua.lua_setmetatable(L2, -2);
      return 1;
    });
    lua.lua_setglobal(L, "mk");
    const src = new TextEncoder().encode(source);
    expect(lauxlib.luaL_loadbufferx(L, src, src.length, "=t", "t")).toBe(lua.LUA_OK);
    if (lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) throw new Error(lua.lua_tojsstring(L, -1));
    return lua.lua_tojsstring(L, -1);
  };

  // One OP_SELF instruction (in \`call\`) sees every change a cached method could miss.
  const changes = `
    local log = {}
    local function try(...) local ok, v = pcall(call, ...) log[#log + 1] = ok and v or v:gsub("^.-:%d+: ", "") end
    local idx = { m = function(_, x) return "a" .. x end }
    local mt = { __index = idx }
    local u = mk(mt)
    try(u, 1) try(u, 2)
    idx.m = function(_, x) return "b" .. x end
    try(u, 3)
    rawset(idx, "m", nil)
    try(u, 4)
    setmetatable(idx, { __index = { m = function(_, x) return "c" .. x end } })
    try(u, 5)
    setmetatable(idx, nil)
    idx.m = function(_, x) return "d" .. x end
    try(u, 6)
    mt.__index = { m = function(_, x) return "e" .. x end }
    try(u, 7)
    mt.__index = function(_, k) return function(_, x) return "f" .. k .. x end end
    try(u, 8)
    mt.__index = idx
    try(u, 9)
    try(mk({ __index = { m = function(_, x) return "g" .. x end } }), 10)
    try(u, 11)
    mt.__index = nil
    try(u, 12)
    mt.__index = idx
    try(u, 13)
    idx.m = false
    try(u, 14)
    idx.m = function(_, x) return "h" .. x end
    try(u, 15)
    local bare = mk(nil)
    try(bare, 16) try(bare, 17)
    return table.concat(log, ",")`;
  const expected = [
    "a1", "a2", "b3", "attempt to call a nil value (method 'm')", "c5", "d6", "e7", "fm8", "d9", "g10", "d11",
    "attempt to index a userdata value (local 'o')", "d13", "attempt to call a boolean value (method 'm')", "h15",
    "attempt to index a userdata value (local 'o')", "attempt to index a userdata value (local 'o')",
  ].join(",");

  it("answers what the generic lookup answers after every change to the metatable and its __index table", () => {
    expect(run(`local function call(o, x) return o:m(x) end ${changes}`)).toBe(expected);
  });

  it("does the same for instructions loaded from bytecode (lundump.js)", () => {
    expect(run(`local call = load(string.dump(function(o, x) return o:m(x) end), "=t", "b") ${changes}`)).toBe(expected);
  });
});

describe("luaL_Buffer, patched", () => {
  let t: TestHost | undefined;
  afterEach(async () => {
    await t?.host.close();
    t = undefined;
  });

  it("the string library builds the same strings across every buffer growth", async () => {
    t = makeHost();
    const sizes = [0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 5000];
    // Each line builds a string of n bytes through a different buffer path: addchar (gsub's
    // literal replacement, format's literal text), addlstring of short and long pieces
    // (table.concat, rep, gsub's captures), addvalue (format %s), and prepbuffsize (upper).
    const values = await t.eval(
      `local sizes = { ${sizes.join(", ")} }
       local out = {}
       for _, n in ipairs(sizes) do
         local a = string.rep("a", n)
         local pieces = {}
         for i = 1, n do pieces[i] = string.char(97 + i % 26) end
         local long = {}
         for i = 1, n // 20 do long[i] = string.rep(string.char(65 + i % 26), 20) end
         out[#out + 1] = table.concat({
           (a:gsub("a", "b")), (a:gsub("(a)", "%1c")), string.format(a .. "%s|%d", a, n),
           table.concat(pieces), table.concat(long, ","), a:upper(), string.rep("xy", n, "-"),
         }, "/")
       end
       return out`,
    );
    const expected = sizes.map((n) => {
      const a = "a".repeat(n);
      const pieces = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i + 1) % 26))).join("");
      const long = Array.from({ length: Math.floor(n / 20) }, (_, i) => String.fromCharCode(65 + ((i + 1) % 26)).repeat(20)).join(",");
      const rep = Array.from({ length: n }, () => "xy").join("-");
      return [ "b".repeat(n), "ac".repeat(n), `${a}${a}|${n}`, pieces, long, "A".repeat(n), rep].join("/");
    });
    expect(values).toEqual([expected]);
  });

  it("the string limit still stops a buffer at its first byte over the limit, on every path", async () => {
    t = makeHost();
    const max = 1000;
    const cases = [
      // Each builds n bytes from inputs of at most n / 2, which pass the limit themselves.
      (n: number) => `local s = string.rep("a", ${n / 2}):gsub("a", "bc")`, // addchar, gsub's replacement
      (n: number) => `local s = string.format(string.rep("a", ${n / 2}) .. "%s", string.rep("b", ${n / 2}))`, // addchar, then addvalue
      (n: number) => `local t = {} for i = 1, ${n} do t[i] = "a" end local s = table.concat(t)`, // short addlstring
      (n: number) => `local t = {} for i = 1, ${n / 20} do t[i] = string.rep("a", 20) end local s = table.concat(t)`, // long addlstring
    ];
    for (const build of cases) {
      const at = await t.run(build(max), { limits: { maxStringBytes: max } });
      const over = await t.run(build(max + 20), { limits: { maxStringBytes: max } });
      expect([at.ok, over.ok, over.error?.kind]).toEqual([true, false, "StringLimit"]);
    }
  });
});

describe("scripts/patch-fengari.mjs: functions", () => {
  const patches: [string, string][] = [
    ["const f = function() {\n    return 1;\n};", "const f = function() {\n    return 2;\n};"],
    ["const g = function() {\n    return $1;\n};", "const g = function() {\n    return 3;\n};"],
  ];
  const original = `"use strict";\n${patches[0]![0]}\n${patches[1]![0]}\n`;

  it("replaces each function's text once, and finds nothing to do the second time", () => {
    const once = patchFunctions(original, "x.js", patches);
    expect(once.state).toBe("patched");
    expect(once.text).toBe(`"use strict";\n${patches[0]![1]}\n${patches[1]![1]}\n`);
    expect(patchFunctions(once.text, "x.js", patches)).toEqual({ text: once.text, state: "already patched" });
  });

  it("fails loudly on a function it does not find once, or on a half-patched file", () => {
    expect(() => patchFunctions(`"use strict";\n${patches[0]![0]}\n`, "x.js", patches)).toThrow(/const g = function\(\) \{' exactly once .* found it 0 times/);
    expect(() => patchFunctions(`${original}${patches[1]![0]}\n`, "x.js", patches)).toThrow(/found it 2 times/);
    expect(() => patchFunctions(`"use strict";\n${patches[0]![1]}\n${patches[1]![0]}\n`, "x.js", patches)).toThrow(/has 1 of its 2/);
  });
});

describe("scripts/patch-fengari.mjs: stack slots", () => {
  const sample = (n: number): string => `"use strict";\n${Array.from({ length: n }, (_, i) => `    delete L.stack[--L.top];\n    for (let i = 0; i < ${i}; i++) delete from.stack[from.top + i];`).join("\n")}\n`;

  it("rewrites every delete of a stack slot as an assignment, and marks the file", () => {
    const { text, state } = clearSlotsByAssignment(sample(2), "x.js", 4);
    expect(state).toBe("patched");
    expect(text.startsWith(`${SLOTS_MARK}\n"use strict";`)).toBe(true);
    expect(text).toContain("L.stack[--L.top] = void 0;");
    expect(text).toContain("from.stack[from.top + i] = void 0;");
    expect(text.match(DELETE)).toBeNull();
  });

  it("is idempotent", () => {
    const once = clearSlotsByAssignment(sample(1), "x.js", 2).text;
    expect(clearSlotsByAssignment(once, "x.js", 2)).toEqual({ text: once, state: "already patched" });
  });

  it("fails loudly on a file with another number of deletes, or marked but not patched", () => {
    expect(() => clearSlotsByAssignment(sample(1), "x.js", 3)).toThrow(/expected 3 .* found 2/);
    expect(() => clearSlotsByAssignment(`${SLOTS_MARK}\n${sample(1)}`, "x.js", 2)).toThrow(/still has 2/);
  });

  describe("on a copy of fengari's sources", () => {
    let dir: string | undefined;
    afterEach(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    });

    it("patches every listed file once (lua_pcallk too), then finds nothing to do", () => {
      dir = mkdtempSync(join(tmpdir(), "luastore-fengari-"));
      for (const [file, n] of Object.entries(slotDeletes)) {
        const body = Array.from({ length: n }, () => "delete L.stack[--L.top];").join("\n");
        const vm = `${body}\n${functionPatches["lvm.js"]!.map(([o]) => o).join("\n\n")}\n${VM_SWITCH}`;
        writeFileSync(join(dir, file), file === "lapi.js" ? `${FAULTY}\n${body}\n` : file === "lvm.js" ? vm : `${body}\n`);
      }
      for (const file of ["lauxlib.js", "lopcodes.js", "lundump.js"]) {
        writeFileSync(join(dir, file), functionPatches[file]!.map(([o]) => o).join("\n\n"));
      }
      const first = patchFengari(dir) as Record<string, string>;
      expect(first["lapi.js"]).toBe("lua_pcallk repaired, stack slots patched");
      expect(first["ldo.js"]).toBe("stack slots patched");
      expect(first["lauxlib.js"]).toBe("functions patched");
      expect(readFileSync(join(dir, "lauxlib.js"), "utf8")).toBe(functionPatches["lauxlib.js"]!.map(([, p]) => p).join("\n\n"));
      expect(first["lvm.js"]).toBe("stack slots patched, functions patched, calls moved first");
      expect(first["lopcodes.js"]).toBe("functions patched");
      expect(first["lundump.js"]).toBe("functions patched");
      const lapi = readFileSync(join(dir, "lapi.js"), "utf8");
      expect(lapi).toContain(REPAIRED);
      expect(lapi.match(DELETE)).toBeNull();
      const second = patchFengari(dir) as Record<string, string>;
      expect(second["lapi.js"]).toBe("lua_pcallk already repaired, stack slots already patched");
      expect(second["lvm.js"]).toBe("stack slots already patched, functions already patched, calls already first");
      expect(second["lundump.js"]).toBe("functions already patched");
      expect(second["lauxlib.js"]).toBe("functions already patched");
      expect(readFileSync(join(dir, "lapi.js"), "utf8")).toBe(lapi);
    });
  });
});

/** The shape of fengari 0.1.5's luaV_execute switch, cut down. */
const VM_SWITCH = [
  "        switch (opcode) {",
  "            case OP_MOVE: {",
  "                break;",
  "            }",
  "            case OP_CALL: {",
  "                continue newframe;",
  "            }",
  "            case OP_TAILCALL: {",
  "                break;",
  "            }",
  "            case OP_RETURN: {",
  "                break;",
  "            }",
  "        }",
  "",
].join("\n");

describe("scripts/patch-fengari.mjs: calls first", () => {
  it("moves OP_CALL and OP_TAILCALL to the head of the switch, marked, and keeps every case once", () => {
    const { text, state } = callsFirst(VM_SWITCH);
    expect(state).toBe("moved first");
    const order = [...text.matchAll(/case (OP_\w+)/g)].map((m) => m[1]);
    expect(order).toEqual(["OP_CALL", "OP_TAILCALL", "OP_MOVE", "OP_RETURN"]);
    expect(text).toContain(CALLS_FIRST_MARK);
    expect(text.length).toBe(VM_SWITCH.length + `            ${CALLS_FIRST_MARK}\n`.length);
  });

  it("is idempotent", () => {
    const once = callsFirst(VM_SWITCH).text;
    expect(callsFirst(once)).toEqual({ text: once, state: "already first" });
  });

  it("fails loudly on a switch it does not know, or marked but not moved", () => {
    expect(() => callsFirst(VM_SWITCH.replace("case OP_TAILCALL", "case OP_TAILCALL2"))).toThrow(/OP_CALL, then OP_TAILCALL/);
    expect(() => callsFirst(`${VM_SWITCH}${VM_SWITCH}`)).toThrow(/not the one luastore was written against/);
    expect(() => callsFirst(`${CALLS_FIRST_MARK}\n${VM_SWITCH}`)).toThrow(/is not there/);
  });
});

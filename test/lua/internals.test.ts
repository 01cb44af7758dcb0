/**
 * src/lua/internals.ts's stack shortcuts for host functions: reading a userdata argument and
 * writing a result over the last argument must behave as the C API calls they stand for.
 */
import { lua, to_luastring, type lua_State } from "fengari";
import { describe, expect, it } from "vitest";
import { encodeShortString, shortStringOf } from "../../src/codec/lua-msgpack.js";
import { pushUserdata, replaceTopWithBoolean, replaceTopWithString, userdataArg } from "../../src/lua/internals.js";
import { newState, runLua } from "../codec/lua-state.js";

function setGlobalFunction(L: lua_State, name: string, f: (L: lua_State) => number): void {
  lua.lua_pushcfunction(L, f);
  lua.lua_setglobal(L, name);
}

/** Lua that calls `f` (which returns `expected`) in every shape of call, and checks no caller's variable changed. */
const everyCallShape = (expected: string): string => `
  local k, other = "key", "x"
  local v = f(k)
  assert(v == ${expected} and k == "key" and other == "x")
  local function tail(a) return f(a) end
  assert(tail(k) == ${expected} and k == "key")
  local t = { f(k), f(k, other), k, other }
  assert(t[1] == ${expected} and t[2] == ${expected} and t[3] == "key" and t[4] == "x" and #t == 4)
  local ok, r = pcall(f, k)
  assert(ok and r == ${expected} and k == "key")
  local co = coroutine.wrap(function(a) local r2 = f(a) coroutine.yield(r2, a) end)
  local r3, a3 = co(k)
  assert(r3 == ${expected} and a3 == "key")
  assert(select("#", f(k, other)) == 1 and other == "x")`;

describe("replaceTopWithString and replaceTopWithBoolean", () => {
  it("return a string in the last argument's slot, and no caller's variable, table or argument list sees the slot change", () => {
    const L = newState();
    const value = shortStringOf(L, encodeShortString(to_luastring("value")))!;
    setGlobalFunction(L, "f", (L2) => {
      replaceTopWithString(L2, value);
      return 1;
    });
    runLua(L, everyCallShape(`"value"`));
  });

  it("return a boolean the same way", () => {
    const L = newState();
    setGlobalFunction(L, "f", (L2) => {
      replaceTopWithBoolean(L2, true);
      return 1;
    });
    runLua(L, everyCallShape("true"));
  });
});

describe("pushUserdata and userdataArg", () => {
  class Payload {
    constructor(readonly n: number) {}
  }

  it("give a host function back the object its userdata was made with, and null for anything else", () => {
    const L = newState();
    const seen: unknown[] = [];
    setGlobalFunction(L, "make", (L2) => {
      pushUserdata(L2, new Payload(7));
      return 1;
    });
    setGlobalFunction(L, "look", (L2) => {
      seen.push(userdataArg(L2, 1), userdataArg(L2, 2));
      return 0;
    });
    runLua(L, `local u = make() assert(type(u) == "userdata") look(u, "not one") look({}) look()`);
    expect(seen).toEqual([new Payload(7), null, null, null, null, null]);
    expect(seen[0]).toBeInstanceOf(Payload);
  });
});

/** A real fengari state for codec tests: run Lua to build values, check decoded values from Lua. */
import { lauxlib, lua, lualib, to_luastring, type lua_State } from "fengari";
import { encodeFromLua, pushMsgpack } from "../../src/codec/lua-msgpack.js";

export function newState(): lua_State {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  return L;
}

/** Runs a Lua chunk, leaving its `nresults` results on the stack; a Lua error becomes a JS Error. */
export function runLua(L: lua_State, code: string, nresults = 0): void {
  const status = lauxlib.luaL_loadstring(L, to_luastring(code));
  if (status !== lua.LUA_OK || lua.lua_pcall(L, 0, nresults, 0) !== lua.LUA_OK) {
    const message = lua.lua_tojsstring(L, -1);
    lua.lua_pop(L, 1);
    throw new Error(`Lua: ${message}`);
  }
}

/** Encodes the value the Lua expression `expr` evaluates to, in a fresh state. */
export function encodeLua(expr: string, maxBytes = 1 << 20, root?: string): Uint8Array {
  const L = newState();
  runLua(L, `return ${expr}`, 1);
  return encodeFromLua(L, -1, maxBytes, root);
}

/** Runs Lua statements that leave the value to encode in the global `v`, in a fresh state. */
export function encodeLuaChunk(chunk: string, maxBytes = 1 << 20): Uint8Array {
  const L = newState();
  runLua(L, `${chunk}\nreturn v`, 1);
  return encodeFromLua(L, -1, maxBytes);
}

/** Decodes `bytes` into a fresh state as the global `v` and runs `check` (Lua using assert). */
export function checkInLua(bytes: Uint8Array, check: string): void {
  const L = newState();
  const end = pushMsgpack(L, bytes);
  if (end !== bytes.length) throw new Error(`decoded ${end} of ${bytes.length} bytes`);
  lua.lua_setglobal(L, "v");
  runLua(L, check);
}

/** Round trip of a Lua expression: encode it in one state, check it in another. */
export function roundTrip(expr: string, check: string): Uint8Array {
  const bytes = encodeLua(expr);
  checkInLua(bytes, check);
  return bytes;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/**
 * Conversions between Lua strings (Uint8Array) and JS strings in the two senses we need:
 * text (UTF-8, for messages and names) and byte strings (latin1, for keys; see src/bytes.ts).
 */
import { lua, lauxlib, to_jsstring, to_luastring, type lua_State, type LuaString } from "fengari";
import { byteStringFromBytes } from "../bytes.js";

const textDecoder = new TextDecoder("utf-8");
const textEncoder = new TextEncoder();

/** Decodes Lua bytes as UTF-8 text (invalid sequences become U+FFFD). */
export function luaStringToJs(s: LuaString): string {
  return textDecoder.decode(s);
}

/** Pushes JS text as UTF-8 bytes. */
export function pushJsString(L: lua_State, text: string): void {
  lua.lua_pushstring(L, textEncoder.encode(text));
}

/** The Lua string at `idx` as a byte string (no metamethods, no number coercion). */
export function byteStringAt(L: lua_State, idx: number): string {
  return byteStringFromBytes(lua.lua_tolstring(L, idx)!);
}

export { to_jsstring, to_luastring };

/** Raises the standard "bad argument #n to 'f' (X expected, got Y)" error. */
export function typeError(L: lua_State, arg: number, expected: string): never {
  const got = luaStringToJs(lauxlib.luaL_typename(L, arg));
  return lauxlib.luaL_argerror(L, arg, `${expected} expected, got ${got}`);
}

/**
 * The Lua `errors` module (a global and `require("errors")`) and the error values every host
 * function returns as the second result of `nil, err`.
 *
 * An error value is a full userdata whose JS payload holds kind, message and retryable, and
 * whose uservalue holds `details`. Userdata rather than a table: a script cannot rewrite the
 * kind of an error it received, and the host reads it without running any metamethod.
 */
import { lua, lauxlib, to_luastring, type lua_State } from "fengari";
import { ErrorKind } from "../../errors.js";
import { luaStringToJs, pushJsString, typeError } from "../strings.js";

export const ERROR_META = to_luastring("luastore.Error");
const BRAND = Symbol("luastore.error");

/** The JS payload of an error userdata. */
export interface LuaErrorData {
  [BRAND]: true;
  kind: string;
  message: string;
  retryable: boolean;
  /**
   * True for values made by `errors.new`: their kind is the script's word, not the host's. A run
   * that ends with such a value of a host-verdict kind is reported as RuntimeError (status.ts).
   */
  byScript: boolean;
}

/** The payload when the value at `idx` is a luastore error value, else null. */
export function toErrorData(L: lua_State, idx: number): LuaErrorData | null {
  if (lua.lua_type(L, idx) !== lua.LUA_TUSERDATA) return null;
  const data = lua.lua_touserdata(L, idx) as Partial<LuaErrorData> | null;
  return data !== null && data[BRAND] === true ? (data as LuaErrorData) : null;
}

/** Pushes a new error value made by the host (details nil). */
export function pushError(L: lua_State, kind: string, message: string, retryable = false, byScript = false): void {
  const data = lua.lua_newuserdata(L, 0) as LuaErrorData;
  data[BRAND] = true;
  data.kind = kind;
  data.message = message;
  data.retryable = retryable;
  data.byScript = byScript;
  lauxlib.luaL_setmetatable(L, ERROR_META);
}

/** Pushes `nil, err` and returns 2: the shape of every failed host call. */
export function failWith(L: lua_State, kind: string, message: string, retryable = false): number {
  lua.lua_pushnil(L);
  pushError(L, kind, message, retryable);
  return 2;
}

function checkError(L: lua_State, idx: number): LuaErrorData {
  const data = toErrorData(L, idx);
  if (data === null) typeError(L, idx, "error");
  return data!;
}

/** An error value's message for `tostring` and `..`. */
function pushMessageOf(L: lua_State, idx: number): void {
  const data = toErrorData(L, idx);
  if (data !== null) pushJsString(L, data.message);
  else if (lua.lua_type(L, idx) === lua.LUA_TSTRING || lua.lua_type(L, idx) === lua.LUA_TNUMBER) {
    lua.lua_pushvalue(L, idx);
    lua.lua_tolstring(L, -1);
  } else {
    lauxlib.luaL_error(L, "attempt to concatenate a %s value", lauxlib.luaL_typename(L, idx));
  }
}

const methods: Record<string, (L: lua_State) => number> = {
  kind(L) {
    pushJsString(L, checkError(L, 1).kind);
    return 1;
  },
  message(L) {
    pushJsString(L, checkError(L, 1).message);
    return 1;
  },
  retryable(L) {
    lua.lua_pushboolean(L, checkError(L, 1).retryable);
    return 1;
  },
  details(L) {
    checkError(L, 1);
    lua.lua_getuservalue(L, 1);
    return 1;
  },
};

const metamethods: Record<string, (L: lua_State) => number> = {
  __tostring(L) {
    pushJsString(L, checkError(L, 1).message);
    return 1;
  },
  __concat(L) {
    pushMessageOf(L, 1);
    pushMessageOf(L, 2);
    lua.lua_concat(L, 2);
    return 1;
  },
};

function readErrorOptions(L: lua_State): void {
  // errors.new({ message=, kind=, retryable=, details= })
  lua.lua_getfield(L, 1, "message");
  if (lua.lua_type(L, -1) !== lua.LUA_TSTRING) lauxlib.luaL_argerror(L, 1, "field 'message' must be a string");
  const message = luaStringToJs(lua.lua_tolstring(L, -1)!);
  lua.lua_getfield(L, 1, "kind");
  let kind = "";
  if (!lua.lua_isnil(L, -1)) {
    if (lua.lua_type(L, -1) !== lua.LUA_TSTRING) lauxlib.luaL_argerror(L, 1, "field 'kind' must be a string");
    kind = luaStringToJs(lua.lua_tolstring(L, -1)!);
  }
  lua.lua_getfield(L, 1, "retryable");
  const retryable = lua.lua_toboolean(L, -1);
  lua.lua_getfield(L, 1, "details");
  const detailsType = lua.lua_type(L, -1);
  if (detailsType !== lua.LUA_TNIL && detailsType !== lua.LUA_TTABLE) {
    lauxlib.luaL_argerror(L, 1, "field 'details' must be a table");
  }
  pushError(L, kind, message, retryable, true);
  lua.lua_rotate(L, -2, 1); // error below details
  lua.lua_setuservalue(L, -2);
}

const moduleFunctions: Record<string, (L: lua_State) => number> = {
  new(L) {
    const t = lua.lua_type(L, 1);
    if (t === lua.LUA_TSTRING) {
      pushError(L, "", luaStringToJs(lua.lua_tolstring(L, 1)!), false, true);
    } else if (t === lua.LUA_TTABLE) {
      readErrorOptions(L);
    } else {
      lauxlib.luaL_argerror(L, 1, "string or table expected");
    }
    return 1;
  },
  is(L) {
    const data = toErrorData(L, 1);
    if (data === null) {
      lua.lua_pushboolean(L, false);
      return 1;
    }
    if (lua.lua_isnoneornil(L, 2)) {
      lua.lua_pushboolean(L, true);
      return 1;
    }
    const kind = lua.lua_type(L, 2) === lua.LUA_TSTRING ? luaStringToJs(lua.lua_tolstring(L, 2)!) : null;
    lua.lua_pushboolean(L, kind !== null && data.kind === kind);
    return 1;
  },
};

/** Registers the metatable of error values (every sandbox does this first: host calls make errors). */
export function registerErrorMetatable(L: lua_State): void {
  if (!lauxlib.luaL_newmetatable(L, ERROR_META)) {
    lua.lua_pop(L, 1);
    return;
  }
  lauxlib.luaL_setfuncs(L, metamethods, 0);
  lua.lua_createtable(L, 0, 4);
  lauxlib.luaL_setfuncs(L, methods, 0);
  lua.lua_setfield(L, -2, "__index");
  lua.lua_pushliteral(L, "error");
  lua.lua_setfield(L, -2, "__name");
  lua.lua_pushboolean(L, false);
  lua.lua_setfield(L, -2, "__metatable");
  lua.lua_pop(L, 1);
}

/** Pushes the `errors` module table. */
export function openErrors(L: lua_State): number {
  registerErrorMetatable(L);
  lua.lua_createtable(L, 0, 16);
  lauxlib.luaL_setfuncs(L, moduleFunctions, 0);
  for (const [name, value] of Object.entries(ErrorKind)) {
    pushJsString(L, value);
    lua.lua_setfield(L, -2, name);
  }
  return 1;
}

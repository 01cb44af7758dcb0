/**
 * The Lua `store` module: `store.get(id)` acquires a handle; a handle's methods check, in this
 * order, released → key → policy → value and TTL, and answer `value` or `nil, err`. A denied
 * or failed call never raises; calling a method on something that is not a store does
 * (the usual "bad argument" error).
 */
import { lua, lauxlib, to_luastring, type lua_State, type JSFunction } from "fengari";
import { ErrorKind } from "../../errors.js";
import { byteStringFromBytes, quoteByteString } from "../../bytes.js";
import { CodecError } from "../../codec/codec-error.js";
import { encodeFromLua, pushMsgpack } from "../../codec/lua-msgpack.js";
import { OpFailure, type HandleInfo, type KeyAction } from "../../runtime/gateway.js";
import { isPromise, type MaybePromise } from "../../store/store.js";
import { killRun, raiseKill } from "../control.js";
import { runOf } from "../internals.js";
import { failWith, pushError } from "./errors.js";
import { luaStringToJs, pushJsString, typeError } from "../strings.js";

const STORE_META = to_luastring("luastore.Store");
const BRAND = Symbol("luastore.store");

interface HandleData {
  [BRAND]: true;
  info: HandleInfo;
  released: boolean;
  runId: string;
}

function checkHandle(L: lua_State): HandleData {
  const data = lua.lua_touserdata(L, 1) as Partial<HandleData> | null;
  if (data === null || typeof data !== "object" || data[BRAND] !== true) typeError(L, 1, "store");
  return data as HandleData;
}

function fail(L: lua_State, f: OpFailure): number {
  return failWith(L, f.kind, f.message, f.retryable);
}

/** Counts one store operation against the run's limit (the kill cannot be caught). */
function countOp(L: lua_State): void {
  const run = runOf(L);
  if (run.killed !== null) raiseKill(L);
  if (++run.storeOps > run.limits.maxStoreOps) {
    killRun(L, ErrorKind.STORE_OPS_LIMIT, `store operation limit exceeded (${run.limits.maxStoreOps} operations)`);
  }
}

/**
 * The key at arg 2 as a byte string, or null after pushing `nil, err`.
 * A key is a non-empty string no longer than the store's max_key_length; a number is not a key.
 */
function checkKey(L: lua_State, h: HandleData): string | null {
  if (lua.lua_type(L, 2) !== lua.LUA_TSTRING) {
    failWith(L, ErrorKind.INVALID, `key must be a string, got ${luaStringToJs(lauxlib.luaL_typename(L, 2))}`);
    return null;
  }
  const bytes = lua.lua_tolstring(L, 2)!;
  if (bytes.length === 0) {
    failWith(L, ErrorKind.INVALID, "key must not be empty");
    return null;
  }
  if (bytes.length > h.info.maxKeyLength) {
    failWith(
      L,
      ErrorKind.INVALID,
      `key is ${bytes.length} bytes, longer than max_key_length ${h.info.maxKeyLength}`,
    );
    return null;
  }
  return byteStringFromBytes(bytes);
}

/** TTL at `idx` in ms (0 = none), or -1 with the reason in `ttlProblem`. */
let ttlProblem = "";
function ttlAt(L: lua_State, idx: number): number {
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TNIL || t === lua.LUA_TNONE) return 0;
  if (t !== lua.LUA_TNUMBER) {
    ttlProblem = `ttl must be a number of seconds, got ${luaStringToJs(lauxlib.luaL_typename(L, idx))}`;
    return -1;
  }
  const seconds = lua.lua_tonumber(L, idx);
  if (!Number.isFinite(seconds) || seconds < 0) {
    ttlProblem = `ttl must be a finite number >= 0, got ${String(seconds)}`;
    return -1;
  }
  if (seconds === 0) return 0;
  // Millisecond precision; a positive TTL never rounds down to "no expiry".
  return Math.max(1, Math.round(seconds * 1000));
}

/**
 * Finishes a gateway answer: synchronous answers are pushed at once; a promise suspends the
 * script (the run loop awaits it and resumes with the pushed results).
 */
function answer<T>(L: lua_State, r: MaybePromise<T | OpFailure>, push: (L: lua_State, v: T) => number): number {
  if (!isPromise(r)) return r instanceof OpFailure ? fail(L, r) : push(L, r);
  if (!lua.lua_isyieldable(L)) {
    return failWith(L, ErrorKind.INTERNAL, "cannot wait for the store here (inside a metamethod or library callback)");
  }
  const run = runOf(L);
  run.pending = {
    promise: r,
    push: (L2, v) => (v instanceof OpFailure ? fail(L2, v) : push(L2, v as T)),
  };
  return lua.lua_yield(L, 0);
}

const pushValue = (L: lua_State, v: Uint8Array | undefined): number => {
  if (v === undefined) lua.lua_pushnil(L);
  else pushMsgpack(L, v);
  return 1;
};
const pushBoolean = (L: lua_State, v: boolean): number => {
  lua.lua_pushboolean(L, v);
  return 1;
};
const pushTrue = (L: lua_State): number => {
  lua.lua_pushboolean(L, true);
  return 1;
};

function keyOp(action: KeyAction): (L: lua_State, h: HandleData, key: string) => number {
  switch (action) {
    case "store.key.get":
      return (L, h, key) => answer(L, runOf(L).gateway.get(h.info.handle, key), pushValue);
    case "store.key.has":
      return (L, h, key) => answer(L, runOf(L).gateway.has(h.info.handle, key), pushBoolean);
    case "store.key.delete":
      return (L, h, key) => answer(L, runOf(L).gateway.delete(h.info.handle, key), pushBoolean);
    default:
      throw new Error(`no simple key operation for ${action}`);
  }
}

function simpleKeyMethod(action: KeyAction): JSFunction {
  const op = keyOp(action);
  return (L) => {
    const h = checkHandle(L);
    if (h.released) return failWith(L, ErrorKind.INVALID, "store released");
    const key = checkKey(L, h);
    if (key === null) return 2;
    countOp(L);
    return op(L, h, key);
  };
}

const set: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.released) return failWith(L, ErrorKind.INVALID, "store released");
  const key = checkKey(L, h);
  if (key === null) return 2;
  countOp(L);
  const run = runOf(L);
  const ttlMs = ttlAt(L, 4);
  let value: Uint8Array | null = null;
  let problem: string | null = null;
  if (ttlMs < 0) problem = ttlProblem;
  else if (lua.lua_type(L, 3) <= lua.LUA_TNIL) problem = "value: nil cannot be stored (use delete)";
  else {
    try {
      value = encodeFromLua(L, 3, h.info.maxValueSize);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      problem = err.message;
    }
  }
  if (value === null) {
    // Policy before value: a denied caller learns nothing about what it tried to store.
    const denied = run.gateway.check(h.info.handle, "store.key.set", key);
    if (denied !== null) return fail(L, denied);
    return failWith(L, ErrorKind.INVALID, problem ?? "invalid value");
  }
  return answer(L, run.gateway.set(h.info.handle, key, value, ttlMs), pushTrue);
};

const release: JSFunction = (L) => {
  const h = checkHandle(L);
  if (!h.released) {
    h.released = true;
    runOf(L).gateway.release(h.info.handle);
  }
  lua.lua_pushboolean(L, true);
  return 1;
};

const methods: Record<string, JSFunction> = {
  get: simpleKeyMethod("store.key.get"),
  set,
  has: simpleKeyMethod("store.key.has"),
  delete: simpleKeyMethod("store.key.delete"),
  release,
};

function pushHandle(L: lua_State, info: HandleInfo): number {
  const data = lua.lua_newuserdata(L, 0) as HandleData;
  data[BRAND] = true;
  data.info = info;
  data.released = false;
  data.runId = runOf(L).runId;
  lauxlib.luaL_setmetatable(L, STORE_META);
  return 1;
}

/** `store.get(id)`: policy `store.get`, then a pooled handle. */
const acquire: JSFunction = (L) => {
  if (lua.lua_type(L, 1) !== lua.LUA_TSTRING) {
    return failWith(L, ErrorKind.INVALID, `store id must be a string, got ${luaStringToJs(lauxlib.luaL_typename(L, 1))}`);
  }
  const idBytes = lua.lua_tolstring(L, 1)!;
  if (idBytes.length === 0) return failWith(L, ErrorKind.INVALID, "store id must not be empty");
  countOp(L);
  const id = byteStringFromBytes(idBytes);
  return answer(L, runOf(L).gateway.acquire(id), pushHandle);
};

/** Pushes the `store` module table (and registers the handle metatable). */
export function openStore(L: lua_State): number {
  if (lauxlib.luaL_newmetatable(L, STORE_META)) {
    lua.lua_createtable(L, 0, Object.keys(methods).length);
    lauxlib.luaL_setfuncs(L, methods, 0);
    lua.lua_setfield(L, -2, "__index");
    lua.lua_pushcfunction(L, (L2) => {
      const h = checkHandle(L2);
      pushJsString(L2, `store ${quoteByteString(h.info.storeId)}${h.released ? " (released)" : ""}`);
      return 1;
    });
    lua.lua_setfield(L, -2, "__tostring");
    lua.lua_pushliteral(L, "store");
    lua.lua_setfield(L, -2, "__name");
    lua.lua_pushboolean(L, false);
    lua.lua_setfield(L, -2, "__metatable");
  }
  lua.lua_pop(L, 1);
  lua.lua_createtable(L, 0, 1);
  lua.lua_pushcfunction(L, acquire);
  lua.lua_setfield(L, -2, "get");
  return 1;
}

export { pushError };

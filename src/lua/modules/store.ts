/**
 * The Lua `store` module: `store.get(id)` acquires a handle; a handle's methods check, in this
 * order, released → key(s) → policy → value, TTL and options, and answer `value` or
 * `nil, err`. A denied or failed call never raises; calling a method on something that is not
 * a store does (the usual "bad argument" error).
 *
 * `s:namespace(prefix)` returns a view of the same handle whose keys are relative to
 * `prefix .. ":"`; policies always see the full key.
 */
import { lua, lauxlib, to_luastring, type lua_State, type JSFunction } from "fengari";
import { ErrorKind } from "../../errors.js";
import { byteStringFromBytes, bytesFromByteString, quoteByteString } from "../../bytes.js";
import { CodecError } from "../../codec/codec-error.js";
import { encodeFromLua, encodeShortString, pushMsgpack, pushShortString, SHORT_STRING_BYTES, shortStringOf } from "../../codec/lua-msgpack.js";
import {
  callTooLarge,
  OpFailure,
  type Answer,
  type HandleInfo,
  type KeyAction,
  type ListAnswer,
  type StoreInfoAnswer,
  type ZsetAnswer,
} from "../gateway.js";
import {
  isPromise,
  LIST_MAX_LIMIT,
  SCORE_BYTES,
  type AtomicOutcome,
  type AtomicWrite,
  type EntryRecord,
  type ListEnd,
  type ListPage,
  type LuaNumber,
  type StaleValue,
  type ZsetEntry,
  type ZsetRange,
} from "../../store/store.js";
import { MAX_STORE_ID_BYTES } from "../../registry/validate.js";
import { killRun, raiseKill } from "../control.js";
import { pushUserdata, rawGetShared, rawSetShared, replaceTopWithBoolean, replaceTopWithString, runOf, sharedString, stringArg, userdataArg } from "../internals.js";
import { failWith, pushError } from "./errors.js";
import { luaStringToJs, pushJsString, typeError } from "../strings.js";

export const STORE_META = to_luastring("luastore.Store");
/** Most keys one get_many call may carry (its answer holds every value). */
export const MAX_BATCH = 1000;
/** Most keys one set_many / delete_many call may carry: Cloudflare KV's bulk limit. */
export const MAX_BULK = 10_000;
/** Largest encoded metadata of a key. */
export const MAX_METADATA_BYTES = 1024;
const LIST_DEFAULT_LIMIT = 100;

/** State shared by a handle and its namespace views. */
interface HandleRef {
  info: HandleInfo;
  released: boolean;
}

/** A handle or one of its namespace views: the host data of a store userdata (see pushUserdata). */
class HandleData {
  readonly ref: HandleRef;
  /** Byte-string prefix of this view ("" for the handle itself). */
  readonly prefix: string;
  constructor(ref: HandleRef, prefix: string) {
    this.ref = ref;
    this.prefix = prefix;
  }
}

function checkHandle(L: lua_State): HandleData {
  const data = userdataArg(L, 1);
  if (!(data instanceof HandleData)) typeError(L, 1, "store");
  return data;
}

/**
 * The store and namespace prefix (a byte string) of the open handle or view at `idx`, else
 * undefined: what `luastore repl` needs to open it again in the next input's run.
 */
export function handleOrigin(L: lua_State, idx: number): { storeId: string; prefix: string } | undefined {
  const data = lua.lua_touserdata(L, idx);
  if (!(data instanceof HandleData) || data.ref.released) return undefined;
  return { storeId: data.ref.info.storeId, prefix: data.prefix };
}

/** Pushes `nil, err` for an OpFailure. */
function fail(L: lua_State, f: OpFailure): number {
  return failWith(L, f.kind, f.message, f.retryable);
}

/** Pushes `nil, err` for an error found before the gateway, counting it for the store's metrics. */
function invalid(L: lua_State, h: HandleData, message: string): number {
  runOf(L).gateway.noteError(h.ref.info.handle, ErrorKind.INVALID);
  return failWith(L, ErrorKind.INVALID, message);
}

/** Counts a failure found before the gateway for the store's metrics, and returns it. */
function noted(L: lua_State, h: HandleData, f: OpFailure): OpFailure {
  runOf(L).gateway.noteError(h.ref.info.handle, f.kind);
  return f;
}

/** Counts one store operation against the run's limit (the kill cannot be caught). */
function countOp(L: lua_State): void {
  const run = runOf(L);
  if (run.killed !== null) raiseKill(L);
  if (++run.storeOps > run.limits.maxStoreOps) {
    killRun(L, ErrorKind.STORE_OPS_LIMIT, `store operation limit exceeded (${run.limits.maxStoreOps} operations)`);
  }
}

const typeName = (L: lua_State, idx: number): string => luaStringToJs(lauxlib.luaL_typename(L, idx));

/** The message for a key, prefix or cursor of `n` bytes that is too long for the view `h`. */
function tooLong(what: string, n: number, h: HandleData, max: number): string {
  const full = n + h.prefix.length;
  return h.prefix.length > 0
    ? `${what} is ${full} bytes with its namespace, longer than max_key_length ${max}`
    : `${what} is ${n} bytes, longer than max_key_length ${max}`;
}

/** Why the value at `idx` is not a key (for a view with `prefix`), or null when it is one. */
function keyProblem(L: lua_State, idx: number, h: HandleData, what = "key"): string | null {
  if (lua.lua_type(L, idx) !== lua.LUA_TSTRING) return `${what} must be a string, got ${typeName(L, idx)}`;
  const n = lua.lua_tolstring(L, idx)!.length;
  if (n === 0) return `${what} must not be empty`;
  if (n + h.prefix.length > h.ref.info.maxKeyLength) return tooLong(what, n, h, h.ref.info.maxKeyLength);
  return null;
}

const KEY_STRINGS = 4;
const keyBytesSeen: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(KEY_STRINGS).fill(undefined);
const keyStringsMade: string[] = new Array<string>(KEY_STRINGS).fill("");
let nextKeyString = 0;

/**
 * The byte string of a Lua string's bytes. Lua strings are immutable, so the same bytes object
 * is the same key: a loop over one key skips the conversion (and V8 keeps that string's hash).
 * Measured: 60–80 ns less per get/set.
 */
function keyStringOf(bytes: Uint8Array): string {
  for (let i = 0; i < KEY_STRINGS; i++) if (keyBytesSeen[i] === bytes) return keyStringsMade[i]!;
  const key = byteStringFromBytes(bytes);
  keyBytesSeen[nextKeyString] = bytes;
  keyStringsMade[nextKeyString] = key;
  nextKeyString = (nextKeyString + 1) & (KEY_STRINGS - 1);
  return key;
}

const VALUE_STRINGS = 4;
const valueBytesSeen: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VALUE_STRINGS).fill(undefined);
const valuesEncoded: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VALUE_STRINGS).fill(undefined);
let nextValueString = 0;

/**
 * The MessagePack of a short Lua string value. As with keys, the same bytes object is the same
 * string, and a store never changes a value it is given (it copies it or keeps it as it is), so
 * one encoded array can go to several writes: a loop writing one value skips the new Uint8Array
 * (measured: 9 % of a loop of `s:set`).
 */
function shortValueOf(bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < VALUE_STRINGS; i++) if (valueBytesSeen[i] === bytes) return valuesEncoded[i]!;
  const encoded = encodeShortString(bytes);
  valueBytesSeen[nextValueString] = bytes;
  valuesEncoded[nextValueString] = encoded;
  nextValueString = (nextValueString + 1) & (VALUE_STRINGS - 1);
  return encoded;
}

/** The full key (namespace prefix + key) of the string at `idx`; call after keyProblem. */
function fullKeyAt(L: lua_State, idx: number, h: HandleData): string {
  const key = keyStringOf(lua.lua_tolstring(L, idx)!);
  return h.prefix.length === 0 ? key : h.prefix + key;
}

/** Pushes a full key as the view sees it (relative to its namespace). */
function pushRelativeKey(L: lua_State, h: HandleData, fullKey: string): void {
  lua.lua_pushstring(L, bytesFromByteString(h.prefix.length === 0 ? fullKey : fullKey.slice(h.prefix.length)));
}

/**
 * The common start of every key method: released → key. Returns the full key, or null
 * after pushing `nil, err`.
 */
function begin(L: lua_State, h: HandleData): string | null {
  if (h.ref.released) {
    failWith(L, ErrorKind.INVALID, "store released");
    return null;
  }
  // The usual case in one stack access; keyProblem says what is wrong otherwise.
  const bytes = stringArg(L, 2);
  if (bytes === null || bytes.length === 0 || bytes.length + h.prefix.length > h.ref.info.maxKeyLength) {
    invalid(L, h, keyProblem(L, 2, h)!);
    return null;
  }
  countOp(L);
  const key = keyStringOf(bytes);
  return h.prefix.length === 0 ? key : h.prefix + key;
}

/** TTL at `idx` in ms (0 = none), or a problem message. */
function ttlAt(L: lua_State, idx: number, name = "ttl"): number | string {
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TNIL || t === lua.LUA_TNONE) return 0;
  if (t !== lua.LUA_TNUMBER) return `${name} must be a number of seconds, got ${typeName(L, idx)}`;
  const seconds = lua.lua_tonumber(L, idx);
  if (!Number.isFinite(seconds) || seconds < 0) return `${name} must be a finite number >= 0, got ${String(seconds)}`;
  if (seconds === 0) return 0;
  // Millisecond precision; a positive TTL never rounds down to "no expiry".
  return Math.max(1, Math.round(seconds * 1000));
}

/**
 * An absolute expiry at `idx` (seconds since the epoch, a float) as the TTL in ms from the run's
 * clock now (the clock `time.now()` reads), or a problem message. A time that is not in the future
 * is refused rather than taken as "delete now": a script whose clock or arithmetic is off loses
 * no data, and Cloudflare KV refuses one too.
 */
function expiresAtArg(L: lua_State, idx: number): number | string {
  if (lua.lua_type(L, idx) !== lua.LUA_TNUMBER) return `expires_at must be a number of seconds since the epoch, got ${typeName(L, idx)}`;
  const seconds = lua.lua_tonumber(L, idx);
  if (!Number.isFinite(seconds)) return `expires_at must be finite, got ${String(seconds)}`;
  const now = runOf(L).clock.now();
  const ms = seconds * 1000 - now;
  if (ms <= 0) return `expires_at ${String(seconds)} is not in the future (now ${String(now / 1000)})`;
  // Rounded up: the key never expires before the time asked for.
  return Math.ceil(ms);
}

/** The encoded value at `idx`, or a problem message. */
function valueAt(L: lua_State, idx: number, maxBytes: number, root: string | (() => string) = "value"): Uint8Array | string {
  // stringArg reads argument slots: a value below the top (set_many's, atomic's) is made absolute first.
  const short = stringArg(L, idx < 0 ? lua.lua_gettop(L) + idx + 1 : idx);
  if (short !== null && short.length <= SHORT_STRING_BYTES && short.length < maxBytes) return shortValueOf(short);
  const name = typeof root === "string" ? root : undefined;
  if (lua.lua_type(L, idx) <= lua.LUA_TNIL) return `${name ?? (root as () => string)()}: nil cannot be stored (use delete)`;
  try {
    // A root built per value (set_many's, atomic's `set[<key>]`) is only needed for a message:
    // made then, by encoding once more (measured: quoting every key was 8 % of an atomic call).
    return encodeFromLua(L, idx, maxBytes, name ?? "value");
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    if (name !== undefined) return err.message;
  }
  try {
    encodeFromLua(L, idx, maxBytes, (root as () => string)());
  } catch (err) {
    if (err instanceof CodecError) return err.message;
    throw err;
  }
  throw new Error("a value failed to encode once and not the second time");
}

/**
 * A problem found after the key check: policy first (a denied caller learns nothing about
 * what it tried to store), then the problem itself as Invalid.
 */
function refuse(L: lua_State, h: HandleData, action: KeyAction, key: string, problem: string): number {
  const denied = runOf(L).gateway.check(h.ref.info.handle, action, key);
  if (denied !== null) return fail(L, denied);
  return invalid(L, h, problem);
}

/**
 * Finishes a gateway answer: synchronous answers are pushed at once; a promise suspends the
 * script (the run loop awaits it and resumes with the pushed results).
 */
function answer<T>(L: lua_State, r: Answer<T>, push: (L: lua_State, v: T) => number): number {
  if (!isPromise(r)) {
    const n = r instanceof OpFailure ? fail(L, r) : push(L, r);
    // A call's bytes (its encoded request, its answer decoded onto the stack) are ArrayBuffers,
    // outside V8's heap limit: the worker measures them here, not only from the count hook.
    const after = runOf(L).afterStoreCall;
    if (after !== null) after(L);
    return n;
  }
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
  else if (!pushShortString(L, v)) pushMsgpack(L, v);
  return 1;
};
const pushBoolean = (L: lua_State, v: boolean): number => {
  lua.lua_pushboolean(L, v);
  return 1;
};
/** A count as an integer (a float past fengari's 32-bit integers). */
const pushCount = (L: lua_State, n: number): number => {
  if (n <= 0x7fffffff) lua.lua_pushinteger(L, n);
  else lua.lua_pushnumber(L, n);
  return 1;
};
const pushTrue = (L: lua_State): number => {
  lua.lua_pushboolean(L, true);
  return 1;
};

// ---- single-key methods ------------------------------------------------------------------

const get: JSFunction = (L) => {
  const h = checkHandle(L);
  // The argument count is checked here rather than by strict()'s wrapper: one call less per get.
  if (lua.lua_gettop(L) > 2) return tooManyArguments(L, h, "get");
  const key = begin(L, h);
  if (key === null) return 2;
  const run = runOf(L);
  const r = run.gateway.get(h.ref.info.handle, key);
  // A synchronous answer (memory stores) is pushed here, without answer()'s promise test. A short
  // string takes the key's slot, the top (get was called with exactly self and key).
  if (r === undefined || r instanceof Uint8Array) {
    const ts = r === undefined ? null : shortStringOf(L, r);
    if (ts !== null) replaceTopWithString(L, ts);
    else pushValue(L, r);
    if (run.afterStoreCall !== null) run.afterStoreCall(L);
    return 1;
  }
  return answer(L, r, pushValue);
};

/** get_stale's answer: `value, is_stale`, or nil for a missing key (as get). */
const pushStale = (L: lua_State, v: Uint8Array | StaleValue | undefined): number => {
  if (v === undefined) {
    lua.lua_pushnil(L);
    return 1;
  }
  const live = v instanceof Uint8Array;
  pushValue(L, live ? v : v.stale);
  lua.lua_pushboolean(L, !live);
  return 2;
};

const getStale: JSFunction = (L) => {
  const h = checkHandle(L);
  // As get: its own argument count, so that without stale_for it costs what get does.
  if (lua.lua_gettop(L) > 2) return tooManyArguments(L, h, "get_stale");
  const key = begin(L, h);
  if (key === null) return 2;
  const r = runOf(L).gateway.getStale(h.ref.info.handle, key);
  // As get: a synchronous answer is pushed here, without answer()'s promise test.
  if (r === undefined || r instanceof Uint8Array) {
    const n = pushStale(L, r);
    const after = runOf(L).afterStoreCall;
    if (after !== null) after(L);
    return n;
  }
  return answer(L, r, pushStale);
};

const has: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  return answer(L, runOf(L).gateway.has(h.ref.info.handle, key), pushBoolean);
};

const del: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  return answer(L, runOf(L).gateway.delete(h.ref.info.handle, key), pushBoolean);
};

/** set / add / replace: key, value, ttl? */
function writeMethod(op: "set" | "add" | "replace"): JSFunction {
  return (L) => {
    const h = checkHandle(L);
    if (lua.lua_gettop(L) > 4) return tooManyArguments(L, h, op);
    const key = begin(L, h);
    if (key === null) return 2;
    const ttlMs = ttlAt(L, 4);
    if (typeof ttlMs === "string") return refuse(L, h, "store.key.set", key, ttlMs);
    const value = valueAt(L, 3, h.ref.info.maxValueSize);
    if (typeof value === "string") return refuse(L, h, "store.key.set", key, value);
    const run = runOf(L);
    const g = run.gateway;
    const handle = h.ref.info.handle;
    if (op === "set") {
      const r = g.set(handle, key, value, ttlMs);
      if (r !== true) return answer(L, r, pushTrue);
      // Done (memory stores): `true` takes the top slot, the last argument, as get's value does.
      replaceTopWithBoolean(L, true);
      if (run.afterStoreCall !== null) run.afterStoreCall(L);
      return 1;
    }
    return answer(L, op === "add" ? g.add(handle, key, value, ttlMs) : g.replace(handle, key, value, ttlMs), pushBoolean);
  };
}

/** A Lua number argument (int/float kept apart), its default, or a problem message. */
function numberArg(L: lua_State, idx: number, name: string, fallback: LuaNumber): LuaNumber | string {
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TNIL || t === lua.LUA_TNONE) return fallback;
  if (t !== lua.LUA_TNUMBER) return `${name} must be a number, got ${typeName(L, idx)}`;
  const value = lua.lua_tonumber(L, idx);
  if (!Number.isFinite(value)) return `${name} must be finite, got ${String(value)}`;
  return { value, float: !lua.lua_isinteger(L, idx) };
}

const ONE: LuaNumber = { value: 1, float: false };
const ZERO: LuaNumber = { value: 0, float: false };

const incr: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const by = numberArg(L, 3, "by", ONE);
  if (typeof by === "string") return refuse(L, h, "store.key.set", key, by);
  const init = numberArg(L, 4, "init", ZERO);
  if (typeof init === "string") return refuse(L, h, "store.key.set", key, init);
  const initTtl = ttlAt(L, 5, "init_ttl");
  if (typeof initTtl === "string") return refuse(L, h, "store.key.set", key, initTtl);
  return answer(L, runOf(L).gateway.incr(h.ref.info.handle, key, by, init, initTtl), pushValue);
};

const ttl: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  return answer(L, runOf(L).gateway.ttl(h.ref.info.handle, key), (L2, ms) => {
    if (ms === undefined) lua.lua_pushnil(L2);
    else lua.lua_pushnumber(L2, ms / 1000);
    return 1;
  });
};

const expireAt: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  if (lua.lua_isnoneornil(L, 3)) return refuse(L, h, "store.key.set", key, "expires_at is required (seconds since the epoch)");
  const ttlMs = expiresAtArg(L, 3);
  if (typeof ttlMs === "string") return refuse(L, h, "store.key.set", key, ttlMs);
  return answer(L, runOf(L).gateway.expire(h.ref.info.handle, key, ttlMs), pushBoolean);
};

const expire: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  if (lua.lua_isnoneornil(L, 3)) return refuse(L, h, "store.key.set", key, "ttl is required (0 removes the expiry)");
  const ttlMs = ttlAt(L, 3);
  if (typeof ttlMs === "string") return refuse(L, h, "store.key.set", key, ttlMs);
  return answer(L, runOf(L).gateway.expire(h.ref.info.handle, key, ttlMs), pushBoolean);
};

/** Pushes an entry record as `{ key=, value=, version=, expires_at=, metadata= }`. */
function pushEntry(L: lua_State, h: HandleData, key: string, e: EntryRecord | undefined): number {
  if (e === undefined) {
    lua.lua_pushnil(L);
    return 1;
  }
  lua.lua_createtable(L, 0, 5);
  pushRelativeKey(L, h, key);
  lua.lua_setfield(L, -2, "key");
  pushMsgpack(L, e.value);
  lua.lua_setfield(L, -2, "value");
  pushJsString(L, e.version);
  lua.lua_setfield(L, -2, "version");
  if (e.expiresAt !== 0) {
    lua.lua_pushnumber(L, e.expiresAt / 1000);
    lua.lua_setfield(L, -2, "expires_at");
  }
  if (e.metadata !== undefined) {
    pushMsgpack(L, e.metadata);
    lua.lua_setfield(L, -2, "metadata");
  }
  return 1;
}

const entry: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  return answer(L, runOf(L).gateway.entry(h.ref.info.handle, key), (L2, e) => pushEntry(L2, h, key, e));
};

/** Reads field `name` of the options table at `idx` onto the stack; returns its type. */
function optionField(L: lua_State, idx: number, name: string): number {
  if (lua.lua_type(L, idx) !== lua.LUA_TTABLE) {
    lua.lua_pushnil(L);
    return lua.LUA_TNIL;
  }
  return rawGetShared(L, idx, optionKey(name));
}

/** Option and result field names as Lua strings, made once each (measured: converting "start" and "stop" per zrange was 6 % of it). */
const MEMBER_KEY = sharedString("member");
const SCORE_KEY = sharedString("score");
const OPTION_KEYS = new Map<string, ReturnType<typeof sharedString>>();
function optionKey(name: string): ReturnType<typeof sharedString> {
  let key = OPTION_KEYS.get(name);
  if (key === undefined) OPTION_KEYS.set(name, (key = sharedString(name)));
  return key;
}

const put: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const optType = lua.lua_type(L, 4);
  if (optType !== lua.LUA_TNIL && optType !== lua.LUA_TNONE && optType !== lua.LUA_TTABLE) {
    return refuse(L, h, "store.key.set", key, `options must be a table, got ${typeName(L, 4)}`);
  }
  lua.lua_settop(L, 4);
  optionField(L, 4, "ttl"); // 5
  const ttlMs = ttlAt(L, 5);
  if (typeof ttlMs === "string") return refuse(L, h, "store.key.set", key, ttlMs);
  const absentType = optionField(L, 4, "only_if_absent"); // 6
  if (absentType !== lua.LUA_TNIL && absentType !== lua.LUA_TBOOLEAN) {
    return refuse(L, h, "store.key.set", key, `only_if_absent must be a boolean, got ${typeName(L, 6)}`);
  }
  const onlyIfAbsent = lua.lua_toboolean(L, 6);
  const versionType = optionField(L, 4, "if_version"); // 7
  let ifVersion: string | undefined;
  if (versionType === lua.LUA_TSTRING) ifVersion = luaStringToJs(lua.lua_tolstring(L, 7)!);
  else if (versionType !== lua.LUA_TNIL) {
    return refuse(L, h, "store.key.set", key, `if_version must be a string, got ${typeName(L, 7)}`);
  }
  if (onlyIfAbsent && ifVersion !== undefined) {
    return refuse(L, h, "store.key.set", key, "only_if_absent and if_version cannot be combined");
  }
  const metaType = optionField(L, 4, "metadata"); // 8
  let metadata: Uint8Array | undefined;
  if (metaType !== lua.LUA_TNIL) {
    if (metaType !== lua.LUA_TTABLE) return refuse(L, h, "store.key.set", key, `metadata must be a table, got ${typeName(L, 8)}`);
    const m = valueAt(L, 8, MAX_METADATA_BYTES, "metadata");
    if (typeof m === "string") return refuse(L, h, "store.key.set", key, m.replace("max_value_size", "the metadata limit"));
    metadata = m;
  }
  let expiry = ttlMs;
  if (optionField(L, 4, "expires_at") !== lua.LUA_TNIL) {
    // 9
    if (!lua.lua_isnil(L, 5)) return refuse(L, h, "store.key.set", key, "ttl and expires_at cannot be combined");
    const ms = expiresAtArg(L, 9);
    if (typeof ms === "string") return refuse(L, h, "store.key.set", key, ms);
    expiry = ms;
  }
  const value = valueAt(L, 3, h.ref.info.maxValueSize);
  if (typeof value === "string") return refuse(L, h, "store.key.set", key, value);
  const options = { ttlMs: expiry, onlyIfAbsent, ...(ifVersion !== undefined ? { ifVersion } : {}), ...(metadata ? { metadata } : {}) };
  return answer(L, runOf(L).gateway.put(h.ref.info.handle, key, value, options), pushTrue);
};

// ---- multi-key methods -------------------------------------------------------------------

/**
 * The full keys of the array of keys at index 2 (at most `max`), or null after pushing `nil, err`:
 * released → table → count → every key → the keys' bytes against maxCallBytes.
 */
function keysArg(L: lua_State, h: HandleData, method: string, max: number): string[] | null {
  if (h.ref.released) {
    failWith(L, ErrorKind.INVALID, "store released");
    return null;
  }
  if (lua.lua_type(L, 2) !== lua.LUA_TTABLE) {
    invalid(L, h, `keys must be a table of keys, got ${typeName(L, 2)}`);
    return null;
  }
  const n = lua.lua_rawlen(L, 2);
  if (n > max) {
    invalid(L, h, `${method} takes at most ${max} keys, got ${n}`);
    return null;
  }
  const keys: string[] = [];
  const maxCallBytes = runOf(L).limits.maxCallBytes;
  let keyBytes = 0;
  lua.lua_settop(L, 2);
  for (let i = 1; i <= n; i++) {
    lua.lua_rawgeti(L, 2, i);
    const problem = keyProblem(L, 3, h, `keys[${i}]`);
    if (problem !== null) {
      invalid(L, h, problem);
      return null;
    }
    const key = fullKeyAt(L, 3, h);
    keyBytes += key.length;
    keys.push(key);
    lua.lua_pop(L, 1);
  }
  if (keyBytes > maxCallBytes) {
    fail(L, noted(L, h, callTooLarge(method, "keys", keyBytes, maxCallBytes)));
    return null;
  }
  return keys;
}

const deleteMany: JSFunction = (L) => {
  const h = checkHandle(L);
  const keys = keysArg(L, h, "delete_many", MAX_BULK);
  if (keys === null) return 2;
  countOp(L);
  return answer(L, runOf(L).gateway.deleteMany(h.ref.info.handle, keys), pushCount);
};

const getMany: JSFunction = (L) => {
  const h = checkHandle(L);
  const keys = keysArg(L, h, "get_many", MAX_BATCH);
  if (keys === null) return 2;
  countOp(L);
  return answer(L, runOf(L).gateway.getMany(h.ref.info.handle, keys), (L2, values) => {
    lua.lua_createtable(L2, 0, values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === undefined) continue;
      pushRelativeKey(L2, h, keys[i]!);
      pushMsgpack(L2, v);
      lua.lua_rawset(L2, -3);
    }
    return 1;
  });
};

/** set_many's third argument: a TTL in seconds, or `{ ttl = }` / `{ expires_at = }`; as ms or a problem. */
function setManyTtl(L: lua_State): number | string {
  if (lua.lua_type(L, 3) !== lua.LUA_TTABLE) return ttlAt(L, 3);
  lua.lua_settop(L, 3);
  optionField(L, 3, "ttl"); // 4
  if (optionField(L, 3, "expires_at") === lua.LUA_TNIL) return ttlAt(L, 4); // 5
  if (!lua.lua_isnil(L, 4)) return "ttl and expires_at cannot be combined";
  return expiresAtArg(L, 5);
}

const setMany: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  if (lua.lua_type(L, 2) !== lua.LUA_TTABLE) return invalid(L, h, `entries must be a table of key = value, got ${typeName(L, 2)}`);
  lua.lua_settop(L, 3);
  // Pass 1: keys (all of them, before any policy check or value encoding).
  const keys: string[] = [];
  const maxCallBytes = runOf(L).limits.maxCallBytes;
  let bytes = 0;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, 2)) {
    lua.lua_pop(L, 1);
    if (keys.length >= MAX_BULK) return invalid(L, h, `set_many takes at most ${MAX_BULK} entries`);
    const problem = keyProblem(L, -1, h, "entries key");
    if (problem !== null) return invalid(L, h, problem);
    const key = fullKeyAt(L, -1, h);
    bytes += key.length;
    keys.push(key);
  }
  if (bytes > maxCallBytes) return fail(L, noted(L, h, callTooLarge("set_many", "keys", bytes, maxCallBytes)));
  countOp(L);
  const g = runOf(L).gateway;
  // Pass 2: every key's policy before anything else.
  const denied = g.checkMany(h.ref.info.handle, "store.key.set", keys);
  if (denied !== null) return fail(L, denied);
  const ttlMs = setManyTtl(L);
  if (typeof ttlMs === "string") return invalid(L, h, ttlMs);
  lua.lua_settop(L, 3);
  // Pass 3: values, stopped as soon as the request passes the cap on one call's bytes (1000
  // copies of one 1 MiB string would otherwise encode 1000 MiB before anything is refused).
  const entries: [string, Uint8Array][] = [];
  lua.lua_pushnil(L);
  while (lua.lua_next(L, 2)) {
    const key = fullKeyAt(L, -2, h);
    const value = valueAt(L, -1, h.ref.info.maxValueSize, () => `value[${quoteByteString(key.slice(h.prefix.length))}]`);
    if (typeof value === "string") return invalid(L, h, value);
    bytes += value.length;
    if (bytes > maxCallBytes) {
      return fail(L, noted(L, h, callTooLarge("set_many", "request", bytes, maxCallBytes, entries.length + 1 < keys.length)));
    }
    entries.push([key, value]);
    lua.lua_pop(L, 1);
  }
  return answer(L, g.setMany(h.ref.info.handle, entries, ttlMs), pushTrue);
};

const list: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  const optType = lua.lua_type(L, 2);
  if (optType !== lua.LUA_TNIL && optType !== lua.LUA_TNONE && optType !== lua.LUA_TTABLE) {
    return invalid(L, h, `options must be a table, got ${typeName(L, 2)}`);
  }
  lua.lua_settop(L, 2);
  // Prefix and cursor are bounded like keys, before they are even converted.
  const maxKeyLength = h.ref.info.maxKeyLength;
  let prefix = "";
  const prefixType = optionField(L, 2, "prefix"); // 3
  if (prefixType === lua.LUA_TSTRING) {
    const bytes = lua.lua_tolstring(L, 3)!;
    if (bytes.length + h.prefix.length > maxKeyLength) return invalid(L, h, tooLong("prefix", bytes.length, h, maxKeyLength));
    prefix = byteStringFromBytes(bytes);
  } else if (prefixType !== lua.LUA_TNIL) return invalid(L, h, `prefix must be a string, got ${typeName(L, 3)}`);
  let after: string | undefined;
  const afterType = optionField(L, 2, "after"); // 4
  if (afterType === lua.LUA_TSTRING) {
    const bytes = lua.lua_tolstring(L, 4)!;
    if (bytes.length + h.prefix.length > maxKeyLength) return invalid(L, h, tooLong("after", bytes.length, h, maxKeyLength));
    after = h.prefix + byteStringFromBytes(bytes);
  } else if (afterType !== lua.LUA_TNIL) return invalid(L, h, `after must be a string, got ${typeName(L, 4)}`);
  let limit = LIST_DEFAULT_LIMIT;
  const limitType = optionField(L, 2, "limit"); // 5
  if (limitType !== lua.LUA_TNIL) {
    const v = lua.lua_tonumber(L, 5);
    if (limitType !== lua.LUA_TNUMBER || !Number.isInteger(v) || v < 1 || v > LIST_MAX_LIMIT) {
      return invalid(L, h, `limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
    }
    limit = v;
  }
  countOp(L);
  const fullPrefix = h.prefix + prefix;
  const options = { prefix: fullPrefix, limit, ...(after !== undefined ? { after } : {}) };
  return answer(L, runOf(L).gateway.list(h.ref.info.handle, options), (L2, page: ListPage) => {
    lua.lua_createtable(L2, 0, 4);
    lua.lua_createtable(L2, page.keys.length, 0);
    let withMeta = 0;
    for (let i = 0; i < page.keys.length; i++) {
      pushRelativeKey(L2, h, page.keys[i]!.key);
      lua.lua_rawseti(L2, -2, i + 1);
      if (page.keys[i]!.metadata !== undefined) withMeta++;
    }
    lua.lua_setfield(L2, -2, "keys");
    if (withMeta > 0) {
      lua.lua_createtable(L2, 0, withMeta);
      for (const k of page.keys) {
        if (k.metadata === undefined) continue;
        pushRelativeKey(L2, h, k.key);
        pushMsgpack(L2, k.metadata);
        lua.lua_rawset(L2, -3);
      }
      lua.lua_setfield(L2, -2, "metadata");
    }
    if (page.cursor !== undefined) {
      pushRelativeKey(L2, h, page.cursor);
      lua.lua_setfield(L2, -2, "cursor");
    }
    lua.lua_pushboolean(L2, page.hasMore);
    lua.lua_setfield(L2, -2, "has_more");
    return 1;
  });
};

// ---- lists -------------------------------------------------------------------------------

/** Most values one push takes, and most elements one pop returns. */
export const MAX_LIST_BATCH = MAX_BATCH;

/** Pushes an array table of values. */
const pushValues = (L: lua_State, values: ListAnswer): number => {
  const list = values as Uint8Array[];
  lua.lua_createtable(L, list.length, 0);
  for (let i = 0; i < list.length; i++) {
    pushMsgpack(L, list[i]!);
    lua.lua_rawseti(L, -2, i + 1);
  }
  return 1;
};

const pushLength = (L: lua_State, n: ListAnswer | ZsetAnswer): number => pushCount(L, n as number);

/**
 * A Lua list index at `idx` (1-based, negative from the end) as the store's 0-based index
 * (negative from the end as Redis counts), `fallback` when absent, or a problem message.
 */
function listIndexAt(L: lua_State, idx: number, name: string, fallback?: number): number | string {
  const t = lua.lua_type(L, idx);
  if ((t === lua.LUA_TNIL || t === lua.LUA_TNONE) && fallback !== undefined) return fallback;
  const value = t === lua.LUA_TNUMBER ? lua.lua_tonumber(L, idx) : Number.NaN;
  if (!Number.isInteger(value) || Math.abs(value) > 2 ** 31) return `${name} must be an integer index, got ${t === lua.LUA_TNUMBER ? String(value) : typeName(L, idx)}`;
  if (value === 0) return `${name} must not be 0: lists count from 1 (and from -1 at the end)`;
  return value > 0 ? value - 1 : value;
}

/** lpush / rpush: key, value, ... (at least one; values only, see README "Lists"). */
function pushMethod(end: ListEnd): JSFunction {
  const name = end === "left" ? "lpush" : "rpush";
  return (L) => {
    const h = checkHandle(L);
    const key = begin(L, h);
    if (key === null) return 2;
    const n = lua.lua_gettop(L) - 2;
    if (n < 1) return refuse(L, h, "store.key.set", key, `${name} needs at least one value`);
    if (n > MAX_LIST_BATCH) return refuse(L, h, "store.key.set", key, `${name} takes at most ${MAX_LIST_BATCH} values, got ${n}`);
    const values = new Array<Uint8Array>(n);
    const maxCallBytes = runOf(L).limits.maxCallBytes;
    let bytes = key.length;
    for (let i = 0; i < n; i++) {
      const value = valueAt(L, 3 + i, h.ref.info.maxValueSize, n === 1 ? "value" : `value ${i + 1}`);
      if (typeof value === "string") return refuse(L, h, "store.key.set", key, value);
      bytes += value.length;
      // Stopped as soon as the request passes the cap, as set_many does.
      if (bytes > maxCallBytes) {
        const denied = runOf(L).gateway.check(h.ref.info.handle, "store.key.set", key);
        if (denied !== null) return fail(L, denied);
        return fail(L, noted(L, h, callTooLarge(name, "request", bytes, maxCallBytes, i + 1 < n)));
      }
      values[i] = value;
    }
    return answer(L, runOf(L).gateway.listCall(h.ref.info.handle, key, { op: "push", end, values }), pushLength);
  };
}

/** lpop / rpop: key, count? — one value (or nil) without a count, an array of up to count with one. */
function popMethod(end: ListEnd): JSFunction {
  return (L) => {
    const h = checkHandle(L);
    const key = begin(L, h);
    if (key === null) return 2;
    const single = lua.lua_isnoneornil(L, 3);
    let count = 1;
    if (!single) {
      const value = lua.lua_type(L, 3) === lua.LUA_TNUMBER ? lua.lua_tonumber(L, 3) : Number.NaN;
      if (!Number.isInteger(value) || value < 1 || value > MAX_LIST_BATCH) {
        return refuse(L, h, "store.key.set", key, `count must be an integer from 1 to ${MAX_LIST_BATCH}, got ${lua.lua_type(L, 3) === lua.LUA_TNUMBER ? String(value) : typeName(L, 3)}`);
      }
      count = value;
    }
    const r = runOf(L).gateway.listCall(h.ref.info.handle, key, { op: "pop", end, count });
    if (!single) return answer(L, r, pushValues);
    return answer(L, r, (L2, values) => pushValue(L2, (values as Uint8Array[])[0]));
  };
}

const llen: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  return answer(L, runOf(L).gateway.listCall(h.ref.info.handle, key, { op: "length" }), pushLength);
};

const lrange: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const start = listIndexAt(L, 3, "start", 0);
  if (typeof start === "string") return refuse(L, h, "store.key.get", key, start);
  const stop = listIndexAt(L, 4, "stop", -1);
  if (typeof stop === "string") return refuse(L, h, "store.key.get", key, stop);
  return answer(L, runOf(L).gateway.listCall(h.ref.info.handle, key, { op: "range", start, stop }), pushValues);
};

const ltrim: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const start = listIndexAt(L, 3, "start");
  if (typeof start === "string") return refuse(L, h, "store.key.set", key, start);
  const stop = listIndexAt(L, 4, "stop");
  if (typeof stop === "string") return refuse(L, h, "store.key.set", key, stop);
  return answer(L, runOf(L).gateway.listCall(h.ref.info.handle, key, { op: "trim", start, stop }), pushLength);
};

// ---- sorted sets -------------------------------------------------------------------------

const pushScore = (L: lua_State, score: ZsetAnswer): number => {
  if (score === undefined) lua.lua_pushnil(L);
  else lua.lua_pushnumber(L, score as number);
  return 1;
};

const pushRank = (L: lua_State, rank: ZsetAnswer): number => {
  if (rank === undefined) lua.lua_pushnil(L);
  else lua.lua_pushinteger(L, (rank as number) + 1);
  return 1;
};

/** A member at `idx`: a string of at most max_value_size bytes, or a problem message. */
function memberAt(L: lua_State, idx: number, h: HandleData, name = "member"): string | { problem: string } {
  if (lua.lua_type(L, idx) !== lua.LUA_TSTRING) return { problem: `${name} must be a string, got ${typeName(L, idx)}` };
  const bytes = lua.lua_tolstring(L, idx)!;
  if (bytes.length > h.ref.info.maxValueSize) return { problem: `${name} is ${bytes.length} bytes, over max_value_size ${h.ref.info.maxValueSize}` };
  return byteStringFromBytes(bytes);
}

/** A score at `idx`: any number but NaN (math.huge and -math.huge are scores), or a problem message. */
function scoreAt(L: lua_State, idx: number, name = "score"): number | string {
  if (lua.lua_type(L, idx) !== lua.LUA_TNUMBER) return `${name} must be a number, got ${typeName(L, idx)}`;
  const score = lua.lua_tonumber(L, idx);
  return Number.isNaN(score) ? `${name} must not be NaN` : score;
}

/** zadd: key, member, score, member, score, ... */
const zadd: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const n = lua.lua_gettop(L) - 2;
  if (n < 2 || n % 2 !== 0) return refuse(L, h, "store.key.set", key, `zadd takes member, score pairs, got ${n} arguments after the key`);
  if (n / 2 > MAX_BATCH) return refuse(L, h, "store.key.set", key, `zadd takes at most ${MAX_BATCH} members, got ${n / 2}`);
  const entries = new Array<ZsetEntry>(n / 2);
  let bytes = key.length;
  for (let i = 0; i < n / 2; i++) {
    const member = memberAt(L, 3 + 2 * i, h, `member ${i + 1}`);
    if (typeof member !== "string") return refuse(L, h, "store.key.set", key, member.problem);
    const score = scoreAt(L, 4 + 2 * i, `score ${i + 1}`);
    if (typeof score === "string") return refuse(L, h, "store.key.set", key, score);
    bytes += member.length + SCORE_BYTES;
    entries[i] = { member, score };
  }
  const maxCallBytes = runOf(L).limits.maxCallBytes;
  if (bytes > maxCallBytes) {
    const denied = runOf(L).gateway.check(h.ref.info.handle, "store.key.set", key);
    if (denied !== null) return fail(L, denied);
    return fail(L, noted(L, h, callTooLarge("zadd", "request", bytes, maxCallBytes)));
  }
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "add", entries }), pushLength);
};

const zincr: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const member = memberAt(L, 3, h);
  if (typeof member !== "string") return refuse(L, h, "store.key.set", key, member.problem);
  const by = scoreAt(L, 4, "by");
  if (typeof by === "string") return refuse(L, h, "store.key.set", key, by);
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "incr", member, by }), pushScore);
};

const zscore: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const member = memberAt(L, 3, h);
  if (typeof member !== "string") return refuse(L, h, "store.key.get", key, member.problem);
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "score", member }), pushScore);
};

/** The boolean option `name` of the table at `idx` (absent: false), or a problem message. */
function flagOption(L: lua_State, idx: number, name: string): boolean | string {
  const t = optionField(L, idx, name);
  const value = lua.lua_toboolean(L, -1);
  lua.lua_pop(L, 1);
  if (t !== lua.LUA_TNIL && t !== lua.LUA_TBOOLEAN) return `${name} must be a boolean`;
  return value;
}

/** Why the value at `idx` is not nil or an options table, or null. */
function notOptions(L: lua_State, idx: number, what = "options"): string | null {
  const t = lua.lua_type(L, idx);
  return t === lua.LUA_TNIL || t === lua.LUA_TNONE || t === lua.LUA_TTABLE ? null : `${what} must be a table, got ${typeName(L, idx)}`;
}

const zrank: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const member = memberAt(L, 3, h);
  if (typeof member !== "string") return refuse(L, h, "store.key.get", key, member.problem);
  const bad = notOptions(L, 4);
  if (bad !== null) return refuse(L, h, "store.key.get", key, bad);
  lua.lua_settop(L, 4);
  const reverse = flagOption(L, 4, "rev");
  if (typeof reverse === "string") return refuse(L, h, "store.key.get", key, reverse);
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "rank", member, reverse }), pushRank);
};

/** The number option `name` of the table at `idx` (absent: `fallback`), or a problem message. */
function numberOption(L: lua_State, idx: number, name: string, fallback: number | undefined): number | undefined | { problem: string } {
  const t = optionField(L, idx, name);
  const value = lua.lua_tonumber(L, -1);
  lua.lua_pop(L, 1);
  if (t === lua.LUA_TNIL) return fallback;
  if (t !== lua.LUA_TNUMBER || Number.isNaN(value)) return { problem: `${name} must be a number` };
  return value;
}

/** zrange: key, {start=, stop=} | {min=, max=}, {rev=, limit=, with_scores=}? */
const zrange: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const badRange = lua.lua_type(L, 3) === lua.LUA_TTABLE ? null : `range must be a table ({start=, stop=} or {min=, max=}), got ${typeName(L, 3)}`;
  if (badRange !== null) return refuse(L, h, "store.key.get", key, badRange);
  const bad = notOptions(L, 4);
  if (bad !== null) return refuse(L, h, "store.key.get", key, bad);
  lua.lua_settop(L, 4);
  const problem = (message: string): number => refuse(L, h, "store.key.get", key, message);
  const reverse = flagOption(L, 4, "rev");
  if (typeof reverse === "string") return problem(reverse);
  const withScores = flagOption(L, 4, "with_scores");
  if (typeof withScores === "string") return problem(withScores);
  const limit = numberOption(L, 4, "limit", undefined);
  if (typeof limit === "object") return problem(limit.problem);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) return problem(`limit must be an integer >= 0, got ${limit}`);
  const min = numberOption(L, 3, "min", undefined);
  const max = numberOption(L, 3, "max", undefined);
  if (typeof min === "object") return problem(min.problem);
  if (typeof max === "object") return problem(max.problem);
  const startType = optionField(L, 3, "start");
  const stopType = optionField(L, 3, "stop");
  lua.lua_pop(L, 2);
  let range: ZsetRange;
  if (min !== undefined || max !== undefined) {
    if (startType !== lua.LUA_TNIL || stopType !== lua.LUA_TNIL) return problem("range takes {start=, stop=} (ranks) or {min=, max=} (scores), not both");
    range = { by: "score", min: min ?? Number.NEGATIVE_INFINITY, max: max ?? Number.POSITIVE_INFINITY, reverse };
  } else {
    optionField(L, 3, "start"); // 5
    const start = listIndexAt(L, 5, "start", 0);
    lua.lua_pop(L, 1);
    if (typeof start === "string") return problem(start);
    optionField(L, 3, "stop"); // 5
    const stop = listIndexAt(L, 5, "stop", -1);
    lua.lua_pop(L, 1);
    if (typeof stop === "string") return problem(stop);
    range = { by: "rank", start, stop, reverse };
  }
  if (limit !== undefined) range.limit = limit;
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "range", range }), (L2, r) => {
    const entries = r as ZsetEntry[];
    lua.lua_createtable(L2, entries.length, 0);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (withScores) {
        lua.lua_createtable(L2, 0, 2);
        lua.lua_pushstring(L2, bytesFromByteString(e.member));
        rawSetShared(L2, -2, MEMBER_KEY);
        lua.lua_pushnumber(L2, e.score);
        rawSetShared(L2, -2, SCORE_KEY);
      } else {
        lua.lua_pushstring(L2, bytesFromByteString(e.member));
      }
      lua.lua_rawseti(L2, -2, i + 1);
    }
    return 1;
  });
};

/** zrem: key, member, ... */
const zrem: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  const n = lua.lua_gettop(L) - 2;
  if (n < 1) return refuse(L, h, "store.key.set", key, "zrem needs at least one member");
  if (n > MAX_BATCH) return refuse(L, h, "store.key.set", key, `zrem takes at most ${MAX_BATCH} members, got ${n}`);
  const members = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const member = memberAt(L, 3 + i, h, `member ${i + 1}`);
    if (typeof member !== "string") return refuse(L, h, "store.key.set", key, member.problem);
    members[i] = member;
  }
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "remove", members }), pushLength);
};

const zcard: JSFunction = (L) => {
  const h = checkHandle(L);
  const key = begin(L, h);
  if (key === null) return 2;
  return answer(L, runOf(L).gateway.zsetCall(h.ref.info.handle, key, { op: "card" }), pushLength);
};

// ---- multi-key transactions --------------------------------------------------------------

const ATOMIC_PARTS = ["checks", "set", "delete", "incr"] as const;
const ATOMIC_FIELDS = new Set<string>([...ATOMIC_PARTS, "ttl"]);

/**
 * `s:atomic{ checks = { [key] = version | false }, set = { [key] = value }, delete = { key, ... },
 * incr = { [key] = by }, ttl = }`: every key validated, then the values encoded, then one gateway
 * call that checks every key's policy (checks as store.key.get, set and incr as store.key.set,
 * delete as store.key.delete) before the store applies all or nothing. A bad value of a denied
 * caller answers the denial. Answers a table of each incr key's new number; a failed check answers
 * nil, err CONFLICT (retryable) whose details name the key.
 */
const atomic: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  if (lua.lua_type(L, 2) !== lua.LUA_TTABLE) return invalid(L, h, `atomic takes a table { checks=, set=, delete=, incr=, ttl= }, got ${typeName(L, 2)}`);
  lua.lua_settop(L, 2);
  let known = 0;
  for (const field of ATOMIC_PARTS) {
    const t = optionField(L, 2, field); // 3 checks, 4 set, 5 delete, 6 incr
    if (t !== lua.LUA_TNIL && t !== lua.LUA_TTABLE) return invalid(L, h, `atomic: ${field} must be a table, got ${typeName(L, -1)}`);
    if (t !== lua.LUA_TNIL) known++;
  }
  if (optionField(L, 2, "ttl") !== lua.LUA_TNIL) known++; // 7
  // Any other field is a mistake (a misspelt part would silently do nothing): count, then name it.
  let fields = 0;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, 2)) {
    lua.lua_pop(L, 1);
    fields++;
  }
  if (fields !== known) {
    lua.lua_pushnil(L);
    while (lua.lua_next(L, 2)) {
      lua.lua_pop(L, 1);
      const field = lua.lua_type(L, -1) === lua.LUA_TSTRING ? luaStringToJs(lua.lua_tolstring(L, -1)!) : "";
      if (!ATOMIC_FIELDS.has(field)) {
        const name = lua.lua_type(L, -1) === lua.LUA_TSTRING ? field : typeName(L, -1);
        return invalid(L, h, `atomic: unknown field ${name} (takes checks, set, delete, incr, ttl)`);
      }
    }
  }
  const ttlMs = ttlAt(L, 7);
  if (typeof ttlMs === "string") return invalid(L, h, `atomic: ${ttlMs}`);
  // Pass 1: keys of every part, validated, each in at most one of set, delete and incr.
  const checkKeys: string[] = [];
  const versions: (string | null)[] = [];
  const setKeys: string[] = [];
  const deleteKeys: string[] = [];
  const incrKeys: string[] = [];
  const written = new Map<string, string>();
  let count = 0;
  const maxCallBytes = runOf(L).limits.maxCallBytes;
  let bytes = 0;
  const take = (part: string, into: string[], idx: number): string | null => {
    if (++count > MAX_BATCH) return `atomic takes at most ${MAX_BATCH} keys`;
    const problem = keyProblem(L, idx, h, `${part} key`);
    if (problem !== null) return problem;
    const key = fullKeyAt(L, idx, h);
    if (part !== "checks") {
      const earlier = written.get(key);
      if (earlier !== undefined) return `atomic: key ${quoteByteString(key.slice(h.prefix.length))} is in both ${earlier} and ${part}`;
      written.set(key, part);
    }
    bytes += key.length;
    into.push(key);
    return null;
  };
  for (const [part, idx, into] of [["checks", 3, checkKeys], ["set", 4, setKeys], ["incr", 6, incrKeys]] as const) {
    if (lua.lua_type(L, idx) !== lua.LUA_TTABLE) continue;
    lua.lua_pushnil(L);
    while (lua.lua_next(L, idx)) {
      if (part === "checks") {
        const t = lua.lua_type(L, -1);
        if (t === lua.LUA_TSTRING) versions.push(luaStringToJs(lua.lua_tolstring(L, -1)!));
        else if (t === lua.LUA_TBOOLEAN && !lua.lua_toboolean(L, -1)) versions.push(null);
        else return invalid(L, h, `atomic: a check is a version string or false (must not exist), got ${typeName(L, -1)}`);
      }
      lua.lua_pop(L, 1);
      const problem = take(part, into as string[], lua.lua_gettop(L));
      if (problem !== null) return invalid(L, h, problem);
    }
  }
  if (lua.lua_type(L, 5) === lua.LUA_TTABLE) {
    const n = lua.lua_rawlen(L, 5);
    for (let i = 1; i <= n; i++) {
      lua.lua_rawgeti(L, 5, i);
      const problem = take("delete", deleteKeys, lua.lua_gettop(L));
      lua.lua_pop(L, 1);
      if (problem !== null) return invalid(L, h, problem);
    }
  }
  if (bytes > maxCallBytes) return fail(L, noted(L, h, callTooLarge("atomic", "keys", bytes, maxCallBytes)));
  countOp(L);
  const g = runOf(L).gateway;
  const handle = h.ref.info.handle;
  // The gateway checks every key's policy before it applies anything; a problem found here
  // (a value, the size) answers the denial instead when there is one, so that a denied caller
  // learns nothing about what it sent. One policy pass in the common case, not two.
  const refused = (problem: OpFailure | string): number => {
    const denied =
      g.checkMany(handle, "store.key.get", checkKeys) ??
      g.checkMany(handle, "store.key.set", setKeys) ??
      g.checkMany(handle, "store.key.set", incrKeys) ??
      g.checkMany(handle, "store.key.delete", deleteKeys);
    if (denied !== null) return fail(L, denied);
    return typeof problem === "string" ? invalid(L, h, problem) : fail(L, noted(L, h, problem));
  };
  // Values and increments, stopped once the request passes the cap.
  const set: [string, Uint8Array][] = [];
  if (lua.lua_type(L, 4) === lua.LUA_TTABLE) {
    lua.lua_pushnil(L);
    while (lua.lua_next(L, 4)) {
      const key = fullKeyAt(L, -2, h);
      const value = valueAt(L, -1, h.ref.info.maxValueSize, () => `set[${quoteByteString(key.slice(h.prefix.length))}]`);
      if (typeof value === "string") return refused(value);
      bytes += value.length;
      if (bytes > maxCallBytes) return refused(callTooLarge("atomic", "request", bytes, maxCallBytes, true));
      set.push([key, value]);
      lua.lua_pop(L, 1);
    }
  }
  const incr: [string, LuaNumber][] = [];
  if (lua.lua_type(L, 6) === lua.LUA_TTABLE) {
    lua.lua_pushnil(L);
    while (lua.lua_next(L, 6)) {
      const key = fullKeyAt(L, -2, h);
      const by = numberArg(L, lua.lua_gettop(L), `incr[${quoteByteString(key.slice(h.prefix.length))}]`, ONE);
      if (typeof by === "string") return refused(by);
      incr.push([key, by]);
      lua.lua_pop(L, 1);
    }
  }
  const checks = checkKeys.map((key, i): [string, string | null] => [key, versions[i]!]);
  const write: AtomicWrite = { checks, set, delete: deleteKeys, incr, ttlMs };
  return answer(L, g.atomic(handle, write), (L2, outcome: AtomicOutcome) => {
    if (!outcome.ok) {
      const relative = outcome.conflict.slice(h.prefix.length);
      lua.lua_pushnil(L2);
      pushError(L2, ErrorKind.CONFLICT, `atomic: the check of key ${quoteByteString(relative)} failed`, true);
      lua.lua_createtable(L2, 0, 1);
      lua.lua_pushstring(L2, bytesFromByteString(relative));
      lua.lua_setfield(L2, -2, "key");
      lua.lua_setuservalue(L2, -2);
      return 2;
    }
    lua.lua_createtable(L2, 0, incr.length);
    for (let i = 0; i < incr.length; i++) {
      pushRelativeKey(L2, h, incr[i]![0]);
      pushMsgpack(L2, outcome.incr[i]!);
      lua.lua_rawset(L2, -3);
    }
    return 1;
  });
};

// ---- handle-level methods ----------------------------------------------------------------

const info: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  countOp(L);
  return answer(L, runOf(L).gateway.info(h.ref.info.handle), (L2, i: StoreInfoAnswer) => {
    lua.lua_createtable(L2, 0, 5);
    pushJsString(L2, i.id);
    lua.lua_setfield(L2, -2, "id");
    pushJsString(L2, i.kind);
    lua.lua_setfield(L2, -2, "kind");
    lua.lua_pushinteger(L2, i.size);
    lua.lua_setfield(L2, -2, "size");
    pushCount(L2, i.bytes);
    lua.lua_setfield(L2, -2, "bytes");
    if (i.freeBytes !== undefined) {
      pushCount(L2, i.freeBytes);
      lua.lua_setfield(L2, -2, "free_bytes");
    }
    lua.lua_pushinteger(L2, i.maxSize);
    lua.lua_setfield(L2, -2, "max_size");
    pushJsString(L2, i.eviction);
    lua.lua_setfield(L2, -2, "eviction");
    if (i.quota !== undefined) {
      // The asking run's own share: what it holds and may hold, never another share's figures.
      const q = i.quota;
      lua.lua_createtable(L2, 0, 6);
      pushJsString(L2, q.by);
      lua.lua_setfield(L2, -2, "by");
      pushJsString(L2, q.share);
      lua.lua_setfield(L2, -2, "share");
      lua.lua_pushnumber(L2, q.keys);
      lua.lua_setfield(L2, -2, "keys");
      lua.lua_pushnumber(L2, q.bytes);
      lua.lua_setfield(L2, -2, "bytes");
      lua.lua_pushnumber(L2, q.maxKeys);
      lua.lua_setfield(L2, -2, "max_keys");
      if (q.maxBytes !== undefined) {
        lua.lua_pushnumber(L2, q.maxBytes);
        lua.lua_setfield(L2, -2, "max_bytes");
      }
      lua.lua_setfield(L2, -2, "quota");
    }
    return 1;
  });
};

const flush: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  // A view's keys are a slice of the store; flush takes the whole store, so it is the handle's alone.
  if (h.prefix.length > 0) return invalid(L, h, "flush removes every key of the store: call it on the handle, not on a namespace view");
  countOp(L);
  return answer(L, runOf(L).gateway.flush(h.ref.info.handle), pushLength);
};

const namespace: JSFunction = (L) => {
  const h = checkHandle(L);
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  if (lua.lua_type(L, 2) !== lua.LUA_TSTRING) return invalid(L, h, `namespace prefix must be a string, got ${typeName(L, 2)}`);
  const bytes = lua.lua_tolstring(L, 2)!;
  if (bytes.length === 0) return invalid(L, h, "namespace prefix must not be empty");
  const prefix = `${h.prefix}${byteStringFromBytes(bytes)}:`;
  if (prefix.length >= h.ref.info.maxKeyLength) {
    return invalid(L, h, `namespace prefix is ${prefix.length} bytes, leaving no room under max_key_length ${h.ref.info.maxKeyLength}`);
  }
  pushView(L, h.ref, prefix);
  return 1;
};

const release: JSFunction = (L) => {
  const h = checkHandle(L);
  if (!h.ref.released) {
    h.ref.released = true;
    runOf(L).gateway.release(h.ref.info.handle);
  }
  lua.lua_pushboolean(L, true);
  return 1;
};

const methods: Record<string, JSFunction> = {
  get,
  get_stale: getStale,
  set: writeMethod("set"),
  has,
  delete: del,
  add: writeMethod("add"),
  replace: writeMethod("replace"),
  incr,
  ttl,
  expire,
  get_many: getMany,
  set_many: setMany,
  list,
  entry,
  put,
  lpush: pushMethod("left"),
  rpush: pushMethod("right"),
  lpop: popMethod("left"),
  rpop: popMethod("right"),
  llen,
  lrange,
  ltrim,
  zadd,
  zincr,
  zscore,
  zrank,
  zrange,
  zrem,
  zcard,
  atomic,
  namespace,
  info,
  release,
  flush,
  delete_many: deleteMany,
  expire_at: expireAt,
};

/**
 * The parameters each handle method takes after `self`, as the README names them: a call with
 * more arguments (trailing nils included) answers INVALID "too many arguments" instead of
 * silently ignoring them (`s:set(k, v, 0, 199)` is a mistake, not a call with a spare argument).
 * Every method in `methods` has its row here; test/lua/store-module.test.ts checks both agree.
 */
export const METHOD_PARAMS: Readonly<Record<string, readonly string[]>> = {
  get: ["key"],
  get_stale: ["key"],
  set: ["key", "value", "ttl"],
  has: ["key"],
  delete: ["key"],
  add: ["key", "value", "ttl"],
  replace: ["key", "value", "ttl"],
  incr: ["key", "by", "init", "init_ttl"],
  ttl: ["key"],
  expire: ["key", "ttl"],
  get_many: ["keys"],
  set_many: ["entries", "ttl_or_options"],
  list: ["options"],
  entry: ["key"],
  put: ["key", "value", "options"],
  namespace: ["prefix"],
  info: [],
  release: [],
  flush: [],
  delete_many: ["keys"],
  expire_at: ["key", "expires_at"],
  // "...": any number of further arguments (a variadic method).
  lpush: ["key", "value", "..."],
  rpush: ["key", "value", "..."],
  lpop: ["key", "n"],
  rpop: ["key", "n"],
  llen: ["key"],
  lrange: ["key", "start", "stop"],
  ltrim: ["key", "start", "stop"],
  zadd: ["key", "member", "score", "..."],
  zincr: ["key", "member", "by"],
  zscore: ["key", "member"],
  zrank: ["key", "member", "options"],
  zrange: ["key", "range", "options"],
  zrem: ["key", "member", "..."],
  zcard: ["key"],
  atomic: ["transaction"],
};

/** Pushes `nil, err` for a call of method `name` with more arguments than it takes. */
function tooManyArguments(L: lua_State, h: HandleData, name: string): number {
  if (h.ref.released) return failWith(L, ErrorKind.INVALID, "store released");
  const params = METHOD_PARAMS[name]!;
  return invalid(L, h, `too many arguments: s:${name}(${params.join(", ")}) takes ${params.length}, got ${lua.lua_gettop(L) - 1}`);
}

/** The hottest methods, which check their argument count themselves (the same check, in the same order). */
const COUNTS_OWN_ARGUMENTS: ReadonlySet<string> = new Set(["get", "get_stale", "set", "add", "replace"]);

/** `method` with its argument count checked first (one lua_gettop per call). */
function strict(name: string, method: JSFunction): JSFunction {
  const params = METHOD_PARAMS[name];
  if (params === undefined) throw new Error(`store method ${name} has no METHOD_PARAMS row`);
  if (params.at(-1) === "..." || COUNTS_OWN_ARGUMENTS.has(name)) return method;
  const max = params.length + 1;
  return (L) => {
    if (lua.lua_gettop(L) <= max) return method(L);
    return tooManyArguments(L, checkHandle(L), name);
  };
}

const checkedMethods: Record<string, JSFunction> = Object.fromEntries(Object.entries(methods).map(([name, m]) => [name, strict(name, m)]));

/** The registry key of the handle metatable, made once (luaL_setmetatable makes a new string every call). */
const STORE_META_KEY = sharedString("luastore.Store");

function pushView(L: lua_State, ref: HandleRef, prefix: string): void {
  pushUserdata(L, new HandleData(ref, prefix));
  rawGetShared(L, lua.LUA_REGISTRYINDEX, STORE_META_KEY);
  lua.lua_setmetatable(L, -2);
}

const pushHandle = (L: lua_State, info: HandleInfo): number => {
  pushView(L, { info, released: false }, "");
  return 1;
};

/** `store.get(id)`: policy `store.get`, then a pooled handle. */
const acquire: JSFunction = (L) => {
  if (lua.lua_type(L, 1) !== lua.LUA_TSTRING) {
    return failWith(L, ErrorKind.INVALID, `store id must be a string, got ${typeName(L, 1)}`);
  }
  const idBytes = lua.lua_tolstring(L, 1)!;
  if (idBytes.length === 0) return failWith(L, ErrorKind.INVALID, "store id must not be empty");
  if (idBytes.length > MAX_STORE_ID_BYTES) {
    return failWith(L, ErrorKind.INVALID, `store id is ${idBytes.length} bytes, longer than any store id (${MAX_STORE_ID_BYTES})`);
  }
  countOp(L);
  return answer(L, runOf(L).gateway.acquire(byteStringFromBytes(idBytes)), pushHandle);
};

/** Pushes the `store` module table (and registers the handle metatable). */
export function openStore(L: lua_State): number {
  if (lauxlib.luaL_newmetatable(L, STORE_META)) {
    lua.lua_createtable(L, 0, Object.keys(checkedMethods).length);
    lauxlib.luaL_setfuncs(L, checkedMethods, 0);
    lua.lua_setfield(L, -2, "__index");
    lua.lua_pushcfunction(L, (L2) => {
      const h = checkHandle(L2);
      const ns = h.prefix.length > 0 ? ` namespace ${quoteByteString(h.prefix)}` : "";
      pushJsString(L2, `store ${quoteByteString(h.ref.info.storeId)}${ns}${h.ref.released ? " (released)" : ""}`);
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

/**
 * A fresh, locked-down fengari state for one run.
 *
 * Opened: the base library without dofile/loadfile (load takes text chunks only), string
 * without dump, table, math, utf8, a kill-aware coroutine library, and an `os` holding only
 * time, clock, date and difftime. Not opened: io, debug, package, fengari's JS interop.
 * `require` resolves only the host's modules. Library tables are read-only proxies and the
 * string metatable is hidden, so a script cannot change them (and each run has its own state,
 * so nothing a script does to its globals reaches another run).
 */
import { lua, lauxlib, lualib, to_luastring, type lua_State, type JSFunction } from "fengari";
import { ErrorKind } from "../errors.js";
import { pushError, registerErrorMetatable } from "./modules/errors.js";
import { assertHooksSurviveCaughtErrors, coroutineFunctions, installLimits, killRun, protectedCallFunctions } from "./control.js";
import { runOf } from "./internals.js";
import { installStringHash } from "./string-hash.js";
import { guardedRep, installStringLimit, noteStringLimit } from "./string-limit.js";
import type { RunContext } from "./run-context.js";
import { luaStringToJs, pushJsString } from "./strings.js";

/** Opens a host module: pushes its table and returns 1. */
export type ModuleOpener = (L: lua_State) => number;

installStringLimit();
installStringHash();

const LOADED = to_luastring("luastore.loaded");
const READONLY_PROXIES = to_luastring("luastore.readonly");

/** JS exceptions inside host functions become Lua errors of kind Internal. */
const onNativeError: JSFunction = (L) => {
  const e = lua.lua_touserdata(L, 1);
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  pushError(L, ErrorKind.INTERNAL, `internal error in host function: ${message}`);
  return 1;
};

/** Pushes a read-only proxy of the table at the top (which it replaces). */
function makeReadOnly(L: lua_State, name: string): void {
  const real = lua.lua_gettop(L);
  lua.lua_createtable(L, 0, 0); // proxy
  lua.lua_createtable(L, 0, 4); // its metatable
  lua.lua_pushvalue(L, real);
  lua.lua_setfield(L, -2, "__index");
  lua.lua_pushcfunction(L, (L2) => lauxlib.luaL_error(L2, `attempt to modify read-only table '${name}'`));
  lua.lua_setfield(L, -2, "__newindex");
  lua.lua_pushboolean(L, false);
  lua.lua_setfield(L, -2, "__metatable");
  // __pairs iterates the real table without handing it out.
  lua.lua_pushvalue(L, real);
  lua.lua_pushcclosure(
    L,
    (L2) => {
      lua.lua_pushvalue(L2, lua.lua_upvalueindex(1));
      lua.lua_pushcclosure(
        L2,
        (L3) => {
          lua.lua_settop(L3, 2);
          if (lua.lua_next(L3, lua.lua_upvalueindex(1))) return 2;
          lua.lua_pushnil(L3);
          return 1;
        },
        1,
      );
      lua.lua_pushvalue(L2, 1);
      lua.lua_pushnil(L2);
      return 3;
    },
    1,
  );
  lua.lua_setfield(L, -2, "__pairs");
  lua.lua_setmetatable(L, -2);
  // Remember the proxy so rawset refuses it.
  lauxlib.luaL_getsubtable(L, lua.LUA_REGISTRYINDEX, READONLY_PROXIES);
  lua.lua_pushvalue(L, -2);
  lua.lua_pushboolean(L, true);
  lua.lua_rawset(L, -3);
  lua.lua_pop(L, 1);
  lua.lua_replace(L, real);
}

function isReadOnlyProxy(L: lua_State, idx: number): boolean {
  lua.lua_getfield(L, lua.LUA_REGISTRYINDEX, READONLY_PROXIES);
  lua.lua_pushvalue(L, idx);
  lua.lua_rawget(L, -2);
  const yes = lua.lua_toboolean(L, -1);
  lua.lua_pop(L, 2);
  return yes;
}

/** `rawset` that refuses the read-only library proxies. */
function pushRawset(L: lua_State): void {
  lua.lua_pushcfunction(L, (L2) => {
    lauxlib.luaL_checktype(L2, 1, lua.LUA_TTABLE);
    lauxlib.luaL_checkany(L2, 2);
    lauxlib.luaL_checkany(L2, 3);
    if (isReadOnlyProxy(L2, 1)) return lauxlib.luaL_error(L2, "attempt to modify a read-only library table");
    lua.lua_settop(L2, 3);
    lua.lua_rawset(L2, 1);
    return 1;
  });
}

/** `print`: tostring each argument, tab-separated, into the run's output (with its limit). */
const print: JSFunction = (L) => {
  const run = runOf(L);
  const n = lua.lua_gettop(L);
  const parts: string[] = [];
  let bytes = 1;
  for (let i = 1; i <= n; i++) {
    const s = lauxlib.luaL_tolstring(L, i);
    bytes += s.length + (i > 1 ? 1 : 0);
    if (run.outputBytes + bytes > run.limits.maxOutputBytes) {
      killRun(L, ErrorKind.OUTPUT_LIMIT, `output limit exceeded (${run.limits.maxOutputBytes} bytes)`);
    }
    parts.push(luaStringToJs(s));
    lua.lua_pop(L, 1);
  }
  run.outputBytes += bytes;
  const line = `${parts.join("\t")}\n`;
  run.output.push(line);
  run.onOutput?.(line);
  return 0;
};

/** collectgarbage: fengari has no GC control; answer the harmless queries, refuse nothing. */
const collectgarbage: JSFunction = (L) => {
  const opt = lua.lua_type(L, 1) === lua.LUA_TSTRING ? luaStringToJs(lua.lua_tolstring(L, 1)!) : "collect";
  if (opt === "count") {
    lua.lua_pushnumber(L, 0);
    lua.lua_pushinteger(L, 0);
    return 2;
  }
  if (opt === "isrunning") {
    lua.lua_pushboolean(L, true);
    return 1;
  }
  lua.lua_pushinteger(L, 0);
  return 1;
};

/**
 * `load` restricted to text chunks (binary chunks would bypass the compiler's checks), in JS so
 * that no Lua source is compiled to build a sandbox. A reader function's pieces are counted:
 * a chunk assembled from a reader obeys `maxStringBytes` like any string the script builds
 * (otherwise one string literal spread over many pieces could be any size).
 */
const RESERVED_SLOT = 5;
const READER_CHUNK_NAME = to_luastring("=(load)");

const sandboxLoad: JSFunction = (L) => {
  const env = lua.lua_isnone(L, 4) ? 0 : 4;
  let status: number;
  const t = lua.lua_type(L, 1);
  if (t === lua.LUA_TSTRING || t === lua.LUA_TNUMBER) {
    const s = lua.lua_tolstring(L, 1)!;
    const chunkName = lauxlib.luaL_optstring(L, 2, s)!;
    status = lauxlib.luaL_loadbufferx(L, s, s.length, chunkName, "t");
  } else {
    const chunkName = lauxlib.luaL_optstring(L, 2, READER_CHUNK_NAME)!;
    lauxlib.luaL_checktype(L, 1, lua.LUA_TFUNCTION);
    lua.lua_settop(L, RESERVED_SLOT);
    const max = runOf(L).limits.maxStringBytes;
    let total = 0;
    status = lua.lua_load(
      L,
      (L2) => {
        lauxlib.luaL_checkstack(L2, 2, "too many nested functions");
        lua.lua_pushvalue(L2, 1);
        lua.lua_call(L2, 0, 1);
        if (lua.lua_isnil(L2, -1)) {
          lua.lua_pop(L2, 1);
          return null;
        }
        if (!lua.lua_isstring(L2, -1)) return lauxlib.luaL_error(L2, "reader function must return a string");
        lua.lua_replace(L2, RESERVED_SLOT);
        const piece = lua.lua_tolstring(L2, RESERVED_SLOT)!;
        total += piece.length;
        if (total > max) killRun(L2, ErrorKind.STRING_LIMIT, `string limit exceeded (${max} bytes)`);
        return piece;
      },
      null,
      chunkName,
      "t",
    );
  }
  if (status !== lua.LUA_OK) {
    lua.lua_pushnil(L);
    lua.lua_insert(L, -2);
    return 2;
  }
  if (env !== 0) {
    lua.lua_pushvalue(L, env);
    if (lua.lua_setupvalue(L, -2, 1) === null) lua.lua_pop(L, 1);
  }
  return 1;
};

function makeRequire(modules: ReadonlyMap<string, ModuleOpener>): JSFunction {
  return (L) => {
    const nameBytes = lauxlib.luaL_checkstring(L, 1);
    const name = luaStringToJs(nameBytes);
    lua.lua_settop(L, 1);
    lauxlib.luaL_getsubtable(L, lua.LUA_REGISTRYINDEX, LOADED);
    if (lua.lua_getfield(L, 2, nameBytes) !== lua.LUA_TNIL) return 1;
    lua.lua_pop(L, 1);
    const opener = modules.get(name);
    if (opener === undefined) {
      return lauxlib.luaL_error(L, `module '${name.replace(/[^\x20-\x7e]/g, "?")}' not found (available: ${[...modules.keys()].sort().join(", ")})`);
    }
    lua.lua_pushcfunction(L, opener);
    lua.lua_call(L, 0, 1);
    if (lua.lua_type(L, -1) === lua.LUA_TTABLE) makeReadOnly(L, name);
    lua.lua_pushvalue(L, -1);
    lua.lua_setfield(L, 2, nameBytes);
    return 1;
  };
}

function openLibrary(L: lua_State, name: string, open: JSFunction): void {
  lauxlib.luaL_requiref(L, name, open, 0);
}

/** Keeps only `names` of the table at the top. */
function pickFields(L: lua_State, names: readonly string[]): void {
  const src = lua.lua_gettop(L);
  lua.lua_createtable(L, 0, names.length);
  for (const n of names) {
    lua.lua_getfield(L, src, n);
    lua.lua_setfield(L, -2, n);
  }
  lua.lua_replace(L, src);
}

export interface SandboxOptions {
  /** Host modules by name (`store`, `errors`, `time`, configured Lua modules). */
  modules: ReadonlyMap<string, ModuleOpener>;
  /** Modules that are also globals (`errors`). */
  globals?: readonly string[];
}

/** Creates the Lua state for one run, with limits installed and the run attached. */
export function createSandbox(run: RunContext, options: SandboxOptions): lua_State {
  assertHooksSurviveCaughtErrors();
  noteStringLimit(run.limits.maxStringBytes);
  const L = lauxlib.luaL_newstate();
  lua.lua_atnativeerror(L, onNativeError);
  registerErrorMetatable(L);

  openLibrary(L, "_G", lualib.luaopen_base);
  lua.lua_pop(L, 1);
  for (const name of ["dofile", "loadfile", "collectgarbage", "pcall", "xpcall", "print", "require", "rawset"]) {
    lua.lua_pushnil(L);
    lua.lua_setglobal(L, name);
  }
  lua.lua_pushcfunction(L, collectgarbage);
  lua.lua_setglobal(L, "collectgarbage");
  lua.lua_pushcfunction(L, protectedCallFunctions.pcall);
  lua.lua_setglobal(L, "pcall");
  lua.lua_pushcfunction(L, protectedCallFunctions.xpcall);
  lua.lua_setglobal(L, "xpcall");
  lua.lua_pushcfunction(L, print);
  lua.lua_setglobal(L, "print");
  pushRawset(L);
  lua.lua_setglobal(L, "rawset");
  lua.lua_pushcfunction(L, sandboxLoad);
  lua.lua_setglobal(L, "load");

  // string: drop dump, check rep's size first, hide the metatable of strings, make it read-only.
  openLibrary(L, "string", lualib.luaopen_string);
  lua.lua_pushnil(L);
  lua.lua_setfield(L, -2, "dump");
  lua.lua_getfield(L, -1, "rep");
  lua.lua_pushcclosure(L, guardedRep, 1);
  lua.lua_setfield(L, -2, "rep");
  lua.lua_pushliteral(L, "");
  lua.lua_getmetatable(L, -1);
  lua.lua_pushboolean(L, false);
  lua.lua_setfield(L, -2, "__metatable");
  lua.lua_pop(L, 2);
  makeReadOnly(L, "string");
  lua.lua_setglobal(L, "string");

  for (const [name, open] of [
    ["table", lualib.luaopen_table],
    ["math", lualib.luaopen_math],
    ["utf8", lualib.luaopen_utf8],
  ] as const) {
    openLibrary(L, name, open);
    makeReadOnly(L, name);
    lua.lua_setglobal(L, name);
  }

  lua.lua_createtable(L, 0, 7);
  lauxlib.luaL_setfuncs(L, coroutineFunctions, 0);
  makeReadOnly(L, "coroutine");
  lua.lua_setglobal(L, "coroutine");

  openLibrary(L, "os", lualib.luaopen_os);
  pickFields(L, ["time", "clock", "date", "difftime"]);
  makeReadOnly(L, "os");
  lua.lua_setglobal(L, "os");

  lua.lua_pushcfunction(L, makeRequire(options.modules));
  lua.lua_setglobal(L, "require");

  for (const name of options.globals ?? []) {
    lua.lua_getglobal(L, "require");
    pushJsString(L, name);
    lua.lua_call(L, 1, 1);
    lua.lua_setglobal(L, name);
  }
  lua.lua_settop(L, 0);
  installLimits(L, run);
  return L;
}

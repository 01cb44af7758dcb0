/**
 * A fresh, locked-down fengari state for one run.
 *
 * Opened: the base library without dofile/loadfile (load takes text chunks only), string
 * without dump, table, math, utf8, a kill-aware coroutine library, and an `os` holding only
 * time, clock, date and difftime. Not opened: io, debug, package, fengari's JS interop.
 * `require` resolves only the host's modules. Library tables are read-only proxies and the
 * string metatable is hidden, so a script cannot change them (and each run has its own state,
 * so nothing a script does to its globals reaches another run).
 *
 * Built from a template: everything immutable (the library tables behind their proxies, the
 * proxies, the string, error and store metatables, the built-in module tables, the name
 * strings) is built once per thread in a template state and placed into each run's fresh state
 * (fengari keys tables by object identity, never by state). A run can reach those shared
 * values only through proxies whose metatables are hidden and whose writes are refused, so no
 * run can change what the next one receives; what a run can change (its globals table, its
 * registry, its loaded-module cache, every table it makes) is new in each state.
 */
import { lua, lauxlib, lualib, to_luastring, type lua_State, type JSFunction } from "fengari";
import { ErrorKind } from "../errors.js";
import { ERROR_META, openErrors, pushError, registerErrorMetatable } from "./modules/errors.js";
import { openStore, STORE_META } from "./modules/store.js";
import { openTime } from "./modules/time.js";
import { assertHooksSurviveCaughtErrors, coroutineFunctions, installLimits, killRun, protectedCallFunctions } from "./control.js";
import {
  fillTable,
  pushSharedValue,
  rawSetShared,
  runOf,
  sharedString,
  setStringMetatable,
  shareMetamethodNames,
  takeSharedValue,
  takeTableTemplate,
  type SharedValue,
  type TableTemplate,
} from "./internals.js";
import { installUtcDate } from "./os-date.js";
import { installStringHash } from "./string-hash.js";
import { guardedRep, installStringLimit, noteStringLimit } from "./string-limit.js";
import type { RunContext } from "./run-context.js";
import { luaStringToJs, pushJsString } from "./strings.js";
import { byteStringFromBytes } from "../bytes.js";

/** Opens a host module: pushes its table and returns 1. */
export type ModuleOpener = (L: lua_State) => number;

installStringLimit();
installStringHash();
shareMetamethodNames();

const G_KEY = sharedString("_G");
const REQUIRE_KEY = sharedString("require");

/**
 * Every read-only proxy (template ones and per-run module tables), so `rawset` can refuse them.
 * Keyed by fengari's table object (lua_topointer), which is the same in every state.
 */
const readOnlyTables = new WeakSet<object>();

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
  readOnlyTables.add(lua.lua_topointer(L, -1) as object);
  lua.lua_replace(L, real);
}

/** `rawset` that refuses the read-only proxies. */
const rawset: JSFunction = (L) => {
  lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
  lauxlib.luaL_checkany(L, 2);
  lauxlib.luaL_checkany(L, 3);
  if (readOnlyTables.has(lua.lua_topointer(L, 1) as object)) return lauxlib.luaL_error(L, "attempt to modify a read-only library table");
  lua.lua_settop(L, 3);
  lua.lua_rawset(L, 1);
  return 1;
};

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

/** `require` for one set of modules; made once per set (runs of one host share it). */
const requireByModules = new WeakMap<ReadonlyMap<string, ModuleOpener>, JSFunction>();

const NAME_CACHE = 4;
const nameBytesSeen: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(NAME_CACHE).fill(undefined);
const namesMade: string[] = new Array<string>(NAME_CACHE).fill("");
let nextName = 0;

/**
 * The exact byte string of a module name. A script's `require("store")` passes the same string
 * (the cached prototype's constant) every run, so the same bytes object is the same name.
 */
function moduleKey(bytes: Uint8Array): string {
  for (let i = 0; i < NAME_CACHE; i++) if (nameBytesSeen[i] === bytes) return namesMade[i]!;
  const key = byteStringFromBytes(bytes);
  nameBytesSeen[nextName] = bytes;
  namesMade[nextName] = key;
  nextName = (nextName + 1) & (NAME_CACHE - 1);
  return key;
}

/**
 * `require`: each module is opened once per run, and its table kept in the run's own
 * `loaded` map (JS side, out of every script's reach, new for each run), keyed by the name's
 * exact bytes. The built-in modules answer the template's read-only tables.
 */
function requireFor(modules: ReadonlyMap<string, ModuleOpener>): JSFunction {
  const cached = requireByModules.get(modules);
  if (cached !== undefined) return cached;
  const fn: JSFunction = (L) => {
    const nameBytes = lauxlib.luaL_checkstring(L, 1);
    const key = moduleKey(nameBytes);
    const run = runOf(L);
    const loaded = run.loaded.get(key);
    if (loaded !== undefined) {
      pushSharedValue(L, loaded);
      return 1;
    }
    lua.lua_settop(L, 1);
    const name = luaStringToJs(nameBytes);
    const opener = modules.get(name);
    if (opener === undefined) {
      return lauxlib.luaL_error(L, `module '${name.replace(/[^\x20-\x7e]/g, "?")}' not found (available: ${[...modules.keys()].sort().join(", ")})`);
    }
    const shared = opener === BUILTIN_OPENERS.get(name) ? templateOf().modules.get(name) : undefined;
    if (shared !== undefined) pushSharedValue(L, shared);
    else {
      lua.lua_pushcfunction(L, opener);
      lua.lua_call(L, 0, 1);
      if (lua.lua_type(L, -1) === lua.LUA_TTABLE) makeReadOnly(L, name);
    }
    // As package.loaded: a module that answered nil is opened again next time.
    if (lua.lua_type(L, -1) !== lua.LUA_TNIL) run.loaded.set(key, takeSharedValue(L));
    return 1;
  };
  requireByModules.set(modules, fn);
  return fn;
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

/**
 * The built-in modules whose tables hold only stateless host functions and constants, so one
 * read-only table serves every run of the thread.
 */
const BUILTIN_OPENERS: ReadonlyMap<string, ModuleOpener> = new Map<string, ModuleOpener>([
  ["errors", openErrors],
  ["store", openStore],
  ["time", openTime],
]);

/** The built-in host modules (`store`, `errors`, `time`), by name. */
export const builtinModules = (): ReadonlyMap<string, ModuleOpener> => BUILTIN_OPENERS;

interface SandboxTemplate {
  /** The globals every run starts with (all but `_G` and `require`, which are per run). */
  globals: TableTemplate;
  /** Registry entries: the error and store metatables. */
  registry: TableTemplate;
  stringMetatable: SharedValue;
  /** Read-only tables of the built-in modules. */
  modules: Map<string, SharedValue>;
}

let template: SandboxTemplate | null = null;

/** This thread's template, built on first use. */
function templateOf(): SandboxTemplate {
  template ??= buildTemplate();
  return template;
}

/** Builds the immutable part of every sandbox once, in a state of its own. */
function buildTemplate(): SandboxTemplate {
  const T = lauxlib.luaL_newstate();
  lua.lua_atnativeerror(T, onNativeError);
  registerErrorMetatable(T);
  lua.lua_pushcfunction(T, openStore);
  lua.lua_call(T, 0, 0);

  openLibrary(T, "_G", lualib.luaopen_base);
  lua.lua_pop(T, 1);
  for (const name of ["dofile", "loadfile", "require"]) {
    lua.lua_pushnil(T);
    lua.lua_setglobal(T, name);
  }
  const replaced: [string, JSFunction][] = [
    ["collectgarbage", collectgarbage],
    ["pcall", protectedCallFunctions.pcall],
    ["xpcall", protectedCallFunctions.xpcall],
    ["print", print],
    ["rawset", rawset],
    ["load", sandboxLoad],
  ];
  for (const [name, fn] of replaced) {
    lua.lua_pushcfunction(T, fn);
    lua.lua_setglobal(T, name);
  }

  // string: drop dump, check rep's size first, hide the metatable of strings, make it read-only.
  openLibrary(T, "string", lualib.luaopen_string);
  lua.lua_pushnil(T);
  lua.lua_setfield(T, -2, "dump");
  lua.lua_getfield(T, -1, "rep");
  lua.lua_pushcclosure(T, guardedRep, 1);
  lua.lua_setfield(T, -2, "rep");
  lua.lua_pushliteral(T, "");
  lua.lua_getmetatable(T, -1);
  lua.lua_pushboolean(T, false);
  lua.lua_setfield(T, -2, "__metatable");
  const stringMetatable = takeSharedValue(T);
  lua.lua_pop(T, 2);
  makeReadOnly(T, "string");
  lua.lua_setglobal(T, "string");

  for (const [name, open] of [
    ["table", lualib.luaopen_table],
    ["math", lualib.luaopen_math],
    ["utf8", lualib.luaopen_utf8],
  ] as const) {
    openLibrary(T, name, open);
    makeReadOnly(T, name);
    lua.lua_setglobal(T, name);
  }

  lua.lua_createtable(T, 0, 7);
  lauxlib.luaL_setfuncs(T, coroutineFunctions, 0);
  makeReadOnly(T, "coroutine");
  lua.lua_setglobal(T, "coroutine");

  openLibrary(T, "os", lualib.luaopen_os);
  pickFields(T, ["time", "clock", "date", "difftime"]);
  installUtcDate(T);
  makeReadOnly(T, "os");
  lua.lua_setglobal(T, "os");

  const modules = new Map<string, SharedValue>();
  for (const [name, open] of BUILTIN_OPENERS) {
    lua.lua_pushcfunction(T, open);
    lua.lua_call(T, 0, 1);
    makeReadOnly(T, name);
    modules.set(name, takeSharedValue(T));
    if (name === "errors") lua.lua_setglobal(T, "errors");
    else lua.lua_pop(T, 1);
  }

  // The package.loaded-like table fengari's luaL_requiref filled must not be shared.
  lua.lua_pushnil(T);
  lua.lua_setfield(T, lua.LUA_REGISTRYINDEX, lauxlib.LUA_LOADED_TABLE);

  lua.lua_pushnil(T);
  lua.lua_setglobal(T, "_G");
  lua.lua_pushglobaltable(T);
  const globals = takeTableTemplate(T);
  lua.lua_pop(T, 1);

  lua.lua_createtable(T, 0, 2);
  for (const name of [ERROR_META, STORE_META]) {
    lua.lua_getfield(T, lua.LUA_REGISTRYINDEX, name);
    lua.lua_setfield(T, -2, name);
  }
  const registry = takeTableTemplate(T);
  lua.lua_pop(T, 1);
  return { globals, registry, stringMetatable, modules };
}

/** Creates the Lua state for one run, with limits installed and the run attached. */
export function createSandbox(run: RunContext, options: SandboxOptions): lua_State {
  assertHooksSurviveCaughtErrors();
  noteStringLimit(run.limits.maxStringBytes);
  const t = templateOf();
  const L = lauxlib.luaL_newstate();
  lua.lua_atnativeerror(L, onNativeError);
  fillTable(L, lua.LUA_REGISTRYINDEX, t.registry);
  setStringMetatable(L, t.stringMetatable);

  lua.lua_pushglobaltable(L);
  fillTable(L, -1, t.globals);
  lua.lua_pushvalue(L, -1);
  rawSetShared(L, -2, G_KEY);
  lua.lua_pushcfunction(L, requireFor(options.modules));
  rawSetShared(L, -2, REQUIRE_KEY);
  lua.lua_pop(L, 1);

  // `errors` is a global and require("errors") must answer the same table.
  run.loaded.set("errors", t.modules.get("errors")!);

  for (const name of options.globals ?? []) {
    if (name === "errors") continue;
    lua.lua_getglobal(L, "require");
    pushJsString(L, name);
    lua.lua_call(L, 1, 1);
    lua.lua_setglobal(L, name);
  }
  installLimits(L, run);
  return L;
}

/** A script that exercises the VM's common paths, for {@link warmUpThread}. */
const WARM_UP_SOURCE = `
local t, s = {}, ""
for i = 1, 2000 do t[i] = { id = i, name = "n" .. i } end
table.sort(t, function(a, b) return a.id > b.id end)
for i = 1, 200 do s = string.format("%s%d", s:sub(-20), i) end
local co = coroutine.wrap(function() for i = 1, 100 do coroutine.yield(i) end end)
for i = 1, 100 do co() end
pcall(error, "warm-up")
return #t, s`;

/**
 * Builds this thread's sandbox template and runs a short script through the VM, so that a
 * worker's first real run does not pay for either (measured: the first run on a fresh worker
 * took ~380 ms). The script makes no store call, so the run has no gateway.
 */
export function warmUpThread(run: RunContext): void {
  const L = createSandbox(run, { modules: BUILTIN_OPENERS, globals: ["errors"] });
  const thread = lua.lua_newthread(L);
  if (run.compileCache.load(thread, WARM_UP_SOURCE, "=warm-up") !== lua.LUA_OK) throw new Error("sandbox: the warm-up script does not compile");
  run.mainThread = thread;
  run.executing = true;
  const status = lua.lua_resume(thread, L, 0);
  run.executing = false;
  if (status !== lua.LUA_OK) {
    const message = luaStringToJs(lauxlib.luaL_tolstring(thread, -1));
    throw new Error(`sandbox: the warm-up script failed with status ${status}: ${message}`);
  }
}

/**
 * Control flow a script cannot escape from once a limit is hit.
 *
 * fengari runs the count hook between instructions; an error raised there can be caught by
 * `pcall`, so the kill must stick: the killed thread's hook fires on every instruction and
 * re-raises, and our `pcall`, `xpcall`, `coroutine.resume` and `coroutine.wrap` re-raise
 * after any call that ended while the run was killed. The coroutine functions also share one
 * instruction countdown across threads and carry a host wait (an async store call made inside
 * a coroutine) up to the run loop and back down.
 */
import { lua, lauxlib, lualib, type lua_Debug, type lua_State, type KFunction } from "fengari";
import { ErrorKind } from "../errors.js";
import { attachRun, getBaseHookCount, getHookCount, runOf, setHookCount } from "./internals.js";
import { MEMORY_PROBE_HOOKS, type RunContext } from "./run-context.js";

/** Instructions between two runs of the count hook. Measured: cheap at this period. */
export const HOOK_INTERVAL = 1000;

/** The value raised when a run is killed; never visible as a normal error. */
const KILL = Object.freeze({ luastoreKill: true });

/** Raises the kill value in `L`. */
export function raiseKill(L: lua_State): never {
  // A kill can be raised from inside the VM (the `..` wrapper in string-limit.ts runs in the
  // middle of OP_CONCAT), where the frame may have no free slot for the API to push to; fengari
  // then throws a JS "stack overflow" that lua_resume cannot report (found by the generated
  // hostile scripts). lua_checkstack makes the room. Should even that fail, any value will do:
  // every handler decides by `run.killed`, not by the value raised.
  if (lua.lua_checkstack(L, 1)) lua.lua_pushlightuserdata(L, KILL);
  return lua.lua_error(L);
}

/** True when the value at `idx` is the kill value. */
export function isKillValue(L: lua_State, idx: number): boolean {
  return lua.lua_type(L, idx) === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, idx) === KILL;
}

/** Stops the run for good: records why (first reason wins) and raises in `L`. */
export function killRun(L: lua_State, kind: ErrorKind, message: string): never {
  const run = runOf(L);
  if (run.killed === null) run.killed = { kind, message };
  lua.lua_sethook(L, countHook, lua.LUA_MASKCOUNT, 1);
  return raiseKill(L);
}

/** The count hook: charges the instruction budget and checks the wall-clock deadline. */
export function countHook(L: lua_State): void {
  const run = runOf(L);
  if (run.killed !== null) {
    lua.lua_sethook(L, countHook, lua.LUA_MASKCOUNT, 1);
    raiseKill(L);
  }
  run.instructions += HOOK_INTERVAL;
  if (run.instructions > run.limits.maxInstructions) {
    killRun(L, ErrorKind.INSTRUCTION_LIMIT, `instruction limit exceeded (${run.limits.maxInstructions} instructions)`);
  }
  if (performance.now() > run.deadline) {
    killRun(L, ErrorKind.TIMEOUT, `timeout: run exceeded ${run.limits.timeoutMs} ms`);
  }
  if (run.memoryProbe !== null && ++run.hooksSinceProbe >= MEMORY_PROBE_HOOKS) run.memoryProbe(L);
}

/**
 * Instructions `thread` (the run's main thread) has executed: whole hook periods charged by the
 * count hook plus the part of the current period used. Exact while the run is not killed, as the
 * coroutine library hands one countdown from thread to thread.
 */
export function instructionsExecuted(run: RunContext, thread: lua_State): number {
  if (run.killed !== null) return run.instructions;
  const base = getBaseHookCount(thread);
  return run.instructions + (base === HOOK_INTERVAL ? base - getHookCount(thread) : 0);
}

let hooksVerified = false;

/**
 * Refuses to run on a fengari whose lua_pcallk loses the "hooks allowed" bit (see
 * scripts/patch-fengari.mjs, run at install): there, one error caught by `pcall` inside a
 * coroutine switches the count hook off for the rest of the run, and with it every limit the
 * hook enforces. Checked once per thread by behaviour, not by version, so a fengari that fixed
 * it differently passes and one that lost the repair fails closed.
 */
export function assertHooksSurviveCaughtErrors(): void {
  if (hooksVerified) return;
  const L = lauxlib.luaL_newstate();
  lauxlib.luaL_requiref(L, "_G", lualib.luaopen_base, 1);
  lua.lua_pop(L, 1);
  const thread = lua.lua_newthread(L);
  const src = new TextEncoder().encode(`pcall(error, "x") local n = 0 for i = 1, 1000 do n = n + i end return n`);
  if (lauxlib.luaL_loadbufferx(thread, src, src.length, "=luastore-check", "t") !== lua.LUA_OK) {
    throw new Error("luastore: the fengari self-check does not compile");
  }
  let fired = 0;
  lua.lua_sethook(thread, () => void fired++, lua.LUA_MASKCOUNT, 100);
  const status = lua.lua_resume(thread, L, 0);
  if (status !== lua.LUA_OK || fired < 20) {
    throw new Error(
      "luastore: this fengari loses its count hook after an error caught by pcall (lua_pcallk's continuation path), " +
        "so script limits could be switched off; repair it with `node scripts/patch-fengari.mjs` in the luastore package " +
        `(status ${status}, the hook fired ${fired} times of at least 20)`,
    );
  }
  hooksVerified = true;
}

/** Installs the run on the state and the count hook on `L` (new threads inherit it). */
export function installLimits(L: lua_State, run: RunContext): void {
  attachRun(L, run);
  lua.lua_sethook(L, countHook, lua.LUA_MASKCOUNT, HOOK_INTERVAL);
}

/**
 * Adds a line hook beside the count hook on `L` (threads it creates later inherit both), for
 * `luastore test --coverage`. A state has one hook function: this one passes line events to
 * `onLine` and count events to {@link countHook}, and keeps the instruction countdown where it
 * was (lua_sethook resets it), so every limit and `stats.instructions` stay exact. A kill puts
 * the count hook back alone.
 */
export function installLineHook(L: lua_State, onLine: (ar: lua_Debug) => void): void {
  const remaining = getHookCount(L);
  const hook = (L: lua_State, ar: lua_Debug): void => {
    if (ar.event === lua.LUA_HOOKLINE) onLine(ar);
    else countHook(L);
  };
  lua.lua_sethook(L, hook, lua.LUA_MASKCOUNT | lua.LUA_MASKLINE, HOOK_INTERVAL);
  setHookCount(L, remaining);
}

// ---- pcall / xpcall --------------------------------------------------------------------

const finishPcall: KFunction = (L, status, extra) => {
  if (runOf(L).killed !== null) raiseKill(L);
  if (status !== lua.LUA_OK && status !== lua.LUA_YIELD) {
    lua.lua_pushboolean(L, false);
    lua.lua_pushvalue(L, -2);
    return 2;
  }
  return lua.lua_gettop(L) - (extra as number);
};

function pcall(L: lua_State): number {
  lauxlib.luaL_checkany(L, 1);
  lua.lua_pushboolean(L, true);
  lua.lua_insert(L, 1);
  const status = lua.lua_pcallk(L, lua.lua_gettop(L) - 2, lua.LUA_MULTRET, 0, 0, finishPcall);
  return finishPcall(L, status, 0);
}

/**
 * xpcall's message handler runs inside luaG_errormsg; when the error was raised by the count
 * hook, fengari still has hooks disabled there, so a looping handler would never be stopped.
 * The wrapper skips the user's handler once the run is killed.
 */
function guardedHandler(L: lua_State): number {
  if (runOf(L).killed !== null) {
    lua.lua_pushlightuserdata(L, KILL);
    return 1;
  }
  lua.lua_pushvalue(L, lua.lua_upvalueindex(1));
  lua.lua_insert(L, 1);
  lua.lua_call(L, lua.lua_gettop(L) - 1, 1);
  return 1;
}

function xpcall(L: lua_State): number {
  const n = lua.lua_gettop(L);
  lauxlib.luaL_checktype(L, 2, lua.LUA_TFUNCTION);
  lua.lua_pushvalue(L, 2);
  lua.lua_pushcclosure(L, guardedHandler, 1);
  lua.lua_replace(L, 2);
  lua.lua_pushboolean(L, true);
  lua.lua_pushvalue(L, 1);
  lua.lua_rotate(L, 3, 2);
  const status = lua.lua_pcallk(L, n - 2, lua.LUA_MULTRET, 2, 2, finishPcall);
  return finishPcall(L, status, 2);
}

// ---- coroutines ------------------------------------------------------------------------

interface HostWaitContinuation {
  co: lua_State;
  base: number;
  wrap: boolean;
}

/**
 * Resumes `co` with `narg` values already moved onto it. Returns the number of results moved
 * onto L, or -1 with an error value on top of L. A host wait inside `co` yields L as well.
 */
function resumeStep(L: lua_State, co: lua_State, narg: number, wrap: boolean): number {
  const run = runOf(L);
  setHookCount(co, getHookCount(L));
  const status = lua.lua_resume(co, L, narg);
  setHookCount(L, getHookCount(co));
  if (run.killed !== null) raiseKill(L);
  if (status === lua.LUA_YIELD && run.pending !== null) {
    // A host function inside `co` is waiting on a promise: wait with it, one level up.
    const k: HostWaitContinuation = { co, base: lua.lua_gettop(L), wrap };
    return lua.lua_yieldk(L, 0, k, afterHostWait);
  }
  if (status === lua.LUA_OK || status === lua.LUA_YIELD) {
    const nres = lua.lua_gettop(co);
    if (!lua.lua_checkstack(L, nres + 1)) {
      lua.lua_pop(co, nres);
      lua.lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua.lua_xmove(co, L, nres);
    return nres;
  }
  lua.lua_xmove(co, L, 1);
  return -1;
}

/** Continuation after a host wait: hand the results down to the coroutine and go on. */
const afterHostWait: KFunction = (L, _status, ctx) => {
  const k = ctx as HostWaitContinuation;
  const n = lua.lua_gettop(L) - k.base;
  lua.lua_xmove(L, k.co, n);
  const r = resumeStep(L, k.co, n, k.wrap);
  return k.wrap ? finishWrap(L, r) : finishResume(L, r);
};

function auxResume(L: lua_State, co: lua_State, narg: number, wrap: boolean): number {
  if (!lua.lua_checkstack(co, narg)) {
    lua.lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  if (lua.lua_status(co) === lua.LUA_OK && lua.lua_gettop(co) === 0) {
    lua.lua_pushliteral(L, "cannot resume dead coroutine");
    return -1;
  }
  lua.lua_xmove(L, co, narg);
  return resumeStep(L, co, narg, wrap);
}

function finishResume(L: lua_State, r: number): number {
  if (r < 0) {
    lua.lua_pushboolean(L, false);
    lua.lua_insert(L, -2);
    return 2;
  }
  lua.lua_pushboolean(L, true);
  lua.lua_insert(L, -(r + 1));
  return r + 1;
}

function finishWrap(L: lua_State, r: number): number {
  if (r < 0) {
    if (lua.lua_type(L, -1) === lua.LUA_TSTRING) {
      lauxlib.luaL_where(L, 1);
      lua.lua_insert(L, -2);
      lua.lua_concat(L, 2);
    }
    return lua.lua_error(L);
  }
  return r;
}

function getCo(L: lua_State): lua_State {
  const co = lua.lua_tothread(L, 1);
  if (co === null) lauxlib.luaL_argerror(L, 1, "thread expected");
  return co!;
}

function coResume(L: lua_State): number {
  const co = getCo(L);
  return finishResume(L, auxResume(L, co, lua.lua_gettop(L) - 1, false));
}

function auxWrap(L: lua_State): number {
  const co = lua.lua_tothread(L, lua.lua_upvalueindex(1))!;
  return finishWrap(L, auxResume(L, co, lua.lua_gettop(L), true));
}

function coCreate(L: lua_State): number {
  lauxlib.luaL_checktype(L, 1, lua.LUA_TFUNCTION);
  const NL = lua.lua_newthread(L);
  lua.lua_pushvalue(L, 1);
  lua.lua_xmove(L, NL, 1);
  return 1;
}

function coWrap(L: lua_State): number {
  coCreate(L);
  lua.lua_pushcclosure(L, auxWrap, 1);
  return 1;
}

function coYield(L: lua_State): number {
  if (L === runOf(L).mainThread) return lauxlib.luaL_error(L, "attempt to yield from outside a coroutine");
  return lua.lua_yield(L, lua.lua_gettop(L));
}

function coStatus(L: lua_State): number {
  const co = getCo(L);
  if (L === co) lua.lua_pushliteral(L, "running");
  else {
    switch (lua.lua_status(co)) {
      case lua.LUA_YIELD:
        lua.lua_pushliteral(L, "suspended");
        break;
      case lua.LUA_OK: {
        const ar = new lua.lua_Debug();
        if (lua.lua_getstack(co, 0, ar) > 0) lua.lua_pushliteral(L, "normal");
        else if (lua.lua_gettop(co) === 0) lua.lua_pushliteral(L, "dead");
        else lua.lua_pushliteral(L, "suspended");
        break;
      }
      default:
        lua.lua_pushliteral(L, "dead");
    }
  }
  return 1;
}

function coRunning(L: lua_State): number {
  lua.lua_pushthread(L);
  lua.lua_pushboolean(L, L === runOf(L).mainThread);
  return 2;
}

function coIsYieldable(L: lua_State): number {
  lua.lua_pushboolean(L, L !== runOf(L).mainThread && lua.lua_isyieldable(L));
  return 1;
}

/** The `coroutine` library, kill-aware and budget-sharing. */
export const coroutineFunctions = {
  create: coCreate,
  resume: coResume,
  wrap: coWrap,
  yield: coYield,
  status: coStatus,
  running: coRunning,
  isyieldable: coIsYieldable,
};

export const protectedCallFunctions = { pcall, xpcall };

/**
 * The Lua `time` module: `time.now()` reads the host clock (the harness's virtual clock under
 * test); `time.sleep(seconds)` suspends the script without blocking the host and counts
 * toward the run's wall-clock limit.
 *
 * On the system clock a sleep that reaches past the run's deadline sets no timer of its own:
 * the run loop's deadline ends the run with Timeout when the deadline comes, as it ends any
 * host wait, and no timer outlives the run (a process would wait for it before exiting).
 * Other clocks (the harness's virtual clock) get the sleep as asked: their time is not the
 * wall's, and the run loop still bounds the wait by the deadline in wall time.
 */
import { lua, lauxlib, type lua_State, type JSFunction } from "fengari";
import { systemClock } from "../../clock.js";
import { ErrorKind } from "../../errors.js";
import { runOf } from "../internals.js";
import { failWith } from "./errors.js";

const now: JSFunction = (L) => {
  lua.lua_pushnumber(L, runOf(L).clock.now() / 1000);
  return 1;
};

/** A wait that never ends by itself: the run's deadline ends it. */
const UNTIL_DEADLINE: Promise<void> = new Promise<void>(() => {});

const sleep: JSFunction = (L) => {
  const seconds = lauxlib.luaL_checknumber(L, 1);
  if (!Number.isFinite(seconds) || seconds < 0) {
    return failWith(L, ErrorKind.INVALID, `sleep: seconds must be a finite number >= 0, got ${String(seconds)}`);
  }
  if (!lua.lua_isyieldable(L)) {
    return failWith(L, ErrorKind.INTERNAL, "sleep: cannot sleep here (inside a metamethod or library callback)");
  }
  const run = runOf(L);
  const ms = seconds * 1000;
  const pastDeadline = run.clock === systemClock && ms >= run.deadline - performance.now();
  run.pending = {
    promise: pastDeadline ? UNTIL_DEADLINE : run.clock.sleep(ms),
    push: (L2) => {
      lua.lua_pushboolean(L2, true);
      return 1;
    },
  };
  return lua.lua_yield(L, 0);
};

export function openTime(L: lua_State): number {
  lua.lua_createtable(L, 0, 2);
  lauxlib.luaL_setfuncs(L, { now, sleep }, 0);
  return 1;
}

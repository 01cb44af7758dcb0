/**
 * The few fengari internals luastore relies on, in one place. fengari exposes no API for
 * them; each use says why. If a fengari upgrade breaks one, test/lua/internals.test.ts fails.
 */
import type { lua_State } from "fengari";
import type { RunContext } from "./run-context.js";

interface StateInternals {
  /** Instructions left before the count hook fires (per thread). */
  hookcount: number;
  basehookcount: number;
  /** Shared by every thread of one Lua state. */
  l_G: { luastoreRun?: RunContext };
}

const internals = (L: lua_State): StateInternals => L as unknown as StateInternals;

/** Attaches the run to its Lua state, so module-level host functions find it from any thread. */
export function attachRun(L: lua_State, run: RunContext): void {
  internals(L).l_G.luastoreRun = run;
}

/** The run a Lua state belongs to. */
export function runOf(L: lua_State): RunContext {
  return internals(L).l_G.luastoreRun!;
}

/**
 * Instruction countdown of a thread. A new coroutine starts with a full countdown, so work
 * spread over many short coroutines would never reach the count hook; the coroutine library
 * hands the countdown from resumer to coroutine and back so all threads share one budget.
 */
export function getHookCount(L: lua_State): number {
  return internals(L).hookcount;
}

export function setHookCount(L: lua_State, count: number): void {
  internals(L).hookcount = count;
}

export function getBaseHookCount(L: lua_State): number {
  return internals(L).basehookcount;
}

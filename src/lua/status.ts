/**
 * The one place where fengari statuses become errors: every lua_resume / load status the
 * host sees goes through {@link failureFromStatus}. It never runs Lua code (no __tostring):
 * an error object whose __tostring loops or returns a huge string cannot hang the host.
 */
import { lua, lauxlib, type lua_State } from "fengari";
import { ErrorKind, isHostVerdictKind, type RunFailure } from "../errors.js";
import { isKillValue } from "./control.js";
import { toErrorData } from "./modules/errors.js";
import type { RunContext } from "./run-context.js";
import { luaStringToJs } from "./strings.js";

const MAX_MESSAGE = 16 * 1024;
const MAX_TRACEBACK = 16 * 1024;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The Lua traceback of `thread` (where it stopped), as text. */
function tracebackOf(L: lua_State, thread: lua_State): string {
  // A thread suspended inside a JS function (a host wait) has that frame's func moved by
  // fengari's lua_yield, and lua_getinfo asserts on it: start above it.
  const level = lua.lua_status(thread) === lua.LUA_YIELD ? 1 : 0;
  try {
    lauxlib.luaL_traceback(L, thread, null, level);
  } catch {
    return "stack traceback unavailable";
  }
  const tb = lua.lua_tolstring(L, -1);
  const text = tb === null ? "" : luaStringToJs(tb.length > MAX_TRACEBACK ? tb.subarray(0, MAX_TRACEBACK) : tb);
  lua.lua_pop(L, 1);
  return text;
}

interface ErrorDescription {
  kind: ErrorKind | string;
  message: string;
  retryable: boolean;
  details?: { kind: string };
}

/**
 * Describes the error value on top of `thread` without running any metamethod. An `errors.new`
 * value of a host-verdict kind becomes RuntimeError with the script's kind in `details`; a
 * host-made value keeps its kind, also when the script re-raises it.
 */
function describeErrorValue(thread: lua_State): ErrorDescription {
  const data = toErrorData(thread, -1);
  if (data !== null) {
    if (data.byScript && isHostVerdictKind(data.kind)) {
      return { kind: ErrorKind.RUNTIME, message: data.message, retryable: false, details: { kind: data.kind } };
    }
    return { kind: data.kind || ErrorKind.RUNTIME, message: data.message, retryable: data.retryable };
  }
  const t = lua.lua_type(thread, -1);
  if (t === lua.LUA_TSTRING || t === lua.LUA_TNUMBER) {
    const s = lua.lua_tolstring(thread, -1)!;
    return { kind: ErrorKind.RUNTIME, message: luaStringToJs(s.length > MAX_MESSAGE ? s.subarray(0, MAX_MESSAGE) : s), retryable: false };
  }
  if (t === lua.LUA_TNONE) return { kind: ErrorKind.RUNTIME, message: "unknown error", retryable: false };
  const typeName = luaStringToJs(lua.lua_typename(thread, t));
  return { kind: ErrorKind.RUNTIME, message: `(error object is a ${typeName} value)`, retryable: false };
}

/**
 * Turns a non-OK status of `thread` (or of a load on `L`) into a RunFailure. A killed run
 * reports the limit that killed it, whatever the script did with the error afterwards.
 */
export function failureFromStatus(L: lua_State, thread: lua_State, status: number, run: RunContext | null): RunFailure {
  if (run?.killed) {
    return { kind: run.killed.kind, message: run.killed.message, traceback: tracebackOf(L, thread), retryable: false };
  }
  switch (status) {
    case lua.LUA_ERRSYNTAX: {
      const { message } = describeErrorValue(thread);
      return { kind: ErrorKind.SYNTAX, message: clip(message, MAX_MESSAGE), traceback: "", retryable: false };
    }
    case lua.LUA_ERRRUN:
    case lua.LUA_ERRERR: {
      if (isKillValue(thread, -1)) {
        return { kind: ErrorKind.INTERNAL, message: "run stopped", traceback: tracebackOf(L, thread), retryable: false };
      }
      const { kind, message, retryable, details } = describeErrorValue(thread);
      const msg = status === lua.LUA_ERRERR ? `error in error handling: ${message}` : message;
      const failure: RunFailure = { kind: kind as ErrorKind, message: clip(msg, MAX_MESSAGE), traceback: tracebackOf(L, thread), retryable };
      if (details) failure.details = details;
      return failure;
    }
    case lua.LUA_ERRMEM:
      return { kind: ErrorKind.MEMORY_LIMIT, message: "not enough memory", traceback: "", retryable: false };
    default:
      return {
        kind: ErrorKind.INTERNAL,
        message: `the Lua VM failed with status ${status} (a host error it could not report)`,
        traceback: "",
        retryable: false,
      };
  }
}

/**
 * The largest-string limit (`maxStringBytes`), enforced inside fengari in both isolation modes.
 *
 * A script builds long strings in two ways, and both are watched here:
 * - Library functions (`string.rep`, `string.format`, `string.gsub`, `table.concat`,
 *   `string.pack`, `string.upper`, ...) build their result in a `luaL_Buffer`. Every library
 *   module destructured fengari's buffer functions at load time, so they cannot be wrapped; but
 *   every buffer is an instance of one class, so an accessor on its prototype sees each change
 *   of the buffer's length (`B.n`) wherever it happens, whatever loaded first. The run is killed
 *   as soon as the content would pass the limit (the buffer holds at most twice the limit then:
 *   fengari doubles it). `string.rep` sizes its buffer for the whole result before writing, so
 *   the sandbox also checks its arguments first ({@link guardedRep}).
 * - `..` (OP_CONCAT, and `lua_concat`) allocates the result inside `luaV_concat`, which calls
 *   `lobject.setsvalue2s` through the module object: that one property is wrapped. The operands
 *   already passed the limit, so the allocation before the check is at most their sum: twice
 *   the limit for `a .. b`, more for one expression of many operands (`s .. s .. s .. ...`,
 *   up to one operand per register), a known gap.
 *
 * The same two places count the bytes of large strings so that a worker measures its memory
 * after every MiB built (ArrayBuffers are outside V8's heap limit; see RunContext.memoryProbe).
 * Checks raise only while the run's Lua code executes (`RunContext.executing`), and with
 * {@link killRun}, so `pcall` cannot catch them.
 */
import { createRequire } from "node:module";
import { lauxlib, lua, type JSFunction, type lua_State } from "fengari";
import { ErrorKind } from "../errors.js";
import { killRun } from "./control.js";
import type { RunContext } from "./run-context.js";

/** Strings at least this long count toward the memory probe's byte budget. */
const BIG_STRING = 64 * 1024;
/** A memory probe after every this many bytes of large strings built. */
const PROBE_STEP = 1 << 20;

/**
 * Strings and buffers up to this length are never looked at: the smallest string limit of any
 * run so far, at most 4 KiB. Small buffers (most of string.format's) then pay one comparison.
 */
let checkFrom = 4096;

interface BufferFields {
  L: lua_State | null;
  luastoreN: number;
  /** Content length above which the slow path runs (the prototype holds {@link checkFrom}). */
  luastoreAt: number;
}

let bufferPrototype: BufferFields | null = null;

/** The run of `L` while its Lua code executes, else undefined (the host's own use of fengari). */
function activeRun(L: lua_State): RunContext | undefined {
  const run = (L as unknown as { l_G: { luastoreRun?: RunContext } }).l_G.luastoreRun;
  return run !== undefined && run.executing ? run : undefined;
}

function stringLimitExceeded(L: lua_State, run: RunContext): never {
  return killRun(L, ErrorKind.STRING_LIMIT, `string limit exceeded (${run.limits.maxStringBytes} bytes)`);
}

/** A buffer's content passed its threshold: the string limit, or time for a memory probe. */
function bufferGrew(B: BufferFields, n: number): void {
  const run = B.L === null ? undefined : activeRun(B.L);
  if (run === undefined) {
    B.luastoreAt = Number.POSITIVE_INFINITY;
    return;
  }
  const max = run.limits.maxStringBytes;
  if (n > max) stringLimitExceeded(B.L!, run);
  if (run.memoryProbe === null) {
    B.luastoreAt = max;
    return;
  }
  if (n >= PROBE_STEP) run.memoryProbe(B.L!);
  B.luastoreAt = Math.min(max, n + PROBE_STEP);
}

/** A string of `n` bytes was built by `..` in `L`. */
function concatBuilt(L: lua_State, n: number): void {
  const run = activeRun(L);
  if (run === undefined) return;
  if (n > run.limits.maxStringBytes) stringLimitExceeded(L, run);
  if (run.memoryProbe === null || n < BIG_STRING) return;
  run.bigStringBytes += n;
  if (run.bigStringBytes >= PROBE_STEP) {
    run.bigStringBytes = 0;
    run.memoryProbe(L);
  }
}

/** Makes sure strings over `maxStringBytes` are looked at (called for each run's limits). */
export function noteStringLimit(maxStringBytes: number): void {
  if (maxStringBytes >= checkFrom) return;
  checkFrom = maxStringBytes;
  if (bufferPrototype !== null) bufferPrototype.luastoreAt = checkFrom;
}

/** Installs the buffer accessor and the concat wrapper in this thread's fengari. Idempotent. */
export function installStringLimit(): void {
  if (bufferPrototype !== null) return;
  const proto = (lauxlib as unknown as { luaL_Buffer: { prototype: BufferFields } }).luaL_Buffer.prototype;
  bufferPrototype = proto;
  proto.luastoreAt = checkFrom;
  // Only `n` gets an accessor, and its fast path is one comparison: measured within noise of the
  // plain field on string.format / string.rep / table.concat loops.
  Object.defineProperty(proto, "n", {
    configurable: true,
    get(this: BufferFields) {
      return this.luastoreN;
    },
    set(this: BufferFields, n: number) {
      this.luastoreN = n;
      if (n > this.luastoreAt) bufferGrew(this, n);
    },
  });

  const require = createRequire(import.meta.url);
  const lobject = require("fengari/src/lobject.js") as {
    setsvalue2s: (L: lua_State, idx: number, ts: { realstring: Uint8Array }) => void;
  };
  const setsvalue2s = lobject.setsvalue2s;
  lobject.setsvalue2s = (L, idx, ts) => {
    const n = ts.realstring.length;
    if (n > checkFrom) concatBuilt(L, n);
    setsvalue2s(L, idx, ts);
  };
}

/**
 * `string.rep` with its result size checked before fengari allocates it (upvalue 1: the
 * original function).
 */
export const guardedRep: JSFunction = (L) => {
  const s = lauxlib.luaL_checklstring(L, 1);
  const n = lauxlib.luaL_checkinteger(L, 2);
  const sepLength = lauxlib.luaL_optstring(L, 3, null)?.length ?? 0;
  // An empty string with an empty separator is "" however large the count; fengari would still
  // loop `n` times (2^31 - 1 iterations: 40 s in one call that never reaches the count hook).
  if (s.length === 0 && sepLength === 0) {
    lua.lua_pushliteral(L, "");
    return 1;
  }
  if (n > 0) {
    const total = s.length * n + sepLength * (n - 1);
    const run = activeRun(L);
    if (run !== undefined && total > run.limits.maxStringBytes) stringLimitExceeded(L, run);
  }
  const nargs = lua.lua_gettop(L);
  lua.lua_pushvalue(L, lua.lua_upvalueindex(1));
  lua.lua_insert(L, 1);
  lua.lua_call(L, nargs, 1);
  return 1;
};

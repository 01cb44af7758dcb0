/**
 * The run loop: one script in a fresh sandbox. Inline isolation runs it on the host thread
 * with a LocalGateway; each Lua worker runs it with a ChannelGateway (lua-worker.ts). The main
 * chunk runs as a coroutine so that host functions waiting on a promise (an asynchronous
 * store inline, time.sleep) yield to this loop, which awaits and resumes them; other runs go
 * on meanwhile.
 */
import { lua, lauxlib, type lua_State } from "fengari";
import { CodecError } from "../codec/codec-error.js";
import { encodeFromLua, pushMsgpack } from "../codec/lua-msgpack.js";
import { decodeValue, encodeValue } from "../codec/msgpack.js";
import type { Clock } from "../clock.js";
import { ErrorKind, type RunFailure } from "../errors.js";
import type { RunLimits } from "../lua/limits.js";
import { instructionsExecuted } from "../lua/control.js";
import type { CompileCache } from "../lua/compile-cache.js";
import { RunContext } from "../lua/run-context.js";
import { createSandbox, type ModuleOpener } from "../lua/sandbox.js";
import { failureFromStatus } from "../lua/status.js";
import { luaStringToJs } from "../lua/strings.js";
import type { RunGateway } from "./gateway.js";
import type { RunResult, RunStats } from "./run-types.js";

export interface InlineRunRequest {
  runId: string;
  source: string | Uint8Array;
  chunkName: string;
  args: readonly unknown[];
  limits: RunLimits;
  clock: Clock;
  gateway: RunGateway;
  /** Where the script (and configured modules) are compiled once and instantiated per run. */
  compileCache: CompileCache;
  modules: ReadonlyMap<string, ModuleOpener>;
  onOutput?: (text: string) => void;
  /** Measures memory from the count hook (worker isolation); see RunContext.memoryProbe. */
  memoryProbe?: (L: lua_State) => void;
  /** Called after every store call (worker isolation); see RunContext.afterStoreCall. */
  afterStoreCall?: (L: lua_State) => void;
}

/** Converts the value at `idx` for the result: stored-value semantics, else a description. */
function resultValue(L: lua_State, idx: number): unknown {
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TNIL) return null;
  try {
    return decodeValue(encodeFromLua(L, idx, 64 << 20, "result"));
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    return `<${luaStringToJs(lua.lua_typename(L, t))}>`;
  }
}

type WaitOutcome = { value: unknown } | { timedOut: true } | { error: unknown };

/** Awaits a host wait, bounded by the run's deadline. */
function waitWithDeadline(promise: Promise<unknown>, run: RunContext): Promise<WaitOutcome> {
  const left = run.deadline - performance.now();
  if (left <= 0) return Promise.resolve({ timedOut: true });
  return new Promise<WaitOutcome>((resolve) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), left);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ error });
      },
    );
  });
}

/** Runs one script inline and reports its result; never throws for script errors. */
export async function runInline(req: InlineRunRequest): Promise<RunResult> {
  const run = new RunContext({
    runId: req.runId,
    limits: req.limits,
    clock: req.clock,
    gateway: req.gateway,
    compileCache: req.compileCache,
    ...(req.onOutput ? { onOutput: req.onOutput } : {}),
  });
  if (req.memoryProbe) run.memoryProbe = req.memoryProbe;
  if (req.afterStoreCall) run.afterStoreCall = req.afterStoreCall;
  let failure: RunFailure | undefined;
  let values: unknown[] = [];
  let autoReleased = 0;
  let thread: lua_State | null = null;
  try {
    const L = createSandbox(run, { modules: req.modules, globals: ["errors"] });
    const loadStatus = req.compileCache.load(L, req.source, req.chunkName);
    if (loadStatus !== lua.LUA_OK) {
      failure = failureFromStatus(L, L, loadStatus, null);
    } else {
      thread = lua.lua_newthread(L);
      run.mainThread = thread;
      lua.lua_pushvalue(L, -2);
      lua.lua_xmove(L, thread, 1);
      for (const arg of req.args) pushMsgpack(thread, encodeValue(arg));
      let nargs = req.args.length;
      for (;;) {
        run.executing = true;
        const status = lua.lua_resume(thread, L, nargs);
        run.executing = false;
        if (status === lua.LUA_YIELD) {
          const pending = run.pending;
          run.pending = null;
          if (pending === null || run.killed !== null) {
            failure = run.killed
              ? failureFromStatus(L, thread, status, run)
              : { kind: ErrorKind.RUNTIME, message: "attempt to yield from outside a coroutine", traceback: "", retryable: false };
            break;
          }
          const outcome = await waitWithDeadline(pending.promise, run);
          if ("timedOut" in outcome) {
            run.killed = { kind: ErrorKind.TIMEOUT, message: `timeout: run exceeded ${run.limits.timeoutMs} ms` };
            failure = failureFromStatus(L, thread, lua.LUA_YIELD, run);
            break;
          }
          if ("error" in outcome) {
            const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
            failure = { kind: ErrorKind.INTERNAL, message: `host wait failed: ${message}`, traceback: "", retryable: false };
            break;
          }
          lua.lua_settop(thread, 0);
          nargs = pending.push(thread, outcome.value);
          continue;
        }
        if (status === lua.LUA_OK && run.killed === null) {
          const n = lua.lua_gettop(thread);
          values = [];
          for (let i = 1; i <= n; i++) values.push(resultValue(thread, i));
        } else {
          failure = failureFromStatus(L, thread, status, run);
        }
        break;
      }
    }
  } finally {
    autoReleased = run.gateway.releaseAll();
  }
  const stats: RunStats = {
    instructions: thread === null ? run.instructions : instructionsExecuted(run, thread),
    wallMs: performance.now() - run.startedAt,
    storeOps: run.storeOps,
    autoReleased,
  };
  if (run.peakMemoryBytes > 0) stats.peakMemoryBytes = run.peakMemoryBytes;
  const result: RunResult = { runId: req.runId, ok: failure === undefined, values, output: run.output.join(""), stats };
  if (failure !== undefined) result.error = failure;
  return result;
}

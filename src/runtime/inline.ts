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
import { RunContext, type PendingWait } from "../lua/run-context.js";
import { createSandbox, type ModuleOpener } from "../lua/sandbox.js";
import { failureFromStatus } from "../lua/status.js";
import { luaStringToJs } from "../lua/strings.js";
import type { RunGateway } from "../lua/gateway.js";
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

/**
 * Runs one script inline and reports its result; never rejects for script errors.
 *
 * The run loop resumes the main chunk until it ends or a host function waits on a promise; a
 * wait continues from that promise's own callbacks (no further promise, no `await` hop per store
 * call). One timer per run bounds every wait by the run's deadline: set at the first wait that
 * needs it, cleared when the run ends; a wait that starts past the deadline times out at once.
 */
export function runInline(req: InlineRunRequest): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => new InlineRun(req, resolve, reject).start());
}

class InlineRun {
  readonly #req: InlineRunRequest;
  readonly #resolve: (r: RunResult) => void;
  readonly #reject: (e: unknown) => void;
  readonly #run: RunContext;
  #L: lua_State | null = null;
  #thread: lua_State | null = null;
  #failure: RunFailure | undefined;
  #values: unknown[] = [];
  /** The wait in progress (its continuation ignores the promise once the run has moved on). */
  #waiting: PendingWait | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;

  constructor(req: InlineRunRequest, resolve: (r: RunResult) => void, reject: (e: unknown) => void) {
    this.#req = req;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#run = new RunContext({
      runId: req.runId,
      limits: req.limits,
      clock: req.clock,
      gateway: req.gateway,
      compileCache: req.compileCache,
      ...(req.onOutput ? { onOutput: req.onOutput } : {}),
    });
    if (req.memoryProbe) this.#run.memoryProbe = req.memoryProbe;
    if (req.afterStoreCall) this.#run.afterStoreCall = req.afterStoreCall;
  }

  start(): void {
    try {
      const req = this.#req;
      const L = createSandbox(this.#run, { modules: req.modules, globals: ["errors"] });
      this.#L = L;
      const loadStatus = req.compileCache.load(L, req.source, req.chunkName);
      if (loadStatus !== lua.LUA_OK) {
        this.#failure = failureFromStatus(L, L, loadStatus, null);
        return this.#finish();
      }
      const thread = lua.lua_newthread(L);
      this.#thread = thread;
      this.#run.mainThread = thread;
      lua.lua_pushvalue(L, -2);
      lua.lua_xmove(L, thread, 1);
      for (const arg of req.args) pushMsgpack(thread, encodeValue(arg));
      this.#resume(req.args.length);
    } catch (err) {
      this.#crash(err);
    }
  }

  /** Resumes the main chunk with `nargs` values on its stack, until it ends or waits. */
  #resume(nargs: number): void {
    const run = this.#run;
    const L = this.#L!;
    const thread = this.#thread!;
    run.executing = true;
    const status = lua.lua_resume(thread, L, nargs);
    run.executing = false;
    if (status === lua.LUA_YIELD) {
      const pending = run.pending;
      run.pending = null;
      if (pending === null || run.killed !== null) {
        this.#failure = run.killed
          ? failureFromStatus(L, thread, status, run)
          : { kind: ErrorKind.RUNTIME, message: "attempt to yield from outside a coroutine", traceback: "", retryable: false };
        return this.#finish();
      }
      return this.#wait(pending);
    }
    if (status === lua.LUA_OK && run.killed === null) {
      const n = lua.lua_gettop(thread);
      for (let i = 1; i <= n; i++) this.#values.push(resultValue(thread, i));
    } else {
      this.#failure = failureFromStatus(L, thread, status, run);
    }
    this.#finish();
  }

  /** Waits for a host function's promise, bounded by the run's deadline. */
  #wait(pending: PendingWait): void {
    const left = this.#run.deadline - performance.now();
    if (left <= 0) return this.#timeOut();
    this.#timer ??= setTimeout(() => {
      if (!this.#done) this.#timeOut();
    }, left);
    this.#waiting = pending;
    pending.promise.then(
      (value) => {
        if (this.#waiting !== pending) return;
        this.#waiting = null;
        try {
          lua.lua_settop(this.#thread!, 0);
          this.#resume(pending.push(this.#thread!, value));
        } catch (err) {
          this.#crash(err);
        }
      },
      (error: unknown) => {
        if (this.#waiting !== pending) return;
        this.#waiting = null;
        const message = error instanceof Error ? error.message : String(error);
        this.#failure = { kind: ErrorKind.INTERNAL, message: `host wait failed: ${message}`, traceback: "", retryable: false };
        this.#finish();
      },
    );
  }

  #timeOut(): void {
    this.#waiting = null;
    const run = this.#run;
    run.killed = { kind: ErrorKind.TIMEOUT, message: `timeout: run exceeded ${run.limits.timeoutMs} ms` };
    try {
      this.#failure = failureFromStatus(this.#L!, this.#thread!, lua.LUA_YIELD, run);
      this.#finish();
    } catch (err) {
      this.#crash(err);
    }
  }

  /** A JS exception out of the run loop itself (not a script error): the run's promise rejects, after the release. */
  #crash(err: unknown): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    try {
      this.#run.gateway.releaseAll();
    } finally {
      this.#reject(err);
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const run = this.#run;
    let autoReleased: number;
    try {
      autoReleased = run.gateway.releaseAll();
    } catch (err) {
      this.#reject(err);
      return;
    }
    const thread = this.#thread;
    const stats: RunStats = {
      instructions: thread === null ? run.instructions : instructionsExecuted(run, thread),
      wallMs: performance.now() - run.startedAt,
      storeOps: run.storeOps,
      autoReleased,
    };
    if (run.peakMemoryBytes > 0) stats.peakMemoryBytes = run.peakMemoryBytes;
    const failure = this.#failure;
    const result: RunResult = { runId: this.#req.runId, ok: failure === undefined, values: failure === undefined ? this.#values : [], output: run.output.join(""), stats };
    if (failure !== undefined) result.error = failure;
    this.#resolve(result);
  }
}

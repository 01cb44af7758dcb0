/** Everything one run's Lua side needs: limits, counters, the gateway, and the kill switch. */
import type { lua_State } from "fengari";
import type { Clock } from "../clock.js";
import type { ErrorKind } from "../errors.js";
import type { RunGateway } from "./gateway.js";
import type { CompileCache } from "./compile-cache.js";
import type { SharedValue } from "./internals.js";
import type { RunLimits } from "./limits.js";

export interface KillReason {
  kind: ErrorKind;
  message: string;
}

/** A host call waiting on a promise: the run loop awaits it, then `push` puts the results on the stack. */
export interface PendingWait {
  promise: Promise<unknown>;
  push(L: lua_State, value: unknown): number;
}

/** The count hook probes memory (when a probe is set) every this many hooks. */
export const MEMORY_PROBE_HOOKS = 8;

export class RunContext {
  readonly runId: string;
  readonly limits: RunLimits;
  readonly clock: Clock;
  readonly gateway: RunGateway;
  /** Compiles chunks once per thread (the script, configured modules). */
  readonly compileCache: CompileCache;
  readonly startedAt: number;
  /** performance.now() value after which the run is stopped with Timeout. */
  readonly deadline: number;
  instructions = 0;
  storeOps = 0;
  outputBytes = 0;
  readonly output: string[] = [];
  readonly onOutput: ((text: string) => void) | undefined;
  /** Set once a limit is hit; from then on every hook, pcall and resume re-raises. */
  killed: KillReason | null = null;
  /** A host function is waiting on a promise and yielded to the run loop. */
  pending: PendingWait | null = null;
  /** The thread running the main chunk (a coroutine.yield there is an error). */
  mainThread: lua_State | null = null;
  /**
   * True while the script's Lua code runs. Limit checks that fire inside fengari's library code
   * (the string limit) only raise then: the host builds tracebacks with the same buffers after
   * the run, and must not be stopped by the run's limits.
   */
  executing = false;
  /**
   * Measures the run's memory and kills it over the limit (worker isolation; null inline, where
   * the heap is the host's). Called from the count hook every {@link MEMORY_PROBE_HOOKS} hooks
   * and after every MiB of large strings built.
   */
  memoryProbe: ((L: lua_State) => void) | null = null;
  /**
   * Called after every store call has pushed its answer (worker isolation: the worker probes
   * its memory once the calls since the last probe moved enough bytes; null inline).
   */
  afterStoreCall: ((L: lua_State) => void) | null = null;
  /** Modules `require` has opened in this run, by the exact bytes of their names. */
  readonly loaded = new Map<string, SharedValue>();
  /** Count hooks since the last memory probe. */
  hooksSinceProbe = 0;
  /** Bytes of large strings built since the last memory probe. */
  bigStringBytes = 0;
  /** Highest memory the probe measured, in bytes (0 when never measured). */
  peakMemoryBytes = 0;

  constructor(options: {
    runId: string;
    limits: RunLimits;
    clock: Clock;
    gateway: RunGateway;
    compileCache: CompileCache;
    onOutput?: (text: string) => void;
  }) {
    this.runId = options.runId;
    this.limits = options.limits;
    this.clock = options.clock;
    this.gateway = options.gateway;
    this.compileCache = options.compileCache;
    this.onOutput = options.onOutput;
    this.startedAt = performance.now();
    this.deadline = this.startedAt + options.limits.timeoutMs;
  }
}

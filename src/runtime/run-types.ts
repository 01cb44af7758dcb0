/** Shapes shared by both ways of running a script (inline and worker isolation). */
import type { RunFailure } from "../errors.js";
import type { Actor } from "../policy/types.js";
import type { RunLimits } from "../lua/limits.js";
import type { ModuleOpener } from "../lua/sandbox.js";
import type { StoreStats } from "../store/store.js";

/** Per-store counters, as `host.metrics()` and `luastore run --stats` report them. */
export interface StoreMetrics extends StoreStats {
  id: string;
  kind: string;
  /** Calls refused by policy. */
  denied: number;
  /** Failed calls by error kind (denials included). */
  errors: Record<string, number>;
}

export interface RunStats {
  /** Lua VM instructions executed (to within the hook period). */
  instructions: number;
  /** Wall-clock milliseconds from start to end of the run. */
  wallMs: number;
  /** Store operations made (store.get and handle methods). */
  storeOps: number;
  /** Handles the host released because the run did not. */
  autoReleased: number;
  /**
   * Peak memory of the run's worker in bytes (V8 heap plus ArrayBuffers, sampled during the run
   * and at its end); worker isolation only.
   */
  peakMemoryBytes?: number;
}

export interface RunResult {
  runId: string;
  /** True when the script finished without error. */
  ok: boolean;
  /** The script's return values, decoded (functions and other non-values as descriptive strings). */
  values: unknown[];
  /** Everything the script printed. */
  output: string;
  /** Why the run failed, when it did. */
  error?: RunFailure;
  stats: RunStats;
}

export interface RunOptions {
  /** Who runs the script; policies decide what it may do. */
  actor: Actor;
  /** Name in error messages and tracebacks. @default "=script" */
  chunkName?: string;
  /** Values passed to the chunk as `...`. */
  args?: unknown[];
  /** Per-run limits over the host's. */
  limits?: Partial<RunLimits>;
  /** Called with each printed line as it is printed. */
  onOutput?: (text: string) => void;
  /**
   * Extra host modules for this run only, by name (used by the test harness for `test`).
   * Trusted code: an opener runs with full access to the run's gateway. JS functions cannot
   * cross into a worker: a host with `isolation: "worker"` refuses this option (OptionsError).
   */
  modules?: ReadonlyMap<string, ModuleOpener>;
}

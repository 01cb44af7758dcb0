/** Shapes shared by every way of running a script (inline now, worker later). */
import type { RunFailure } from "../errors.js";
import type { Actor } from "../policy/types.js";
import type { RunLimits } from "../lua/limits.js";
import type { ModuleOpener } from "../lua/sandbox.js";

export interface RunStats {
  /** Lua VM instructions executed (to within the hook period). */
  instructions: number;
  /** Wall-clock milliseconds from start to end of the run. */
  wallMs: number;
  /** Store operations made (store.get and handle methods). */
  storeOps: number;
  /** Handles the host released because the run did not. */
  autoReleased: number;
  /** Peak heap of the run's worker in bytes, where measurable (worker isolation). */
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
   * Trusted code: an opener runs with full access to the run's gateway.
   */
  modules?: ReadonlyMap<string, ModuleOpener>;
}

/**
 * Per-run limits: defaults, validation at the edge, and merging of host and per-run values.
 * Each exceeded limit ends the run with its own error kind, which `pcall` cannot catch:
 * Timeout, InstructionLimit, MemoryLimit, StringLimit, StoreOpsLimit, OutputLimit.
 */
import { OptionsError } from "../errors.js";

export interface RunLimits {
  /** Lua VM instructions one run may execute (coroutines included). InstructionLimit. @default 50_000_000 */
  maxInstructions: number;
  /**
   * Wall-clock milliseconds one run may take, sleeps and store waits included (queueing for a
   * worker is not). Timeout; in worker isolation a run stuck in one library call is stopped by
   * terminating its worker shortly after. @default 5000
   */
  timeoutMs: number;
  /** Store operations one run may make. StoreOpsLimit. @default 1_000_000 */
  maxStoreOps: number;
  /** Bytes one run may print. OutputLimit. @default 1 MiB */
  maxOutputBytes: number;
  /**
   * Largest single string a script may build, in bytes: `..`, `string.rep`, `string.format`,
   * `string.gsub`, `table.concat` and every other library function that builds a string.
   * StringLimit. @default 16 MiB
   */
  maxStringBytes: number;
  /**
   * Memory of the worker that runs the script, in MiB: V8 heap plus ArrayBuffers (strings),
   * the worker's own baseline (~15 MiB) included. MemoryLimit. The host's value is each worker's
   * heap limit; a run may lower it, not raise it. Worker isolation only (inline runs share the
   * host's heap). @default 256
   */
  maxMemoryMb: number;
  /**
   * Bytes one store call may carry, its request (keys, values, metadata) and its answer alike,
   * so that no single call can move more than this through a worker's channel or onto the
   * Lua stack. In worker isolation also at most an eighth of `maxMemoryMb` (see
   * {@link callBytesFor}). Refused as `nil, err` of kind Invalid. @default 32 MiB
   */
  maxCallBytes: number;
  /**
   * Store handles one run may hold at once, over every store. `store.get` past it answers
   * `nil, err` of kind RateLimited (the run's own doing: release a handle first), so one run
   * cannot hold a whole pool (keep it below every `pool.max`; the default is an eighth of the
   * default pool). @default 8
   */
  maxHandles: number;
}

export const DEFAULT_LIMITS: Readonly<RunLimits> = Object.freeze({
  maxInstructions: 50_000_000,
  timeoutMs: 5_000,
  maxStoreOps: 1_000_000,
  maxOutputBytes: 1 << 20,
  maxStringBytes: 16 << 20,
  maxMemoryMb: 256,
  maxCallBytes: 32 << 20,
  maxHandles: 8,
});

const BOUNDS: Record<keyof RunLimits, [min: number, max: number]> = {
  maxInstructions: [1, 1e12],
  timeoutMs: [1, 24 * 3600 * 1000],
  maxStoreOps: [0, 1e12],
  maxOutputBytes: [0, 1 << 30],
  maxStringBytes: [16, 1 << 30],
  maxMemoryMb: [32, 64 * 1024],
  maxCallBytes: [1024, 1 << 30],
  maxHandles: [1, 1e6],
};

/**
 * The bytes one store call may carry in a worker whose memory limit is `memoryMb`: a call's
 * bytes exist several times over while it is encoded, copied through the channel and decoded,
 * so an eighth of the limit keeps one call well inside it (64 MiB: 8 MiB; 256 MiB: 32 MiB).
 */
export function callBytesFor(limits: RunLimits, memoryMb: number): number {
  return Math.min(limits.maxCallBytes, Math.floor((Math.min(limits.maxMemoryMb, memoryMb) * 1024 * 1024) / 8));
}

/** Validates a partial set of limits (from host options, run options or CLI flags). */
export function validateLimits(partial: Partial<RunLimits> | undefined, where: string): Partial<RunLimits> {
  if (partial === undefined) return {};
  if (typeof partial !== "object" || partial === null) throw new OptionsError(`${where}: limits must be an object`);
  const out: Partial<RunLimits> = {};
  for (const [name, value] of Object.entries(partial)) {
    if (!(name in BOUNDS)) {
      throw new OptionsError(`${where}: unknown limit '${name}' (known: ${Object.keys(BOUNDS).join(", ")})`);
    }
    if (value === undefined) continue;
    const [min, max] = BOUNDS[name as keyof RunLimits];
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      throw new OptionsError(`${where}: limit '${name}' must be a number from ${min} to ${max}, got ${String(value)}`);
    }
    out[name as keyof RunLimits] = value;
  }
  return out;
}

/** Host limits over defaults, then per-run limits over those. */
export function resolveLimits(...layers: (Partial<RunLimits> | undefined)[]): RunLimits {
  const limits: RunLimits = { ...DEFAULT_LIMITS };
  for (const layer of layers) if (layer) Object.assign(limits, layer);
  return limits;
}

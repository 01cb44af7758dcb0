/**
 * The Host: a validated registry made into stores and pools, a compiled policy set, and
 * runs. Data flows one way: YAML → validated config → Host → a run → Lua.
 *
 * Two isolation modes (per host):
 * - `worker` (default): scripts run in a pool of worker_threads with heap limits, watched by a
 *   watchdog. Each worker holds the compiled policies and runs the trusted side of its runs
 *   (policy with the actor the host sent, pools and counters in shared memory, audit records in
 *   a shared ring) and opens SQLite files itself; the other stores live in a trusted store
 *   thread that answers the workers' calls over shared memory (src/runtime/worker/lua-worker.ts,
 *   src/runtime/store-thread/store-thread.ts).
 * - `inline`: scripts run on the host thread, next to the stores. For trusted scripts and
 *   tests: the heap limit and the watchdog need a worker.
 */
import { availableParallelism } from "node:os";
import { byteStringFromText } from "./bytes.js";
import { encodeValue } from "./codec/msgpack.js";
import { systemClock, type Clock } from "./clock.js";
import { HostClosedError, OptionsError, StoreError, ErrorKind } from "./errors.js";
import { resolveLimits, validateLimits, type RunLimits } from "./lua/limits.js";
import { CompileCache, DEFAULT_COMPILE_CACHE_BYTES } from "./lua/compile-cache.js";
import type { ModuleOpener } from "./lua/sandbox.js";
import type { PoolStats } from "./pool/handle-pool.js";
import { loadPolicies } from "./policy/index.js";
import type { Actor, PolicyDocument, PolicyEngine } from "./policy/types.js";
import { loadRegistry } from "./registry/index.js";
import type { RegistryConfig, RegistryDocument, StoreConfig } from "./registry/types.js";
import { AuditLog, type AuditOptions } from "./runtime/audit.js";
import { createBell } from "./runtime/threads/channel.js";
import { runInline } from "./runtime/inline.js";
import { LocalGateway, type LocalStoreSlot } from "./runtime/local-gateway.js";
import { RemoteStore } from "./runtime/store-thread/remote-store.js";
import type { RunOptions, RunResult, StoreMetrics } from "./runtime/run-types.js";
import { scriptModules } from "./runtime/script-modules.js";
import { closeStoreSlots, createStoreSlots, poolStats, storeMetrics } from "./runtime/store-slots.js";
import { createSharedCounters, SharedCounters } from "./runtime/worker/shared-counters.js";
import { StoreThreadClient } from "./runtime/store-thread/store-thread-client.js";
import { WorkerPool, type WorkerPoolStats } from "./runtime/worker/worker-pool.js";
import { HostStore } from "./host-store.js";
import type { MemoryStoreConfig } from "./registry/types.js";
import { createZone, type ZoneStore } from "./store/zone/index.js";
import { servedByStoreThread } from "./runtime/threads/store-routes.js";

export type { StoreMetrics } from "./runtime/run-types.js";

/** Where a host runs scripts: in worker threads (isolated) or on the host thread. */
export type Isolation = "worker" | "inline";

export interface HostOptions {
  /** Path to registry.yaml, or registry documents as objects. */
  registry: string | RegistryDocument | readonly RegistryDocument[];
  /** Policy directory or file path, or policy documents as objects. */
  policies: string | PolicyDocument | readonly PolicyDocument[];
  /** Limits for every run; a run may override them. Defaults: see DEFAULT_LIMITS. */
  limits?: Partial<RunLimits>;
  /** Where time comes from (stores' TTLs, `time.now`, `time.sleep`). @default systemClock */
  clock?: Clock;
  /** Extra Lua modules scripts may `require`, by name → Lua source. */
  modules?: Readonly<Record<string, string>>;
  /** Start stores' periodic sweep timers. @default true */
  sweepTimers?: boolean;
  /** Record every policy decision as JSON lines (file) or to a callback. Off by default. */
  audit?: AuditOptions;
  /**
   * `worker`: scripts run in worker threads with a heap limit and a watchdog, stores in a
   * trusted store thread. `inline`: scripts run on this thread (trusted scripts, tests).
   * @default "worker"
   */
  isolation?: Isolation;
  /** Worker isolation: Lua worker threads (runs in parallel). @default os.availableParallelism() */
  workers?: number;
  /**
   * Worker isolation: runs that may wait for a free worker; a run beyond that fails at once
   * with Unavailable (retryable) in its result. @default 1000
   */
  maxQueue?: number;
  /**
   * Worker isolation: how long after a run's wall-clock deadline the watchdog terminates a
   * worker that did not stop by itself (a library call that never reaches the hook). @default 50
   */
  watchdogGraceMs?: number;
  /**
   * Bytes of Lua source whose compiled form each thread keeps (the host's for inline runs, each
   * worker's), so a script or configured module is parsed once and later runs only instantiate
   * it. Least recently used chunks go first; 0 turns the cache off. @default 16 MiB
   */
  compileCacheBytes?: number;
  /**
   * Worker isolation, Linux: the nice value (0–19) of the Lua worker threads, which scheduling
   * weighs against the host's threads and every other process. Above 0, a machine short of
   * cores gives the host thread (the watchdog) and the store thread the CPU first, at the cost
   * of the workers' share. By default 5 when some store in the registry is served by the store
   * thread (store.redis, a SQLite `:memory:` database, a memory store with a quota or a
   * snapshot), so the thread those workers wait on is never starved by them, else 0: calls to
   * shared-memory zones and SQLite files wait on no other thread. @default 5 or 0, as above
   */
  workerNice?: number;
}

const DEFAULT_MAX_QUEUE = 1000;
/**
 * The workers' nice value when they wait on the store thread. Measured on 2 busy cores (store
 * calls over the channel): from one worker 10x faster than at equal priority, from four 3-6x.
 */
const STORE_THREAD_NICE = 5;
const DEFAULT_GRACE_MS = 50;

function normalizeActor(actor: Actor | undefined): Actor {
  if (actor === undefined || typeof actor !== "object" || actor === null) {
    throw new OptionsError("run: options.actor { id, meta } is required");
  }
  if (typeof actor.id !== "string" || actor.id.length === 0) throw new OptionsError("run: actor.id must be a non-empty string");
  const meta: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(actor.meta ?? {})) {
    if (typeof v === "string") meta[k] = byteStringFromText(v);
    else if (typeof v === "number" || typeof v === "boolean") meta[k] = v;
    else throw new OptionsError(`run: actor.meta.${k} must be a string, number or boolean`);
  }
  return { id: byteStringFromText(actor.id), meta };
}

function positiveInteger(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new OptionsError(`createHost: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function niceValue(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 19) {
    throw new OptionsError(`createHost: workerNice must be an integer from 0 to 19, got ${String(value)}`);
  }
  return value;
}

/** Inline isolation: stores, pools and audit on this thread. */
interface InlineRuntime {
  kind: "inline";
  slots: Map<string, LocalStoreSlot>;
  modules: ReadonlyMap<string, ModuleOpener>;
  audit: AuditLog | null;
}

/** Worker isolation: the store thread, the Lua workers, and what this thread mirrors of them. */
interface WorkerRuntime {
  kind: "worker";
  storeThread: StoreThreadClient;
  pool: WorkerPool;
  /** The workers' pools and counters (shared-counters.ts), summed for pools() and metrics(). */
  counters: SharedCounters;
  audit: AuditLog | null;
  /** Per registry entry, the memory store's zone (made here; the host sweeps it), or null. */
  zones: (ZoneStore | null)[];
  stopWatchingClock: (() => void) | null;
}

export class Host {
  readonly registry: RegistryConfig;
  readonly policy: PolicyEngine;
  readonly clock: Clock;
  readonly limits: Readonly<RunLimits>;
  readonly isolation: Isolation;
  readonly #configs: ReadonlyMap<string, StoreConfig>;
  readonly #runtime: InlineRuntime | WorkerRuntime;
  /** Compiled chunks of inline runs (workers keep their own, of the same size). */
  readonly #compileCache: CompileCache;
  #runCounter = 0;
  #closed = false;

  constructor(options: HostOptions) {
    if (typeof options !== "object" || options === null) throw new OptionsError("createHost: options object required");
    const isolation = options.isolation ?? "worker";
    if (isolation !== "worker" && isolation !== "inline") {
      throw new OptionsError(`createHost: isolation must be "worker" or "inline", got ${String(isolation)}`);
    }
    this.isolation = isolation;
    this.clock = options.clock ?? systemClock;
    this.limits = resolveLimits(validateLimits(options.limits, "createHost"));
    this.registry = loadRegistry(options.registry);
    this.policy = loadPolicies(options.policies);
    this.#configs = new Map(this.registry.entries.map((c) => [c.id, c]));
    this.#compileCache = new CompileCache(positiveInteger(options.compileCacheBytes, "compileCacheBytes", DEFAULT_COMPILE_CACHE_BYTES, 0));
    const modules = scriptModules(options.modules);
    const sweepTimers = options.sweepTimers ?? true;
    if (isolation === "inline") {
      this.#runtime = {
        kind: "inline",
        slots: createStoreSlots(this.registry, { clock: this.clock, sweepTimers }),
        modules,
        audit: options.audit ? new AuditLog(options.audit) : null,
      };
    } else {
      this.#runtime = this.#startWorkers(options, sweepTimers);
    }
  }

  #startWorkers(options: HostOptions, sweepTimers: boolean): WorkerRuntime {
    const workers = positiveInteger(options.workers, "workers", Math.max(1, availableParallelism()), 1);
    const maxQueue = positiveInteger(options.maxQueue, "maxQueue", DEFAULT_MAX_QUEUE, 0);
    const graceMs = positiveInteger(options.watchdogGraceMs, "watchdogGraceMs", DEFAULT_GRACE_MS, 0);
    const compileCacheBytes = this.#compileCache.maxBytes;
    const bell = createBell();
    const counterBuffers = createSharedCounters(workers, this.registry.entries.length);
    const counters = new SharedCounters(counterBuffers);
    // A clock other than the system clock is mirrored into shared memory for the store thread
    // (TTLs) and the workers (time.now); its sleeps are taken here (see WorkerPool).
    let mirror: { clock: Clock; cell: SharedArrayBuffer; refresh: () => void } | null = null;
    let stopWatchingClock: (() => void) | null = null;
    if (this.clock !== systemClock) {
      const cell = new SharedArrayBuffer(8);
      const time = new Float64Array(cell);
      const clock = this.clock;
      const refresh = (): void => {
        time[0] = clock.now();
      };
      refresh();
      stopWatchingClock = clock.watch?.((now) => (time[0] = now)) ?? null;
      mirror = { clock, cell, refresh };
    }
    // Memory stores live in shared-memory zones that this thread, the store thread and every
    // worker map (a store with a quota or a snapshot stays in the store thread: the zone takes
    // neither yet).
    const zones = this.registry.entries.map((config) =>
      config.kind === "store.memory" && config.quota === undefined && config.snapshot === undefined
        ? createZone(config as MemoryStoreConfig, { clock: this.clock, sweepTimer: sweepTimers })
        : null,
    );
    const zoneBuffers = zones.map((z) => z?.buffer ?? null);
    const waitsOnStoreThread = this.registry.entries.some((config, i) => servedByStoreThread(config, zoneBuffers[i] ?? null));
    const nice = niceValue(options.workerNice, waitsOnStoreThread ? STORE_THREAD_NICE : 0);
    const storeThread = new StoreThreadClient({
      registry: this.registry,
      bell,
      clockCell: mirror?.cell ?? null,
      sweepTimers,
      zones: zoneBuffers,
    });
    // Workers write their records to shared rings; this thread drains them into the log.
    const audit = options.audit ? new AuditLog(options.audit) : null;
    const pool = new WorkerPool({
      size: workers,
      maxQueue,
      heapMb: this.limits.maxMemoryMb,
      graceMs,
      store: storeThread,
      bell,
      modules: { ...options.modules },
      clock: mirror,
      compileCacheBytes,
      nice,
      registry: this.registry,
      policies: options.policies,
      counters: { buffers: counterBuffers, view: counters },
      audit: audit?.write ?? null,
      zones: zoneBuffers,
      onWorkerGone: (threadId) => {
        for (const z of zones) z?.zone.threadExited(threadId);
      },
    });
    return { kind: "worker", storeThread, pool, counters, audit, zones, stopWatchingClock };
  }

  /**
   * Resolves when the host can serve runs: at once inline; in worker isolation when the store
   * thread has opened the stores (rejects with the StoreError that prevented it) and the Lua
   * workers have started. Runs made before are queued, not refused.
   */
  async ready(): Promise<void> {
    if (this.#runtime.kind === "worker") await Promise.all([this.#runtime.storeThread.ready, this.#runtime.pool.ready]);
  }

  /**
   * Runs a script and resolves to its result; script errors are in the result, not thrown.
   * In worker isolation a run that finds the queue full resolves at once with an Unavailable
   * (retryable) error.
   */
  async run(source: string | Uint8Array, options: RunOptions): Promise<RunResult> {
    if (this.#closed) throw new HostClosedError();
    const actor = normalizeActor(options?.actor);
    const limits = resolveLimits(this.limits, validateLimits(options.limits, "run"));
    const runId = `run-${++this.#runCounter}`;
    const chunkName = options.chunkName ?? "=script";
    const args = options.args ?? [];
    const rt = this.#runtime;
    if (rt.kind === "worker") {
      if (options.modules !== undefined) {
        throw new OptionsError("run: options.modules (host-side JS modules) needs a host with isolation \"inline\"");
      }
      // Refused here as inline refuses them (a CodecError), not after crossing to a worker.
      for (const arg of args) encodeValue(arg);
      return new Promise<RunResult>((resolve) => {
        rt.pool.submit({
          runId,
          actor,
          source,
          chunkName,
          args,
          limits,
          resolve,
          ...(options.onOutput ? { onOutput: options.onOutput } : {}),
        });
      });
    }
    const gateway = new LocalGateway(rt.slots, this.policy.bind(actor), {
      runId,
      maxHandles: limits.maxHandles,
      audit: rt.audit?.write ?? null,
      now: () => this.clock.now(),
      maxCallBytes: limits.maxCallBytes,
    });
    return runInline({
      runId,
      source,
      chunkName,
      args,
      limits,
      clock: this.clock,
      gateway,
      compileCache: this.#compileCache,
      modules: options.modules ? new Map([...rt.modules, ...options.modules]) : rt.modules,
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    });
  }

  /** Host-side access to a store, bypassing policy (for the platform itself). */
  store(id: string): HostStore {
    if (this.#closed) throw new HostClosedError();
    const config = this.#configs.get(id);
    if (config === undefined) throw new StoreError(ErrorKind.NOT_FOUND, `no store '${id}' in the registry`);
    const rt = this.#runtime;
    if (rt.kind === "inline") return new HostStore(rt.slots.get(id)!.store);
    const zone = rt.zones[this.registry.entries.indexOf(config)];
    if (zone !== undefined && zone !== null) return new HostStore(zone);
    const storeThread = rt.storeThread;
    return new HostStore(new RemoteStore(config, (storeId, method, args) => storeThread.call("store", [storeId, method, args])));
  }

  /** Pool statistics per registry entry (in worker isolation, summed over the workers' shared counters). */
  pools(): PoolStats[] {
    const rt = this.#runtime;
    if (rt.kind === "inline") return poolStats(rt.slots);
    return this.registry.entries.map((config, i) => rt.counters.poolStats(i, config.id, config.pool.max));
  }

  /**
   * Worker isolation: each Lua worker's state, runs, channel size and memory (inline: no
   * workers).
   */
  workers(): WorkerPoolStats {
    const rt = this.#runtime;
    if (rt.kind === "inline") return { workers: [] };
    return rt.pool.stats();
  }

  /** Per-store counters: hits, misses, sets, deletes, expired, evicted, denied, errors by kind, size, bytes. */
  async metrics(): Promise<StoreMetrics[]> {
    const rt = this.#runtime;
    if (rt.kind === "inline") return storeMetrics(rt.slots);
    // The store thread's stores give size, bytes and their own counters (calls made over the
    // channel and from host.store()); the workers' shared counters add their gateways' and the
    // counters of the stores they open themselves.
    const own = await rt.storeThread.call<StoreMetrics[]>("metrics");
    return own.map((m, i) => {
      const w = rt.counters.metrics(i);
      const errors = { ...m.errors };
      for (const [kind, n] of Object.entries(w.errors)) errors[kind] = (errors[kind] ?? 0) + n;
      return {
        ...m,
        hits: m.hits + w.hits,
        misses: m.misses + w.misses,
        sets: m.sets + w.sets,
        deletes: m.deletes + w.deletes,
        expired: m.expired + w.expired,
        evicted: m.evicted + w.evicted,
        denied: m.denied + w.denied,
        errors,
      };
    });
  }

  /**
   * Stops timers and closes stores; in worker isolation also terminates the workers (runs in
   * progress end with Canceled) and the store thread. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const rt = this.#runtime;
    if (rt.kind === "inline") {
      await closeStoreSlots(rt.slots);
      rt.audit?.close();
      return;
    }
    rt.stopWatchingClock?.();
    await rt.pool.close();
    await rt.storeThread.close();
    for (const z of rt.zones) z?.close();
    rt.audit?.close();
  }
}

/** Loads registry and policies (throwing RegistryError / PolicyError on any problem) and builds a Host. */
export function createHost(options: HostOptions): Host {
  return new Host(options);
}

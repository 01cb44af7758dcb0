/**
 * A Lua worker: a worker_thread that runs one script at a time, each in a fresh sandbox, with
 * the trusted side of its runs beside it: the compiled policy set, a {@link LocalGateway} per
 * run bound to the actor the host sent with the run, the pools and counters in the host's
 * shared counters (shared-counters.ts), and the audit ring (audit-ring.ts). Its store calls go
 * straight to the store where it can: a memory store's shared-memory zone (src/store/zone),
 * which the host made and every worker attaches to, and a store.sql file, through a connection
 * of its own; the others over its channel to the store thread (see {@link storeInWorker}).
 *
 * The host limits its heap (resourceLimits) and terminates it when a run passes its deadline;
 * inside, the count hook and the string-limit hooks measure memory (V8 heap plus ArrayBuffers,
 * which the heap limit does not count) and stop the run cleanly at the limit.
 */
import { resolveLimits } from "../../lua/limits.js";
import { RunContext } from "../../lua/run-context.js";
import { warmUpThread } from "../../lua/sandbox.js";
import type { RunGateway } from "../../lua/gateway.js";
import { CompileCache } from "../../lua/compile-cache.js";
import { loadPolicies } from "../../policy/index.js";
import type { MemoryStoreConfig, StoreConfig } from "../../registry/types.js";
import { attachZone } from "../../store/zone/index.js";
import type { Store } from "../../store/store.js";
import { AuditRingWriter } from "./audit-ring.js";
import { LazyStore } from "../lazy-store.js";
import { LocalGateway, type StoreSlot } from "../local-gateway.js";
import { SharedCounters } from "./shared-counters.js";
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parentPort, workerData } from "node:worker_threads";
import { systemClock, type Clock } from "../../clock.js";
import { ErrorKind } from "../../errors.js";
import { killRun } from "../../lua/control.js";
import { runOf } from "../../lua/internals.js";
import type { lua_State } from "fengari";
import { ChannelClient, ChannelStore } from "./channel-store.js";
import { runInline } from "../inline.js";
import type { RunResult } from "../run-types.js";
import { scriptModules } from "../script-modules.js";
import type { LuaWorkerData, WorkerCommand, WorkerEvent } from "../threads/thread-messages.js";
import { storeInWorker } from "../threads/store-routes.js";

const MiB = 1 << 20;

/**
 * The worker's nice value (Linux: a thread's nice value is its own), as the host chose it (see
 * HostOptions.workerNice): below the host's threads when runs wait on the store thread, so that
 * on a machine with fewer free cores than busy threads the thread every worker waits on, and the
 * host thread (the watchdog), get the CPU first.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0) return;
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // Not Linux, or not allowed: equal priority.
  }
}
const data = workerData as LuaWorkerData;
lowerPriority(data.nice);
const compileCache = new CompileCache(data.compileCacheBytes);
const port = parentPort!;
const post = (event: WorkerEvent): void => port.postMessage(event);
const client = new ChannelClient(data.channel, data.bell, data.port);
const modules = scriptModules(data.modules);
const policy = loadPolicies(data.policies);
const audit = data.auditRing === null ? null : new AuditRingWriter(data.auditRing, () => post({ type: "audit" }));

// A full collection before declaring a run over its memory limit: garbage is not the run's.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

function measureMemory(): number {
  const h = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & { external_memory?: number };
  return h.used_heap_size + (h.external_memory ?? 0);
}

/**
 * After a run, memory above what the worker held after its last collection by more than this
 * is garbage the run left (its strings, its large messages): it is collected before the next
 * run starts, so that no run is measured, or stopped by the watchdog, for another's memory.
 */
const SETTLE_ABOVE = 16 * MiB;
/** Memory after the last collection between runs (or at start-up). */
let settledMemory = measureMemory();

/** Collects what the run left, when it left enough to be worth a full collection. */
function settleAfterRun(): void {
  let used = measureMemory();
  if (used > settledMemory + SETTLE_ABOVE) {
    collectGarbage();
    used = settledMemory = measureMemory();
  } else if (used < settledMemory) {
    // V8 collected by itself meanwhile. (Never raised without a collection: garbage left by
    // runs below the threshold must not lift it run after run.)
    settledMemory = used;
  }
  client.publishMemory(used, 0);
}

/** Memory right after the last full collection of this run (live data then). */
let liveAfterGc = 0;
/** Garbage that must have piled up since that collection before another one is worth it. */
const GC_WORTH = 8 * MiB;

function memoryProbe(L: lua_State): void {
  const run = runOf(L);
  run.hooksSinceProbe = 0;
  const limit = run.limits.maxMemoryMb * MiB;
  let used = measureMemory();
  if (used > limit && used - liveAfterGc > GC_WORTH) {
    collectGarbage();
    used = liveAfterGc = measureMemory();
  }
  if (used > run.peakMemoryBytes) run.peakMemoryBytes = used;
  client.publishMemory(used, run.peakMemoryBytes);
  if (used > limit) killRun(L, ErrorKind.MEMORY_LIMIT, `memory limit exceeded (${run.limits.maxMemoryMb} MiB)`);
}

/**
 * Store calls that moved this many bytes (requests and answers) since the last probe trigger
 * one: a single large call at once, small ones every so often (a probe costs about a
 * microsecond, a small call less).
 */
const PROBE_AFTER_BYTES = 256 * 1024;
let movedAtProbe = 0;

/** The gateway of the run in progress (its calls to the zones and SQLite move bytes outside the channel). */
let runGateway: LocalGateway | null = null;

function afterStoreCall(L: lua_State): void {
  const moved = client.movedBytes + (runGateway?.movedBytes ?? 0);
  if (moved - movedAtProbe < PROBE_AFTER_BYTES) return;
  movedAtProbe = moved;
  memoryProbe(L);
}

// time.sleep on a host clock that is not the system clock: the host sleeps on it and wakes us.
const sleepers = new Map<number, () => void>();
let sleepIds = 0;
const clock: Clock =
  data.clockCell === null
    ? systemClock
    : {
        now: ((time) => () => time[0]!)(new Float64Array(data.clockCell)),
        sleep(ms) {
          const id = ++sleepIds;
          return new Promise<void>((resolve) => {
            sleepers.set(id, resolve);
            post({ type: "sleep", id, ms });
          });
        },
      };


const counters = new SharedCounters(data.counters);
/** The registry's entries made real in this worker, in registry order. */
const slots = new Map<string, StoreSlot>();
data.registry.entries.forEach((config, index) => {
  const overChannel = new ChannelStore(client, config, index);
  const zone = data.zones[index] ?? null;
  const store: Store = zone !== null
    ? attachZone(zone, config as MemoryStoreConfig, { clock })
    : storeInWorker(config)
    ? new LazyStore(config as Extract<StoreConfig, { kind: "store.sql" | "store.redis" }>, {
        clock,
        sweepTimers: false,
        baseDir: data.registry.baseDir,
        counters: counters.storeCounters(data.workerSlot, index),
        // The store thread opens the file too (once for the host): its timer sweeps it, and
        // host.metrics() reads its size there.
        onOpen: () => {
          try {
            overChannel.size();
          } catch {
            // It reports its own failure to open when the host uses the store.
          }
        },
      })
    : overChannel;
  slots.set(config.id, {
    store,
    pool: counters.pool(data.workerSlot, index, config.id, config.pool.max),
    config,
    counters: counters.gatewayCounters(data.workerSlot, index),
  });
});

async function execute(cmd: Extract<WorkerCommand, { type: "run" }>): Promise<RunResult> {
  const limits = { ...cmd.limits, maxMemoryMb: Math.min(cmd.limits.maxMemoryMb, data.heapMb) };
  liveAfterGc = 0;
  client.publishMemory(measureMemory(), 0);
  // The actor comes from the host's run message; the gateway holds it, and no Lua code reaches the gateway.
  const gateway = new LocalGateway(slots, policy.bind(cmd.actor), {
    runId: cmd.runId,
    audit: audit?.write ?? null,
    now: () => clock.now(),
    maxCallBytes: limits.maxCallBytes,
    maxHandles: limits.maxHandles,
  });
  runGateway = gateway;
  movedAtProbe = client.movedBytes;
  const result = await runInline({
    runId: cmd.runId,
    source: cmd.source,
    chunkName: cmd.chunkName,
    args: cmd.args,
    limits,
    clock,
    gateway,
    compileCache,
    modules,
    memoryProbe,
    afterStoreCall,
    ...(cmd.streamOutput ? { onOutput: (text: string) => post({ type: "output", runSeq: cmd.runSeq, text }) } : {}),
  });
  result.stats.peakMemoryBytes = Math.max(result.stats.peakMemoryBytes ?? 0, measureMemory());
  sleepers.clear();
  return result;
}

/** Runs a command's script and reports it, then settles the worker for the next run. */
async function serve(cmd: Extract<WorkerCommand, { type: "run" }>): Promise<void> {
  let result: RunResult;
  try {
    result = await execute(cmd);
  } catch (err) {
    result = {
      runId: cmd.runId,
      ok: false,
      values: [],
      output: "",
      error: { kind: ErrorKind.INTERNAL, message: `worker failed: ${err instanceof Error ? err.message : String(err)}`, traceback: "", retryable: false },
      stats: { instructions: 0, wallMs: 0, storeOps: 0, autoReleased: 0 },
    };
  }
  // Settled before the result goes out: the host may hand this worker its next run at once.
  settleAfterRun();
  post({ type: "result", runSeq: cmd.runSeq, result });
}

port.on("message", (cmd: WorkerCommand) => {
  if (cmd.type === "wake") {
    sleepers.get(cmd.id)?.();
    sleepers.delete(cmd.id);
    return;
  }
  void serve(cmd);
});

// Build the sandbox template and warm the VM before the first run (no store call is made). The
// script is the host's own: no run's limits apply, and a deadline of a run's length could pass
// while a machine short of cores starts several workers at once.
warmUpThread(
  new RunContext({
    runId: "warm-up",
    limits: resolveLimits({ timeoutMs: 24 * 3600 * 1000 }),
    clock,
    gateway: undefined as unknown as RunGateway,
    compileCache: new CompileCache(0),
  }),
);
post({ type: "ready" });

/**
 * The Lua workers of a worker-isolated host: a fixed number of worker_threads, each with a heap
 * limit and its own channel to the store thread, reused run after run (a fresh Lua state per
 * run). Runs wait in a bounded queue when every worker is busy; past the bound a run fails at
 * once with Unavailable (retryable).
 *
 * The watchdog: a run's worker stops the run itself at its deadline and memory limit (count
 * hook), but a single library call (a catastrophic pattern) never reaches the hook. So the host
 * terminates a worker still busy `graceMs` after the run's deadline (Timeout), or whose
 * published memory is past the run's limit (MemoryLimit), as well as one that V8 stopped at its
 * heap limit. Once the worker is gone (terminate() settled, so it can no longer write shared
 * memory), the host has the zones recover a lock or operation it left (src/store/zone), gives
 * the handles it held back to their pools (shared-counters.ts), takes the audit records it left
 * in its ring, reports the run, and starts a replacement in the same worker slot.
 */
import { MessageChannel, Worker } from "node:worker_threads";
import type { Clock } from "../../clock.js";
import { ErrorKind, HostClosedError, type RunFailure } from "../../errors.js";
import { callBytesFor, type RunLimits } from "../../lua/limits.js";
import type { Actor, PolicyDocument } from "../../policy/types.js";
import type { RegistryConfig } from "../../registry/types.js";
import type { AuditSink } from "../audit.js";
import { AuditRingReader, createAuditRing } from "./audit-ring.js";
import { createChannelBuffer, MemSlot } from "../threads/channel.js";
import type { SharedCounters, SharedCountersBuffers } from "./shared-counters.js";
import type { RunResult, RunStats } from "../run-types.js";
import type { StoreThreadClient } from "../store-thread/store-thread-client.js";
import type { LuaWorkerData, WorkerCommand, WorkerEvent } from "../threads/thread-messages.js";
import { runtimeEntry } from "../threads/worker-files.js";

const MiB = 1 << 20;
/** How often the watchdog reads the busy workers' memory. */
const MEMORY_WATCH_MS = 25;
/** Memory a worker may pass its run's limit by before the watchdog steps in (its own probe acts first). */
const MEMORY_SLACK = 32 * MiB;
/**
 * Lua stack slots in a worker (fengari's default, like C Lua's, is 1 000 000). A fengari stack
 * slot and call frame cost far more than C Lua's: a full default stack takes several hundred
 * MiB of heap, so deep recursion would end as MemoryLimit rather than "stack overflow". This
 * allows about 60 000 nested Lua calls in well under 100 MiB.
 */
const WORKER_MAX_STACK = 200_000;

/** The environment of a worker: fengari reads its configuration from FENGARICONF when loaded. */
function workerEnv(): NodeJS.ProcessEnv {
  let conf: Record<string, unknown> = {};
  try {
    conf = JSON.parse(process.env.FENGARICONF ?? "{}") as Record<string, unknown>;
  } catch {
    // fengari itself would fail on it; the worker reports that.
  }
  return { ...process.env, FENGARICONF: JSON.stringify({ ...conf, LUAI_MAXSTACK: WORKER_MAX_STACK }) };
}

export interface RunJob {
  runId: string;
  actor: Actor;
  source: string | Uint8Array;
  chunkName: string;
  args: unknown[];
  limits: RunLimits;
  onOutput?: (text: string) => void;
  resolve: (result: RunResult) => void;
}

interface PoolWorker {
  worker: Worker;
  /** Its thread's id (the zones' token for it), kept: the Worker object forgets it at exit. */
  threadId: number;
  /** Its region of the shared counters and its audit ring: taken over by its replacement. */
  slot: number;
  channel: number;
  sab: SharedArrayBuffer;
  memory: Float64Array;
  /** Runs this worker finished. */
  runs: number;
  state: "starting" | "idle" | "busy" | "dead";
  job: RunJob | null;
  runSeq: number;
  startedAt: number;
  deadline: ReturnType<typeof setTimeout> | null;
  /** Cancels host-clock sleeps of the current run when its worker is stopped. */
  sleeps: AbortController | null;
  /** Why V8 or Node stopped the worker, when it did. */
  crash: Error | null;
}

/** What `host.workers()` reports of each Lua worker. */
export interface WorkerStats {
  state: "starting" | "idle" | "busy";
  /** Runs this worker has finished. */
  runs: number;
  /** Bytes of its channel's shared buffer. */
  channelBytes: number;
  /** Its memory (V8 heap + ArrayBuffers) as it last published it. */
  memoryBytes: number;
}

/** Counters of the pool as a whole. */
export interface WorkerPoolStats {
  workers: WorkerStats[];
}

export interface WorkerPoolOptions {
  size: number;
  maxQueue: number;
  /** Heap limit of each worker in MiB (the host's maxMemoryMb). */
  heapMb: number;
  graceMs: number;
  store: StoreThreadClient;
  bell: SharedArrayBuffer;
  modules: Record<string, string>;
  /** The mirrored host clock (null: the system clock, which workers read themselves). */
  clock: { clock: Clock; cell: SharedArrayBuffer; refresh: () => void } | null;
  /** Each worker's compile cache, in bytes of source. */
  compileCacheBytes: number;
  /** The workers' nice value (HostOptions.workerNice, resolved). */
  nice: number;
  registry: RegistryConfig;
  policies: string | PolicyDocument | readonly PolicyDocument[];
  /** The host's shared counters, with a worker slot for each of the `size` workers. */
  counters: { buffers: SharedCountersBuffers; view: SharedCounters };
  /** Receives the workers' audit records (null: auditing is off). */
  audit: AuditSink | null;
  /** Per registry entry, the shared-memory zone of a memory store (null: none). */
  zones: (SharedArrayBuffer | null)[];
  /**
   * Called with a worker's threadId once it is gone: the zones recover its liveness slot and a
   * lock it held (see src/store/zone).
   */
  onWorkerGone: (threadId: number) => void;
}

function failedResult(runId: string, failure: RunFailure, stats?: Partial<RunStats>): RunResult {
  return {
    runId,
    ok: false,
    values: [],
    output: "",
    error: failure,
    stats: { instructions: 0, wallMs: 0, storeOps: 0, autoReleased: 0, ...stats },
  };
}

export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #workers = new Set<PoolWorker>();
  readonly #idle: PoolWorker[] = [];
  #queue: RunJob[] = [];
  #queueHead = 0;
  #channelIds = 0;
  #runSeqs = 0;
  #busy = 0;
  #memoryWatch: ReturnType<typeof setInterval> | null = null;
  #closed = false;
  /** Workers that died before they were ready, in a row. */
  #startFailures = 0;
  /** Set when workers cannot start at all: every run fails with it. */
  #broken: string | null = null;
  /** Each worker slot's audit ring (empty when auditing is off). */
  readonly #auditRings: { sab: SharedArrayBuffer; reader: AuditRingReader }[] = [];

  /** Resolves once the first `size` workers are ready (or could not start). */
  readonly ready: Promise<void>;
  #markReady: () => void = () => {};
  #readyWorkers = 0;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.ready = new Promise<void>((resolve) => (this.#markReady = resolve));
    for (let i = 0; i < options.size; i++) {
      if (options.audit !== null) {
        const sab = createAuditRing();
        this.#auditRings.push({ sab, reader: new AuditRingReader(sab) });
      }
      this.#spawn(i);
    }
  }

  /** Hands the audit records worker slot `slot` has published so far to the host's sink. */
  #drainAudit(slot: number): void {
    const sink = this.#options.audit;
    if (sink !== null) this.#auditRings[slot]?.reader.drain(sink);
  }

  /** Runs waiting for a worker. */
  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** Hands a run to an idle worker, queues it, or refuses it (queue full) with Unavailable. */
  submit(job: RunJob): void {
    if (this.#closed) throw new HostClosedError();
    if (this.#broken !== null) {
      job.resolve(failedResult(job.runId, { kind: ErrorKind.INTERNAL, message: this.#broken, traceback: "", retryable: false }));
      return;
    }
    const worker = this.#idle.pop();
    if (worker !== undefined) return this.#dispatch(worker, job);
    if (this.queued >= this.#options.maxQueue) {
      job.resolve(
        failedResult(job.runId, {
          kind: ErrorKind.UNAVAILABLE,
          message: `run queue full: ${this.queued} runs are waiting for ${this.#options.size} workers`,
          traceback: "",
          retryable: true,
        }),
      );
      return;
    }
    this.#queue.push(job);
  }

  #spawn(slot: number): void {
    const o = this.#options;
    const sab = createChannelBuffer();
    const channel = ++this.#channelIds;
    // Large messages go over this port (see channel.ts): one end to each side.
    const { port1, port2 } = new MessageChannel();
    o.store.send({ type: "open", channel, sab, port: port2 }, [port2]);
    const workerData: LuaWorkerData = {
      registry: o.registry,
      policies: o.policies,
      counters: o.counters.buffers,
      workerSlot: slot,
      auditRing: this.#auditRings[slot]?.sab ?? null,
      zones: o.zones,
      channel: sab,
      port: port1,
      bell: o.bell,
      clockCell: o.clock?.cell ?? null,
      modules: o.modules,
      heapMb: o.heapMb,
      compileCacheBytes: o.compileCacheBytes,
      nice: o.nice,
    };
    const worker = new Worker(runtimeEntry("lua-worker"), {
      workerData,
      transferList: [port1],
      env: workerEnv(),
      resourceLimits: { maxOldGenerationSizeMb: o.heapMb + 32, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
    });
    const w: PoolWorker = {
      worker,
      threadId: worker.threadId,
      slot,
      channel,
      sab,
      memory: new Float64Array(sab, 32, 4),
      runs: 0,
      state: "starting",
      job: null,
      runSeq: 0,
      startedAt: 0,
      deadline: null,
      sleeps: null,
      crash: null,
    };
    this.#workers.add(w);
    worker.on("message", (event: WorkerEvent) => this.#onEvent(w, event));
    worker.on("error", (err) => {
      w.crash = err;
    });
    worker.on("exit", () => {
      if (w.state === "dead") return;
      const oom = (w.crash as { code?: string } | null)?.code === "ERR_WORKER_OUT_OF_MEMORY";
      const limit = w.job?.limits.maxMemoryMb ?? o.heapMb;
      this.#stop(
        w,
        oom
          ? { kind: ErrorKind.MEMORY_LIMIT, message: `memory limit exceeded (${limit} MiB heap)` }
          : { kind: ErrorKind.INTERNAL, message: `worker stopped: ${w.crash?.message ?? "exited"}` },
      );
    });
  }

  #onEvent(w: PoolWorker, event: WorkerEvent): void {
    switch (event.type) {
      case "ready":
        this.#startFailures = 0;
        if (++this.#readyWorkers === this.#options.size) this.#markReady();
        if (w.state === "starting") this.#next(w);
        return;
      case "result": {
        if (w.state !== "busy" || event.runSeq !== w.runSeq || w.job === null) return;
        this.#finish(w);
        const job = w.job;
        w.job = null;
        w.runs++;
        // The worker collected the garbage of this run before it reported: the next run does not
        // pay for it.
        this.#next(w);
        this.#drainAudit(w.slot);
        job.resolve(event.result);
        return;
      }
      case "audit":
        this.#drainAudit(w.slot);
        return;
      case "output":
        if (event.runSeq === w.runSeq) w.job?.onOutput?.(event.text);
        return;
      case "sleep": {
        const clock = this.#options.clock;
        const signal = w.sleeps?.signal;
        if (clock === null || signal === undefined) return;
        clock.clock.sleep(event.ms, signal).then(
          () => {
            clock.refresh();
            if (w.state === "busy") w.worker.postMessage({ type: "wake", id: event.id } satisfies WorkerCommand);
          },
          () => {},
        );
        return;
      }
    }
  }

  /** Each worker's state, runs, channel size and memory. */
  stats(): WorkerPoolStats {
    const workers: WorkerStats[] = [];
    for (const w of this.#workers) {
      if (w.state === "dead") continue;
      workers.push({ state: w.state, runs: w.runs, channelBytes: w.sab.byteLength, memoryBytes: w.memory[MemSlot.NOW]! });
    }
    return { workers };
  }

  /** Gives an idle worker the next queued run, or parks it. */
  #next(w: PoolWorker): void {
    w.state = "idle";
    if (this.#closed) return;
    if (this.#queueHead < this.#queue.length) {
      const job = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as RunJob;
      if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#queueHead);
        this.#queueHead = 0;
      }
      this.#dispatch(w, job);
      return;
    }
    this.#idle.push(w);
  }

  #dispatch(w: PoolWorker, job: RunJob): void {
    const o = this.#options;
    w.state = "busy";
    w.job = job;
    w.runSeq = ++this.#runSeqs;
    w.sleeps = o.clock !== null ? new AbortController() : null;
    o.clock?.refresh();
    // The worker and the store thread hold the run to the same cap on one call's bytes.
    const limits = { ...job.limits, maxCallBytes: callBytesFor(job.limits, o.heapMb) };
    const command: WorkerCommand = {
      type: "run",
      runSeq: w.runSeq,
      runId: job.runId,
      actor: job.actor,
      source: job.source,
      chunkName: job.chunkName,
      args: job.args,
      limits,
      streamOutput: job.onOutput !== undefined,
    };
    w.worker.postMessage(command);
    w.startedAt = performance.now();
    w.deadline = setTimeout(() => {
      this.#stop(w, { kind: ErrorKind.TIMEOUT, message: `timeout: run exceeded ${job.limits.timeoutMs} ms (worker stopped)` });
    }, job.limits.timeoutMs + o.graceMs);
    if (++this.#busy === 1) this.#memoryWatch = setInterval(() => this.#watchMemory(), MEMORY_WATCH_MS);
  }

  /** The run of `w` is over (result, or stopped): timers off. */
  #finish(w: PoolWorker): void {
    if (w.deadline !== null) clearTimeout(w.deadline);
    w.deadline = null;
    w.sleeps?.abort();
    w.sleeps = null;
    if (--this.#busy === 0 && this.#memoryWatch !== null) {
      clearInterval(this.#memoryWatch);
      this.#memoryWatch = null;
    }
  }

  #watchMemory(): void {
    for (const w of this.#workers) {
      if (w.state !== "busy" || w.job === null) continue;
      const limit = Math.min(w.job.limits.maxMemoryMb, this.#options.heapMb) * MiB;
      if (w.memory[MemSlot.NOW]! > limit + MEMORY_SLACK) {
        this.#stop(w, { kind: ErrorKind.MEMORY_LIMIT, message: `memory limit exceeded (${w.job.limits.maxMemoryMb} MiB; worker stopped)` });
      }
    }
  }

  /**
   * Terminates a worker; once it is gone, gives its handles back, takes its audit records, has
   * the store thread forget its channel, reports the run (if any) as failed with `reason`, and
   * starts a replacement in its slot.
   */
  #stop(w: PoolWorker, reason: { kind: ErrorKind; message: string }): void {
    if (w.state === "dead") return;
    const job = w.job;
    const wasBusy = w.state === "busy";
    if (w.state === "starting" && ++this.#startFailures >= 3) {
      this.#broken = `Lua workers cannot start: ${reason.message}`;
      this.#markReady();
      for (let i = this.#queueHead; i < this.#queue.length; i++) {
        this.#queue[i]!.resolve(failedResult(this.#queue[i]!.runId, { kind: ErrorKind.INTERNAL, message: this.#broken, traceback: "", retryable: false }));
      }
      this.#queue = [];
      this.#queueHead = 0;
    }
    w.state = "dead";
    w.job = null;
    if (wasBusy) this.#finish(w);
    this.#workers.delete(w);
    const idleAt = this.#idle.indexOf(w);
    if (idleAt !== -1) this.#idle.splice(idleAt, 1);
    const wallMs = performance.now() - w.startedAt;
    const peak = w.memory[MemSlot.PEAK]!;
    const gone = (): void => {
      // The worker can no longer write shared memory: what it held is the host's to give back,
      // and a zone operation it left half done is rolled back.
      this.#options.onWorkerGone(w.threadId);
      const autoReleased = this.#options.counters.view.recoverWorkerSlot(w.slot);
      this.#drainAudit(w.slot);
      this.#options.store.call("closeChannel", [w.channel]).catch(() => {});
      if (!this.#closed && this.#broken === null) this.#spawn(w.slot);
      job?.resolve(
        failedResult(
          job.runId,
          { kind: reason.kind, message: reason.message, traceback: "", retryable: false },
          { wallMs, autoReleased, ...(peak > 0 ? { peakMemoryBytes: peak } : {}) },
        ),
      );
    };
    w.worker.terminate().then(gone, gone);
  }

  /** Terminates every worker; runs in progress or queued end with Canceled. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const canceled: RunFailure = { kind: ErrorKind.CANCELED, message: "host closed", traceback: "", retryable: false };
    for (let i = this.#queueHead; i < this.#queue.length; i++) this.#queue[i]!.resolve(failedResult(this.#queue[i]!.runId, canceled));
    this.#queue = [];
    this.#queueHead = 0;
    const stopping: Promise<number>[] = [];
    for (const w of [...this.#workers]) {
      const job = w.job;
      if (w.state === "busy") this.#finish(w);
      w.state = "dead";
      w.job = null;
      stopping.push(w.worker.terminate());
      if (job !== null) job.resolve(failedResult(job.runId, canceled));
    }
    this.#workers.clear();
    this.#idle.length = 0;
    await Promise.all(stopping);
    for (let slot = 0; slot < this.#auditRings.length; slot++) this.#drainAudit(slot);
  }
}

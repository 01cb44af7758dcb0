/**
 * Memory stores in a shared-memory zone, for the host thread and every Lua worker at once.
 *
 * ## The API (what the host and the workers call)
 *
 * Host thread, once per memory store:
 * ```ts
 * const store = createZone(config, { clock, sweepTimer: true }); // allocates config.maxMemory bytes
 * store.buffer;                       // the SharedArrayBuffer: pass it (and `config`) to each worker
 * worker.on("exit", () => store.zone.threadExited(worker.threadId)); // for every worker given the buffer
 * ```
 * Worker, once per store on start, before its first run:
 * ```ts
 * const store = attachZone(buffer, config, { clock: systemClock }); // the same data, a Store
 * ```
 * `attachZone` writes the thread's token (`threadId + 1`) into the zone's liveness table.
 * Both sides then call the Store methods directly (src/store/store.ts); in a worker they always
 * answer synchronously (a contended lock is waited for with Atomics.wait). On the host thread a
 * call answers synchronously unless a worker holds the lock past a short spin: then it returns a
 * promise, so the event loop keeps running (and can deliver a worker's 'exit').
 *
 * **Liveness and recovery.** A worker may be terminated or die of its heap limit at any
 * instruction, holding the lock. The host must call `store.zone.threadExited(worker.threadId)`
 * from the worker's 'exit' event (every worker that attached, whatever the exit code): it frees
 * the worker's liveness slot and, when the worker held the lock, rolls its half-done operation
 * back and releases the lock (it returns true then). Call it after the worker is gone, never for
 * a live one: a live holder's lock would be taken from it. A thread waiting for the lock also checks the holder's slot at
 * least every 20 ms and recovers a dead holder itself. The clock must be the same time source in
 * every thread (systemClock); a ManualClock cannot cross threads.
 *
 * Only the host thread runs the sweep timer (`sweepTimer: true` there, the default false in
 * workers). `store.verify()` walks the whole zone and returns the problems found (empty:
 * consistent). The test-only fault hook is `setZoneFault` from ./fault.ts.
 *
 * Not yet: `quota` (a zone store with a quota is refused with StoreError INVALID; such a store
 * stays a Map store on the host).
 */
import type { Clock } from "../../clock.js";
import type { MemoryStoreConfig } from "../../registry/types.js";
import { Zone } from "./zone.js";
import { DEFAULT_MAX_MEMORY, ZoneStore } from "./zone-store.js";

export { setZoneFault, type ZoneFault } from "./fault.js";
export { Zone, THREAD_TOKEN } from "./zone.js";
export { DEFAULT_MAX_MEMORY, ZoneStore } from "./zone-store.js";

export interface ZoneOptions {
  clock: Clock;
  /** Run the periodic sweep (cleanup_interval) in this thread. @default false */
  sweepTimer?: boolean;
  /**
   * The thread's identity in the zone. @default threadId + 1. Tests give one thread several, each
   * standing for a thread that may die (and is then declared gone with `zone.tokenExited`).
   */
  token?: number;
}

/** Host thread: a new zone of `config.maxMemory` bytes and the store over it. */
export function createZone(config: MemoryStoreConfig, options: ZoneOptions): ZoneStore {
  const zone = Zone.create(config.maxMemory ?? DEFAULT_MAX_MEMORY, { maxSize: config.maxSize, lru: config.eviction === "lru" }, options.token);
  return new ZoneStore(config, zone, options);
}

/** A worker (or another store object in any thread): the store over an existing zone's buffer. */
export function attachZone(buffer: SharedArrayBuffer, config: MemoryStoreConfig, options: ZoneOptions): ZoneStore {
  return new ZoneStore(config, Zone.attach(buffer, options.token), options);
}

/**
 * The counters of a worker-isolated host in shared memory: every Lua worker keeps its pools'
 * handle counts, its gateway's denials and errors, and its own stores' hits, misses, ... in a
 * region of one SharedArrayBuffer that only it writes, and the host sums the regions for
 * `host.pools()` and `host.metrics()` without asking any thread.
 *
 * ## Layout
 * ```
 * held     Int32  [workerSlot][store]          handles a worker holds now (Atomics)
 * locks    Int32  [store]                      0, or the slot + 1 of the worker taking a handle
 * counters Float64[workerSlot][store][field]   COUNTER_FIELDS, written by that worker alone
 * ```
 * A worker slot is the index of one worker of the pool; its replacement takes the slot over
 * once the host has recovered it (see {@link recoverWorkerSlot}), so counters of a worker that
 * died are kept, and nothing a dead worker held stays counted.
 *
 * ## Pool limits across workers
 * A pool's size is per store across the host. A worker's handles of a store are counted in its
 * own `held` cell, and a pool's use is the sum of the cells. To take a handle a worker holds
 * the pool's lock (a word in `locks` holding its slot + 1, taken with compareExchange), sums the
 * cells, adds one to its own cell when the sum is below `max`, and lets go; giving a handle
 * back only subtracts from its own cell, without the lock. A worker terminated at any
 * instruction therefore leaves nothing to repair but its own cells, which the host zeroes after
 * the worker's exit, and a lock word naming it, which the host clears.
  */
import { ErrorKind } from "../../errors.js";
import type { PoolStats } from "../../pool/handle-pool.js";
import type { StoreCounters } from "../../store/store.js";
import type { GatewayCounters, SlotPool } from "../local-gateway.js";

const ERROR_KINDS: readonly string[] = Object.values(ErrorKind);

/** Store counters, in the order the stores' counter arrays use (see SqlStoreOptions.counters). */
export const STORE_COUNTER_FIELDS = ["hits", "misses", "sets", "deletes", "expired", "evicted"] as const satisfies readonly (keyof StoreCounters)[];

const F_ACQUIRED = 0;
const F_RELEASED = 1;
const F_AUTO_RELEASED = 2;
const F_REFUSED = 3;
const F_DENIED = 4;
const F_ERRORS = 5;
const F_STORE = F_ERRORS + ERROR_KINDS.length;
/** Float64 fields per worker slot and store. */
export const COUNTER_FIELDS = F_STORE + STORE_COUNTER_FIELDS.length;

/** The shared buffers of a host's counters: what the host creates and hands every worker. */
export interface SharedCountersBuffers {
  held: SharedArrayBuffer;
  locks: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  workerSlots: number;
  stores: number;
}

export function createSharedCounters(workerSlots: number, stores: number): SharedCountersBuffers {
  const cells = Math.max(1, workerSlots * stores);
  return {
    held: new SharedArrayBuffer(cells * 4),
    locks: new SharedArrayBuffer(Math.max(1, stores) * 4),
    counters: new SharedArrayBuffer(cells * COUNTER_FIELDS * 8),
    workerSlots,
    stores,
  };
}

/** Views of the shared counters; `workerSlot` is the region this thread writes (host: none). */
export class SharedCounters {
  readonly held: Int32Array;
  readonly locks: Int32Array;
  readonly counters: Float64Array;
  readonly workerSlots: number;
  readonly stores: number;

  constructor(buffers: SharedCountersBuffers) {
    this.held = new Int32Array(buffers.held);
    this.locks = new Int32Array(buffers.locks);
    this.counters = new Float64Array(buffers.counters);
    this.workerSlots = buffers.workerSlots;
    this.stores = buffers.stores;
  }

  /** Offset of the fields of (worker slot, store) in `counters`. */
  base(workerSlot: number, store: number): number {
    return (workerSlot * this.stores + store) * COUNTER_FIELDS;
  }

  /** The pool of store `store` as worker `workerSlot` uses it. */
  pool(workerSlot: number, store: number, id: string, max: number): SharedHandlePool {
    return new SharedHandlePool(this, workerSlot, store, id, max);
  }

  /** The gateway counters of store `store` in worker `workerSlot`'s region. */
  gatewayCounters(workerSlot: number, store: number): SharedGatewayCounters {
    return new SharedGatewayCounters(this.counters, this.base(workerSlot, store));
  }

  /** A view of the six store counters (STORE_COUNTER_FIELDS) of a store in a worker's region. */
  storeCounters(workerSlot: number, store: number): Float64Array {
    const at = this.base(workerSlot, store) + F_STORE;
    return this.counters.subarray(at, at + STORE_COUNTER_FIELDS.length);
  }

  /** Handles of `store` held by every worker now. */
  inUse(store: number): number {
    let n = 0;
    for (let w = 0; w < this.workerSlots; w++) n += Atomics.load(this.held, w * this.stores + store);
    return n;
  }

  #sum(store: number, field: number): number {
    let n = 0;
    for (let w = 0; w < this.workerSlots; w++) n += this.counters[this.base(w, store) + field]!;
    return n;
  }

  /** The pool statistics of `store`, summed over every worker. */
  poolStats(store: number, id: string, max: number): PoolStats {
    return {
      id,
      max,
      inUse: this.inUse(store),
      acquired: this.#sum(store, F_ACQUIRED),
      released: this.#sum(store, F_RELEASED),
      autoReleased: this.#sum(store, F_AUTO_RELEASED),
      refused: this.#sum(store, F_REFUSED),
    };
  }

  /** Denials, errors by kind and store counters of `store`, summed over every worker. */
  metrics(store: number): { denied: number; errors: Record<string, number> } & StoreCounters {
    const errors: Record<string, number> = {};
    ERROR_KINDS.forEach((kind, i) => {
      const n = this.#sum(store, F_ERRORS + i);
      if (n > 0) errors[kind] = n;
    });
    const out = { denied: this.#sum(store, F_DENIED), errors, hits: 0, misses: 0, sets: 0, deletes: 0, expired: 0, evicted: 0 };
    STORE_COUNTER_FIELDS.forEach((field, i) => (out[field] = this.#sum(store, F_STORE + i)));
    return out;
  }

  /**
   * After worker `workerSlot` exited: the handles it held go back to their pools (counted as
   * released by the host); returns how many. Only call once the worker can no longer run.
   */
  recoverWorkerSlot(workerSlot: number): number {
    let n = 0;
    for (let s = 0; s < this.stores; s++) {
      if (Atomics.compareExchange(this.locks, s, workerSlot + 1, 0) === workerSlot + 1) Atomics.notify(this.locks, s);
      const cell = workerSlot * this.stores + s;
      const held = Atomics.exchange(this.held, cell, 0);
      if (held > 0) {
        this.counters[this.base(workerSlot, s) + F_AUTO_RELEASED]! += held;
        n += held;
      }
    }
    return n;
  }
}

/** A store's handle pool as one worker uses it: the limit holds across every worker (see the file comment). */
export class SharedHandlePool implements SlotPool {
  readonly id: string;
  readonly max: number;
  readonly #shared: SharedCounters;
  readonly #store: number;
  readonly #cell: number;
  readonly #base: number;
  /** This worker's mark in the pool's lock word. */
  readonly #owner: number;

  constructor(shared: SharedCounters, workerSlot: number, store: number, id: string, max: number) {
    this.#shared = shared;
    this.#store = store;
    this.#owner = workerSlot + 1;
    this.#cell = workerSlot * shared.stores + store;
    this.#base = shared.base(workerSlot, store);
    this.id = id;
    this.max = max;
  }

  tryAcquire(): boolean {
    const { held, locks } = this.#shared;
    // Held for a sum over the workers: a few hundred nanoseconds. A holder that was terminated
    // keeps it until the host clears it (after the exit), hence the bounded waits.
    for (let tries = 1; ; tries++) {
      const owner = Atomics.compareExchange(locks, this.#store, 0, this.#owner);
      if (owner === 0) break;
      if (tries % 256 === 0) Atomics.wait(locks, this.#store, owner, 1);
    }
    const free = this.#shared.inUse(this.#store) < this.max;
    if (free) Atomics.add(held, this.#cell, 1);
    Atomics.store(locks, this.#store, 0);
    this.#shared.counters[this.#base + (free ? F_ACQUIRED : F_REFUSED)]!++;
    return free;
  }

  release(auto: boolean): void {
    const held = this.#shared.held;
    if (Atomics.load(held, this.#cell) === 0) throw new Error(`pool ${this.id}: release without acquire`);
    Atomics.sub(held, this.#cell, 1);
    this.#shared.counters[this.#base + (auto ? F_AUTO_RELEASED : F_RELEASED)]!++;
  }
}

/** A store's denials and errors by kind, in one worker's region. */
export class SharedGatewayCounters implements GatewayCounters {
  readonly #counters: Float64Array;
  readonly #base: number;

  constructor(counters: Float64Array, base: number) {
    this.#counters = counters;
    this.#base = base;
  }

  denial(): void {
    this.#counters[this.#base + F_DENIED]!++;
  }

  note(kind: ErrorKind): void {
    const i = ERROR_KINDS.indexOf(kind);
    if (i !== -1) this.#counters[this.#base + F_ERRORS + i]!++;
  }
}

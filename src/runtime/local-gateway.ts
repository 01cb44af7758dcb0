/**
 * The trusted side of a run: policy checks with the run's bound actor, pool slots, and the
 * store calls themselves. Used directly by inline runs and behind the channel by workers.
 */
import { ErrorKind, StoreError } from "../errors.js";
import { quoteByteString } from "../bytes.js";
import type { HandlePool } from "../pool/handle-pool.js";
import type { ActorPolicy, RequestMeta } from "../policy/types.js";
import type { StoreConfig } from "../registry/types.js";
import { isPromise, type MaybePromise, type Store } from "../store/store.js";
import { OpFailure, type HandleInfo, type KeyAction, type RunGateway } from "./gateway.js";

/** A registry entry made real: its store, its pool and its config. */
export interface StoreSlot {
  store: Store;
  pool: HandlePool;
  config: StoreConfig;
}

interface HandleState {
  slot: StoreSlot;
  released: boolean;
}

const RELEASED = new OpFailure(ErrorKind.INVALID, "store released");

/** Turns whatever a store threw or rejected with into an OpFailure. */
export function toFailure(err: unknown): OpFailure {
  if (err instanceof StoreError) return new OpFailure(err.kind, err.message, err.retryable);
  if (err instanceof OpFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new OpFailure(ErrorKind.INTERNAL, `internal store error: ${message}`);
}

const identity = <T>(v: T): T => v;
const yes = (): true => true;

export class LocalGateway implements RunGateway {
  readonly #slots: ReadonlyMap<string, StoreSlot>;
  #policy: ActorPolicy;
  readonly #handles: HandleState[] = [];
  /** Reused for every key check: the policy engine reads it synchronously. */
  readonly #meta: RequestMeta = { key: "" };
  #open = 0;

  constructor(slots: ReadonlyMap<string, StoreSlot>, policy: ActorPolicy) {
    this.#slots = slots;
    this.#policy = policy;
  }

  /** The policy binding checks run against (the actor bound to this run). */
  get policy(): ActorPolicy {
    return this.#policy;
  }

  /**
   * Rebinds the run to another actor. Only trusted host code calls this (the test harness's
   * `test.as`); nothing reachable from a script can.
   */
  setPolicy(policy: ActorPolicy): void {
    this.#policy = policy;
  }

  acquire(storeId: string): HandleInfo | OpFailure {
    // Policy first: an actor without access learns nothing about which stores exist.
    if (!this.#policy.decide("store.get", storeId).allowed) {
      return new OpFailure(ErrorKind.PERMISSION_DENIED, `permission denied: store.get on ${quoteByteString(storeId)}`);
    }
    const slot = this.#slots.get(storeId);
    if (slot === undefined) return new OpFailure(ErrorKind.NOT_FOUND, `no store ${quoteByteString(storeId)} in the registry`);
    if (!slot.pool.tryAcquire()) {
      return new OpFailure(
        ErrorKind.UNAVAILABLE,
        `pool of ${slot.config.id} exhausted: all ${slot.pool.max} handles in use`,
        true,
      );
    }
    const handle = this.#handles.length;
    this.#handles.push({ slot, released: false });
    this.#open++;
    return { handle, storeId, maxKeyLength: slot.config.maxKeyLength, maxValueSize: slot.config.maxValueSize };
  }

  release(handle: number): void {
    const state = this.#handles[handle];
    if (state === undefined || state.released) return;
    state.released = true;
    state.slot.pool.release(false);
    this.#open--;
  }

  releaseAll(): number {
    let n = 0;
    if (this.#open === 0) return 0;
    for (const state of this.#handles) {
      if (state.released) continue;
      state.released = true;
      state.slot.pool.release(true);
      n++;
    }
    this.#open = 0;
    return n;
  }

  /** The live handle state, or null when released/unknown. */
  #state(handle: number): HandleState | null {
    const state = this.#handles[handle];
    return state === undefined || state.released ? null : state;
  }

  #deny(action: KeyAction, state: HandleState, key: string): OpFailure | null {
    this.#meta.key = key;
    if (this.#policy.decide(action, state.slot.config.id, this.#meta).allowed) return null;
    return new OpFailure(
      ErrorKind.PERMISSION_DENIED,
      `permission denied: ${action} on ${state.slot.config.id} key ${quoteByteString(key)}`,
    );
  }

  check(handle: number, action: KeyAction, key: string): OpFailure | null {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    return this.#deny(action, state, key);
  }

  get(handle: number, key: string): MaybePromise<Uint8Array | undefined | OpFailure> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.get", state, key);
    if (denied !== null) return denied;
    const r = state.slot.store.get(key);
    return isPromise(r) ? r.then(identity, toFailure) : r;
  }

  set(handle: number, key: string, value: Uint8Array, ttlMs: number): MaybePromise<true | OpFailure> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.set", state, key);
    if (denied !== null) return denied;
    try {
      const r = state.slot.store.set(key, value, ttlMs);
      return isPromise(r) ? r.then(yes, toFailure) : true;
    } catch (err) {
      return toFailure(err);
    }
  }

  has(handle: number, key: string): MaybePromise<boolean | OpFailure> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.has", state, key);
    if (denied !== null) return denied;
    const r = state.slot.store.has(key);
    return isPromise(r) ? r.then(identity, toFailure) : r;
  }

  delete(handle: number, key: string): MaybePromise<boolean | OpFailure> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.delete", state, key);
    if (denied !== null) return denied;
    const r = state.slot.store.delete(key);
    return isPromise(r) ? r.then(identity, toFailure) : r;
  }
}

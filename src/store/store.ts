/**
 * The store interface every backend implements (memory now; SQLite and Redis later).
 *
 * Keys are byte strings (src/bytes.ts) already validated by the caller (see validate.ts);
 * values are MessagePack bytes produced by the codec and are never mutated once stored.
 * Every method may answer synchronously or with a Promise: the memory store answers at
 * once (the hot path stays free of promise allocation), asynchronous backends return
 * promises and the runtime suspends the calling script until they settle.
 */
import type { StoreConfig } from "../registry/types.js";

export type MaybePromise<T> = T | Promise<T>;

/** Per-store counters, readable from the host. */
export interface StoreCounters {
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
  expired: number;
  evicted: number;
}

export interface StoreStats extends StoreCounters {
  /** Live (not yet swept) entries. */
  size: number;
  /** Encoded bytes held: key bytes plus value bytes. */
  bytes: number;
}

export interface Store {
  readonly id: string;
  readonly kind: StoreConfig["kind"];
  readonly config: StoreConfig;

  /** The value bytes, or undefined when missing or expired. */
  get(key: string): MaybePromise<Uint8Array | undefined>;
  /**
   * Stores `value`; `ttlMs` 0 means no expiry (and removes an earlier TTL, as Redis SET does).
   * Fails with StoreError UNAVAILABLE (retryable) when a new key does not fit.
   */
  set(key: string, value: Uint8Array, ttlMs: number): MaybePromise<void>;
  has(key: string): MaybePromise<boolean>;
  /** True when the key existed (and was not expired). */
  delete(key: string): MaybePromise<boolean>;

  /** Live entries right now (expired ones excluded). */
  size(): MaybePromise<number>;
  /** Removes every entry. */
  clear(): MaybePromise<void>;
  /** Active expiry: removes expired entries now and returns how many. */
  sweep(): MaybePromise<number>;
  stats(): MaybePromise<StoreStats>;
  /** Stops timers and releases resources; the store must not be used afterwards. */
  close(): MaybePromise<void>;
}

/** True when `value` is a promise-like (an asynchronous backend's answer). */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof value === "object" && value !== null && typeof (value as Promise<T>).then === "function";
}

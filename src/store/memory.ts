/**
 * `store.memory`: entries in a Map (whose insertion order doubles as the LRU order), TTLs in
 * an {@link ExpiryIndex}, one unref()'d sweep timer per store. Expired keys are invisible at
 * once (checked on every access) and reclaimed by the periodic sweep.
 */
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { MemoryStoreConfig } from "../registry/types.js";
import { ExpiryIndex } from "./expiry-index.js";
import type { Store, StoreStats } from "./store.js";

class MemoryEntry {
  value: Uint8Array;
  /** Expiry time in clock milliseconds; 0 = never. */
  expiresAt: number;
  /** Bumped on every write (store-wide counter), so it changes on every write. */
  version: number;
  constructor(value: Uint8Array, expiresAt: number, version: number) {
    this.value = value;
    this.expiresAt = expiresAt;
    this.version = version;
  }
}

export interface MemoryStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer. @default true */
  sweepTimer?: boolean;
}

export class MemoryStore implements Store {
  readonly id: string;
  readonly kind = "store.memory" as const;
  readonly config: MemoryStoreConfig;
  readonly #clock: Clock;
  readonly #entries = new Map<string, MemoryEntry>();
  readonly #expiry = new ExpiryIndex();
  readonly #lru: boolean;
  readonly #maxSize: number;
  #timer: NodeJS.Timeout | undefined;
  #version = 0;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #sets = 0;
  #deletes = 0;
  #expired = 0;
  #evicted = 0;

  constructor(config: MemoryStoreConfig, options: MemoryStoreOptions) {
    this.id = config.id;
    this.config = config;
    this.#clock = options.clock;
    this.#lru = config.eviction === "lru";
    this.#maxSize = config.maxSize;
    if (options.sweepTimer ?? true) {
      this.#timer = setInterval(() => this.sweep(), config.cleanupIntervalMs);
      this.#timer.unref();
    }
  }

  /** The live entry for `key`, removing it first when it has expired. */
  #live(key: string): MemoryEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.#clock.now()) {
      this.#drop(key, entry);
      this.#expired++;
      return undefined;
    }
    return entry;
  }

  #drop(key: string, entry: MemoryEntry): void {
    this.#entries.delete(key);
    if (entry.expiresAt !== 0) this.#expiry.remove(key, entry.expiresAt);
    this.#bytes -= key.length + entry.value.length;
  }

  get(key: string): Uint8Array | undefined {
    const entry = this.#live(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    if (this.#lru) {
      // Map order is the LRU order: move the key to the most-recent end.
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry.value;
  }

  has(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  set(key: string, value: Uint8Array, ttlMs: number): void {
    const now = this.#clock.now();
    const expiresAt = ttlMs > 0 ? now + ttlMs : 0;
    const entry = this.#live(key);
    if (entry !== undefined) {
      if (entry.expiresAt !== expiresAt) {
        if (entry.expiresAt !== 0) this.#expiry.remove(key, entry.expiresAt);
        if (expiresAt !== 0) this.#expiry.add(key, expiresAt);
        entry.expiresAt = expiresAt;
      }
      this.#bytes += value.length - entry.value.length;
      entry.value = value;
      entry.version = ++this.#version;
      if (this.#lru) {
        this.#entries.delete(key);
        this.#entries.set(key, entry);
      }
      this.#sets++;
      return;
    }
    if (this.#entries.size >= this.#maxSize) this.#makeRoom(key);
    this.#entries.set(key, new MemoryEntry(value, expiresAt, ++this.#version));
    if (expiresAt !== 0) this.#expiry.add(key, expiresAt);
    this.#bytes += key.length + value.length;
    this.#sets++;
  }

  /** Frees one slot for a new key: expired entries first, then LRU eviction, else refuse. */
  #makeRoom(key: string): void {
    this.sweep();
    if (this.#entries.size < this.#maxSize) return;
    if (!this.#lru) {
      throw new StoreError(
        ErrorKind.UNAVAILABLE,
        `store ${this.id} is full (max_size ${this.#maxSize}); cannot add key`,
        { retryable: true },
      );
    }
    const oldest = this.#entries.keys().next();
    if (oldest.done === true || oldest.value === key) return;
    const victim = this.#entries.get(oldest.value)!;
    this.#drop(oldest.value, victim);
    this.#evicted++;
  }

  delete(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#drop(key, entry);
    this.#deletes++;
    return true;
  }

  size(): number {
    this.sweep();
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
    this.#expiry.clear();
    this.#bytes = 0;
  }

  sweep(): number {
    const now = this.#clock.now();
    const n = this.#expiry.sweep(
      now,
      (key) => {
        const entry = this.#entries.get(key);
        if (entry === undefined) return;
        this.#entries.delete(key);
        this.#bytes -= key.length + entry.value.length;
      },
      (key) => {
        const entry = this.#entries.get(key);
        return entry !== undefined && entry.expiresAt !== 0 && entry.expiresAt <= now;
      },
    );
    this.#expired += n;
    return n;
  }

  stats(): StoreStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      deletes: this.#deletes,
      expired: this.#expired,
      evicted: this.#evicted,
      size: this.#entries.size,
      bytes: this.#bytes,
    };
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * `store.memory`: entries in a Map (whose insertion order doubles as the LRU order), TTLs in
 * an {@link ExpiryIndex}, one unref()'d sweep timer per store. Expired keys are invisible at
 * once (checked on every access) and reclaimed by the periodic sweep.
 *
 * - Recency (eviction lru): every call that reads or writes a key's value moves it to the
 *   most-recent end (get, getMany, entry, set, add, replace, incr, put, setMany); has, ttl,
 *   expire and list do not.
 * - Versions come from one store-wide counter, bumped by every mutation of a key (writes and
 *   expire), so a version is never reused; they are 16 hex digits, so they also sort in write
 *   order.
 * - `list` walks a {@link SortedKeys} index that is built on the first `list` call and kept up
 *   to date from then on, so a store that is never listed pays nothing for it.
 */
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { MemoryStoreConfig } from "../registry/types.js";
import { ExpiryIndex } from "./expiry-index.js";
import { incrementBytes } from "./numbers.js";
import { SortedKeys } from "./sorted-keys.js";
import type {
  EntryRecord,
  ListedKey,
  ListOptions,
  ListPage,
  LuaNumber,
  PutOptions,
  PutOutcome,
  Store,
  StoreInfo,
  StoreStats,
} from "./store.js";

/** Largest `list` page. */
const MAX_LIMIT = 1000;
/**
 * Expired keys a `list` page may step over (and reclaim) before it stops early with a cursor:
 * a range full of expired, not yet swept keys must not hold the store for long.
 */
const MAX_EXPIRED_PER_PAGE = 1000;

class MemoryEntry {
  value: Uint8Array;
  /** Expiry time in clock milliseconds; 0 = never. */
  expiresAt: number;
  /** The store's mutation counter at this key's last mutation. */
  version: number;
  metadata: Uint8Array | undefined;
  constructor(value: Uint8Array, expiresAt: number, version: number, metadata: Uint8Array | undefined) {
    this.value = value;
    this.expiresAt = expiresAt;
    this.version = version;
    this.metadata = metadata;
  }
}

export interface MemoryStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer. @default true */
  sweepTimer?: boolean;
  /** The store's own expiry index (tests pass one to watch sweep cost). @default a new ExpiryIndex() */
  expiryIndex?: ExpiryIndex;
}

export class MemoryStore implements Store {
  readonly id: string;
  readonly kind = "store.memory" as const;
  readonly config: MemoryStoreConfig;
  readonly #clock: Clock;
  readonly #entries = new Map<string, MemoryEntry>();
  readonly #expiry: ExpiryIndex;
  /** Built by the first `list`, then kept up to date. */
  #sortedKeys: SortedKeys | undefined;
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
    this.#expiry = options.expiryIndex ?? new ExpiryIndex();
    this.#lru = config.eviction === "lru";
    this.#maxSize = config.maxSize;
    if (options.sweepTimer ?? true) {
      this.#timer = setInterval(() => this.sweep(), config.cleanupIntervalMs);
      // The timer must not keep a CLI process alive.
      this.#timer.unref();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  get(key: string): Uint8Array | undefined {
    const entry = this.#live(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    if (this.#lru) this.#touch(key, entry);
    return entry.value;
  }

  getMany(keys: readonly string[]): (Uint8Array | undefined)[] {
    const values = new Array<Uint8Array | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = this.get(keys[i]!);
    return values;
  }

  has(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  ttl(key: string): number | undefined {
    const entry = this.#live(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt === 0) return 0;
    // Clock time may be fractional; a live key always has at least 1 ms left.
    return Math.ceil(entry.expiresAt - this.#clock.now());
  }

  entry(key: string): EntryRecord | undefined {
    const entry = this.#live(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    if (this.#lru) this.#touch(key, entry);
    const record: EntryRecord = { value: entry.value, version: formatVersion(entry.version), expiresAt: entry.expiresAt };
    if (entry.metadata !== undefined) record.metadata = entry.metadata;
    return record;
  }

  list(options: ListOptions): ListPage {
    const { prefix, after, limit } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new StoreError(ErrorKind.INVALID, `list limit must be an integer in 1..${MAX_LIMIT}, got ${limit}`);
    }
    this.#sortedKeys ??= SortedKeys.from(this.#entries.keys());
    const now = this.#clock.now();
    const keys: ListedKey[] = [];
    const expired: string[] = [];
    let lastVisited: string | undefined;
    let hasMore = false;
    const afterApplies = after !== undefined && after >= prefix;
    this.#sortedKeys.scan(afterApplies ? after : prefix, !afterApplies, (key) => {
      if (!key.startsWith(prefix)) return false;
      const entry = this.#entries.get(key)!;
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
        if (expired.length === MAX_EXPIRED_PER_PAGE) {
          hasMore = true;
          return false;
        }
        expired.push(key);
        lastVisited = key;
        return true;
      }
      if (keys.length === limit) {
        hasMore = true;
        return false;
      }
      keys.push(entry.metadata === undefined ? { key } : { key, metadata: entry.metadata });
      lastVisited = key;
      return true;
    });
    for (const key of expired) {
      this.#drop(key, this.#entries.get(key)!);
      this.#expired++;
    }
    return hasMore ? { keys, cursor: lastVisited!, hasMore } : { keys, hasMore };
  }

  info(): StoreInfo {
    return { size: this.size(), maxSize: this.#maxSize, eviction: this.config.eviction };
  }

  size(): number {
    this.sweep();
    return this.#entries.size;
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

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  set(key: string, value: Uint8Array, ttlMs: number): void {
    this.#write(key, this.#live(key), value, this.#expiresAt(ttlMs), undefined);
  }

  add(key: string, value: Uint8Array, ttlMs: number): boolean {
    const entry = this.#live(key);
    if (entry !== undefined) return false;
    this.#write(key, undefined, value, this.#expiresAt(ttlMs), undefined);
    return true;
  }

  replace(key: string, value: Uint8Array, ttlMs: number): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#write(key, entry, value, this.#expiresAt(ttlMs), undefined);
    return true;
  }

  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number): Uint8Array {
    const entry = this.#live(key);
    const bytes = incrementBytes(key, entry?.value, by, init);
    const expiresAt = entry !== undefined ? entry.expiresAt : this.#expiresAt(initTtlMs);
    this.#write(key, entry, bytes, expiresAt, undefined);
    return bytes;
  }

  put(key: string, value: Uint8Array, options: PutOptions): PutOutcome {
    const { ifVersion } = options;
    if (options.onlyIfAbsent && ifVersion !== undefined) {
      throw new StoreError(ErrorKind.INVALID, "put: onlyIfAbsent and ifVersion cannot be combined");
    }
    const entry = this.#live(key);
    if (options.onlyIfAbsent && entry !== undefined) return "exists";
    if (ifVersion !== undefined) {
      if (entry === undefined) return "missing";
      if (formatVersion(entry.version) !== ifVersion) return "conflict";
    }
    this.#write(key, entry, value, this.#expiresAt(options.ttlMs), options.metadata);
    return "ok";
  }

  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number): void {
    const batch = new Set<string>();
    let newKeys = 0;
    for (const [key] of entries) {
      if (batch.has(key)) continue;
      batch.add(key);
      if (this.#live(key) === undefined) newKeys++;
    }
    if (batch.size > this.#maxSize) {
      throw new StoreError(
        ErrorKind.INVALID,
        `store ${this.id}: a batch of ${batch.size} keys can never fit (max_size ${this.#maxSize})`,
      );
    }
    if (this.#entries.size + newKeys > this.#maxSize) this.sweep();
    const excess = this.#entries.size + newKeys - this.#maxSize;
    if (excess > 0) {
      if (!this.#lru) throw this.#full(`${newKeys} new keys`);
      // Oldest first, skipping the batch's own keys: a batch that fits max_size keeps them all.
      const victims: string[] = [];
      for (const key of this.#entries.keys()) {
        if (victims.length === excess) break;
        if (!batch.has(key)) victims.push(key);
      }
      for (const key of victims) this.#evict(key);
    }
    const expiresAt = this.#expiresAt(ttlMs);
    for (const [key, value] of entries) this.#write(key, this.#entries.get(key), value, expiresAt, undefined);
  }

  expire(key: string, ttlMs: number): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#setExpiry(key, entry, this.#expiresAt(ttlMs));
    entry.version = ++this.#version;
    return true;
  }

  delete(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#drop(key, entry);
    this.#deletes++;
    return true;
  }

  clear(): void {
    this.#entries.clear();
    this.#expiry.clear();
    this.#sortedKeys?.clear();
    this.#bytes = 0;
  }

  sweep(): number {
    const now = this.#clock.now();
    const n = this.#expiry.sweep(
      now,
      (key) => {
        const entry = this.#entries.get(key);
        if (entry === undefined) return;
        // The index already let go of the key.
        this.#entries.delete(key);
        this.#sortedKeys?.delete(key);
        this.#bytes -= entryBytes(key, entry);
      },
      (key) => {
        const entry = this.#entries.get(key);
        return entry !== undefined && entry.expiresAt !== 0 && entry.expiresAt <= now;
      },
    );
    this.#expired += n;
    return n;
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

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

  #expiresAt(ttlMs: number): number {
    return ttlMs > 0 ? this.#clock.now() + ttlMs : 0;
  }

  /**
   * Stores `value` at `key`, over `entry` (its live entry) or as a new key, making room first
   * when the store is full. Every write replaces the metadata and bumps the version.
   */
  #write(key: string, entry: MemoryEntry | undefined, value: Uint8Array, expiresAt: number, metadata: Uint8Array | undefined): void {
    if (entry !== undefined) {
      this.#setExpiry(key, entry, expiresAt);
      this.#bytes += value.length + (metadata?.length ?? 0) - entry.value.length - (entry.metadata?.length ?? 0);
      entry.value = value;
      entry.metadata = metadata;
      entry.version = ++this.#version;
      if (this.#lru) this.#touch(key, entry);
    } else {
      if (this.#entries.size >= this.#maxSize) this.#makeRoom();
      this.#entries.set(key, new MemoryEntry(value, expiresAt, ++this.#version, metadata));
      if (expiresAt !== 0) this.#expiry.add(key, expiresAt);
      this.#sortedKeys?.insert(key);
      this.#bytes += key.length + value.length + (metadata?.length ?? 0);
    }
    this.#sets++;
  }

  #setExpiry(key: string, entry: MemoryEntry, expiresAt: number): void {
    if (entry.expiresAt === expiresAt) return;
    if (entry.expiresAt !== 0) this.#expiry.remove(key, entry.expiresAt);
    if (expiresAt !== 0) this.#expiry.add(key, expiresAt);
    entry.expiresAt = expiresAt;
  }

  /** Map order is the LRU order: moves the key to the most-recent end. */
  #touch(key: string, entry: MemoryEntry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  /** Frees one slot for a new key: expired entries first, then LRU eviction, else refuse. */
  #makeRoom(): void {
    this.sweep();
    if (this.#entries.size < this.#maxSize) return;
    if (!this.#lru) throw this.#full("a new key");
    const oldest = this.#entries.keys().next();
    if (oldest.done !== true) this.#evict(oldest.value);
  }

  #full(what: string): StoreError {
    return new StoreError(
      ErrorKind.UNAVAILABLE,
      `store ${this.id} is full (max_size ${this.#maxSize}); cannot add ${what}`,
      { retryable: true },
    );
  }

  #evict(key: string): void {
    this.#drop(key, this.#entries.get(key)!);
    this.#evicted++;
  }

  #drop(key: string, entry: MemoryEntry): void {
    this.#entries.delete(key);
    if (entry.expiresAt !== 0) this.#expiry.remove(key, entry.expiresAt);
    this.#sortedKeys?.delete(key);
    this.#bytes -= entryBytes(key, entry);
  }
}

function entryBytes(key: string, entry: MemoryEntry): number {
  return key.length + entry.value.length + (entry.metadata?.length ?? 0);
}

/** 16 hex digits: fixed width, so versions also sort in write order (the counter stays below 2^53). */
function formatVersion(version: number): string {
  return version.toString(16).padStart(16, "0");
}

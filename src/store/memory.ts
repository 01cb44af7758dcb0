/**
 * `store.memory`: a Map from key to slot number (whose insertion order doubles as the LRU
 * order), TTLs in an {@link ExpiryIndex}, one unref()'d sweep timer per store. Expired keys are
 * invisible at once (checked on every access) and reclaimed by the periodic sweep.
 *
 * - No JS object per entry: a key's slot number indexes pages of numbers (version, expiry)
 *   and {@link SlabValues}, which packs small values into shared slabs. Beyond its key and
 *   value bytes an entry costs its Map entry (~37 B), its key string's header (16 B), 16 B of
 *   slot numbers, a 4-byte value address and a 6-byte slab header: ~80 B where a JS object and
 *   a Uint8Array per entry cost ~340 B (`npm run bench` measures it). Metadata, rare, lives in
 *   a Map by slot; freed slots are reused.
 * - `get` and `entry` return a view of the slab (see SlabValues for why it stays valid and
 *   unchanged for as long as it is held); `incr` returns its own fresh bytes.
 * - What the store keeps is sized to itself: a value or metadata that arrives as a view into a
 *   larger buffer is copied (see {@link ownedBytes}), so `bytes` in stats() is what it holds.
 *
 * - Recency (eviction lru): every call that reads or writes a key's value moves it to the
 *   most-recent end (get, getMany, entry, set, add, replace, incr, put, setMany); has, ttl,
 *   expire and list do not.
 * - Versions come from one store-wide counter, bumped by every mutation of a key (writes and
 *   expire), so a version is never reused; they are 16 hex digits, so they also sort in write
 *   order.
 * - `list` walks a {@link SortedKeys} index that is built on the first `list` call and kept up
 *   to date from then on, so a store that is never listed pays nothing for it.
 * - Stale copies (stale_for): an expired key keeps its slot; the sweep moves it from the expiry
 *   index to a second one keyed by expiry + stale_for, whose size is how many stale copies `size`
 *   leaves out, and reclaims it from there. Without stale_for the second index stays empty.
 */
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { MemoryStoreConfig } from "../registry/types.js";
import { Deque } from "./deque.js";
import { ExpiryIndex } from "./expiry-index.js";
import { ShareLedger, type LedgerStore } from "./share-ledger.js";
import { incrementBytes } from "./numbers.js";
import { ownedBytes, SlabValues } from "./slab-values.js";
import { encodeSnapshot, readSnapshot, SnapshotError, writeSnapshot, type SnapshotEntry } from "./snapshot.js";
import { SortedKeys } from "./sorted-keys.js";
import { SortedSet } from "./sorted-set.js";
import type {
  AtomicOutcome,
  AtomicStore,
  AtomicWrite,
  CollectionKind,
  CollectionStore,
  EntryRecord,
  ListEnd,
  ListedKey,
  ListOptions,
  ListPage,
  LuaNumber,
  PutOptions,
  PutOutcome,
  StaleValue,
  Store,
  StoreInfo,
  StoreStats,
  ZsetEntry,
  ZsetRange,
} from "./store.js";
import {
  checkCollectionBounds,
  checkListLimit,
  checkScore,
  indexRange,
  LIST_MAX_EXPIRED_PER_PAGE,
  SCORE_BYTES,
  wrongType,
} from "./store.js";


/**
 * Per-slot numbers live in pages of this many slots (a power of 2), so the arrays grow without
 * copying and waste at most one page, where doubling one array wastes a quarter on average.
 */
const PAGE_BITS = 10;
const PAGE_SLOTS = 1 << PAGE_BITS;
/** The slot of a missing key (a number, not undefined, keeps call sites monomorphic). */
const NONE = -1;
/** Where an incr of a missing key starts (s:atomic's incr). */
const ZERO_INIT: LuaNumber = { value: 0, float: false };
/** The slab value of a list or sorted set key: its items live in #collections. */
const NO_VALUE = new Uint8Array(0);

/** A list's elements and their total bytes. */
interface MemoryList {
  readonly kind: "list";
  readonly items: Deque<Uint8Array>;
  bytes: number;
}

/** A sorted set's members and their bytes (members' bytes plus SCORE_BYTES each). */
interface MemoryZset {
  readonly kind: "zset";
  readonly set: SortedSet;
  bytes: number;
}

type Collection = MemoryList | MemoryZset;

export interface MemoryStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer. @default true */
  sweepTimer?: boolean;
  /** The store's own expiry index (tests pass one to watch sweep cost). @default a new ExpiryIndex() */
  expiryIndex?: ExpiryIndex;
  /** Directory a relative snapshot path resolves against (the registry's). @default process.cwd() */
  baseDir?: string;
}

export class MemoryStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind = "store.memory" as const;
  readonly config: MemoryStoreConfig;
  readonly #clock: Clock;
  /** Key → slot; the Map's order is the LRU order. */
  readonly #slots = new Map<string, number>();
  /**
   * Per slot, in pages (see {@link PAGE_SLOTS}), two numbers: at `2i` the store's mutation
   * counter at the key's last mutation (its version), at `2i + 1` its expiry time in clock
   * milliseconds, 0 = never.
   */
  readonly #pages: Float64Array[] = emptyObjectArray();
  /** Per slot: the value bytes. */
  readonly #values = new SlabValues();
  /** Metadata by slot, for the keys that have some. */
  readonly #metadata = new Map<number, Uint8Array>();
  /** Lists and sorted sets by slot (their slab value is empty); see CollectionKind in store.ts. */
  readonly #collections = new Map<number, Collection>();
  /** Slots below this have been used; freed ones wait in #freeSlots. */
  #slotTop = 0;
  readonly #freeSlots: number[] = [];
  readonly #expiry: ExpiryIndex;
  /** Milliseconds an expired key stays readable by getStale (0: none). */
  readonly #staleFor: number;
  /** Expired keys within stale_for, by the time they are reclaimed (filled by the sweep). */
  readonly #staleIndex = new ExpiryIndex();
  /** Built by the first `list`, then kept up to date. */
  #sortedKeys: SortedKeys | undefined;
  readonly #lru: boolean;
  readonly #maxSize: number;
  /** Owners and usage of shares when the store has a quota, else null. */
  readonly #ledger: ShareLedger | null;
  readonly #ledgerView: LedgerStore = {
    entryBytes: (key, slot) => this.#entryBytes(key, slot),
    slotOf: (key) => this.#slots.get(key) ?? NONE,
    keysOldestFirst: () => this.#slots.keys(),
  };
  #timer: NodeJS.Timeout | undefined;
  /** The snapshot file, absolute, when the registry gives the store one. */
  readonly snapshotPath: string | undefined;
  #snapshotTimer: NodeJS.Timeout | undefined;
  /** The last snapshot write queued: writes run one after another, so an older one never renames over a newer one. */
  #snapshotWrite: Promise<void> = Promise.resolve();
  #snapshotWriting = false;
  #snapshotDestroyed = false;
  #closed = false;
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
    this.#staleFor = config.staleForMs ?? 0;
    this.#lru = config.eviction === "lru";
    this.#maxSize = config.maxSize;
    this.#ledger = config.quota ? new ShareLedger(config.id, config.quota, config.maxSize, this.#lru) : null;
    if (options.sweepTimer ?? true) {
      this.#timer = setInterval(() => this.sweep(), config.cleanupIntervalMs);
      // The timer must not keep a CLI process alive.
      this.#timer.unref();
    }
    const snapshot = config.snapshot;
    this.snapshotPath = snapshot === undefined ? undefined : resolve(options.baseDir ?? process.cwd(), snapshot.path);
    if (this.snapshotPath !== undefined) this.#loadSnapshot(this.snapshotPath);
    if (snapshot?.everyMs !== undefined) {
      // A failed periodic write leaves the previous snapshot; the next tick, commit() or close() tries again.
      this.#snapshotTimer = setInterval(() => {
        if (!this.#snapshotWriting) this.commit().catch(() => {});
      }, snapshot.everyMs);
      this.#snapshotTimer.unref();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  get(key: string): Uint8Array | undefined {
    const slot = this.#live(key);
    if (slot === NONE) {
      this.#misses++;
      return undefined;
    }
    if (this.#collections.size !== 0 && this.#collections.has(slot)) throw this.#notAValue(key, slot);
    this.#hits++;
    if (this.#lru) this.#touch(key, slot);
    return this.#values.get(slot);
  }

  getStale(key: string): Uint8Array | StaleValue | undefined {
    if (this.#staleFor !== 0) {
      const slot = this.#slots.get(key);
      if (slot !== undefined) {
        const expiresAt = this.#expiresAtOf(slot);
        const now = this.#clock.now();
        if (expiresAt !== 0 && expiresAt <= now && expiresAt + this.#staleFor > now) {
          if (this.#collections.size !== 0 && this.#collections.has(slot)) throw this.#notAValue(key, slot);
          this.#misses++;
          return { stale: this.#values.get(slot) };
        }
      }
    }
    return this.get(key);
  }

  getMany(keys: readonly string[]): (Uint8Array | undefined)[] {
    const values = new Array<Uint8Array | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = this.get(keys[i]!);
    return values;
  }

  has(key: string): boolean {
    return this.#live(key) !== NONE;
  }

  ttl(key: string): number | undefined {
    const slot = this.#live(key);
    if (slot === NONE) return undefined;
    const expiresAt = this.#expiresAtOf(slot);
    if (expiresAt === 0) return 0;
    // Clock time may be fractional; a live key always has at least 1 ms left.
    return Math.ceil(expiresAt - this.#clock.now());
  }

  entry(key: string): EntryRecord | undefined {
    const slot = this.#live(key);
    if (slot === NONE) {
      this.#misses++;
      return undefined;
    }
    if (this.#collections.size !== 0 && this.#collections.has(slot)) throw this.#notAValue(key, slot);
    this.#hits++;
    if (this.#lru) this.#touch(key, slot);
    const record: EntryRecord = {
      value: this.#values.get(slot),
      version: formatVersion(this.#versionOf(slot)),
      expiresAt: this.#expiresAtOf(slot),
    };
    const metadata = this.#metadataOf(slot);
    if (metadata !== undefined) record.metadata = metadata;
    return record;
  }

  list(options: ListOptions): ListPage {
    const { prefix, after, limit } = options;
    checkListLimit(limit);
    this.#sortedKeys ??= SortedKeys.from(this.#slots.keys());
    const now = this.#clock.now();
    const keys: ListedKey[] = [];
    const expired: string[] = [];
    let staleSteppedOver = 0;
    let lastVisited: string | undefined;
    let hasMore = false;
    const afterApplies = after !== undefined && after >= prefix;
    this.#sortedKeys.scan(afterApplies ? after : prefix, !afterApplies, (key) => {
      if (!key.startsWith(prefix)) return false;
      const slot = this.#slots.get(key)!;
      const expiresAt = this.#expiresAtOf(slot);
      if (expiresAt !== 0 && expiresAt <= now) {
        if (expired.length + staleSteppedOver === LIST_MAX_EXPIRED_PER_PAGE) {
          hasMore = true;
          return false;
        }
        // A stale copy stays for getStale; it still costs this page a step.
        if (expiresAt + this.#staleFor <= now) expired.push(key);
        else staleSteppedOver++;
        lastVisited = key;
        return true;
      }
      if (keys.length === limit) {
        hasMore = true;
        return false;
      }
      const metadata = this.#metadataOf(slot);
      keys.push(metadata === undefined ? { key } : { key, metadata });
      lastVisited = key;
      return true;
    });
    for (const key of expired) {
      this.#drop(key, this.#slots.get(key)!);
      this.#expired++;
    }
    return hasMore ? { keys, cursor: lastVisited!, hasMore } : { keys, hasMore };
  }

  info(share?: string): StoreInfo {
    const info: StoreInfo = { size: this.size(), bytes: this.#bytes, maxSize: this.#maxSize, eviction: this.config.eviction };
    const quota = this.config.quota;
    if (this.#ledger !== null && quota !== undefined && share !== undefined) {
      info.quota = { by: quota.by, share, ...this.#ledger.usage(share), maxKeys: quota.maxKeys };
      if (quota.maxBytes !== undefined) info.quota.maxBytes = quota.maxBytes;
    }
    return info;
  }

  size(): number {
    this.sweep();
    // After a sweep every expired key left is a stale copy, in #staleIndex.
    return this.#slots.size - this.#staleIndex.size;
  }

  stats(): StoreStats {
    const stats: StoreStats = {
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      deletes: this.#deletes,
      expired: this.#expired,
      evicted: this.#evicted,
      size: this.#slots.size,
      bytes: this.#bytes,
    };
    if (this.#ledger !== null) stats.shares = this.#ledger.all();
    return stats;
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  set(key: string, value: Uint8Array, ttlMs: number, share?: string): void {
    this.#write(key, this.#live(key), value, this.#expiresAtFor(ttlMs), undefined, share);
  }

  add(key: string, value: Uint8Array, ttlMs: number, share?: string): boolean {
    if (this.#live(key) !== NONE) return false;
    this.#write(key, NONE, value, this.#expiresAtFor(ttlMs), undefined, share);
    return true;
  }

  replace(key: string, value: Uint8Array, ttlMs: number, share?: string): boolean {
    const slot = this.#live(key);
    if (slot === NONE) return false;
    this.#write(key, slot, value, this.#expiresAtFor(ttlMs), undefined, share);
    return true;
  }

  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): Uint8Array {
    const slot = this.#live(key);
    if (slot !== NONE && this.#collections.size !== 0 && this.#collections.has(slot)) throw this.#notAValue(key, slot);
    const bytes = incrementBytes(key, slot === NONE ? undefined : this.#values.peek(slot), by, init);
    const expiresAt = slot !== NONE ? this.#expiresAtOf(slot) : this.#expiresAtFor(initTtlMs);
    this.#write(key, slot, bytes, expiresAt, undefined, share);
    return bytes;
  }

  put(key: string, value: Uint8Array, options: PutOptions): PutOutcome {
    const { ifVersion } = options;
    if (options.onlyIfAbsent && ifVersion !== undefined) {
      throw new StoreError(ErrorKind.INVALID, "put: onlyIfAbsent and ifVersion cannot be combined");
    }
    const slot = this.#live(key);
    if (options.onlyIfAbsent && slot !== NONE) return "exists";
    if (ifVersion !== undefined) {
      if (slot === NONE) return "missing";
      if (formatVersion(this.#versionOf(slot)) !== ifVersion) return "conflict";
    }
    this.#write(key, slot, value, this.#expiresAtFor(options.ttlMs), options.metadata, options.share);
    return "ok";
  }

  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): void {
    if (this.#ledger !== null) return this.#setManyShared(entries, ttlMs, share, this.#ledger);
    const batch = new Set<string>();
    let newKeys = 0;
    for (const [key] of entries) {
      if (batch.has(key)) continue;
      batch.add(key);
      // A stale copy's slot is written over: not a new key.
      if (this.#live(key) === NONE && !this.#slots.has(key)) newKeys++;
    }
    if (batch.size > this.#maxSize) {
      throw new StoreError(
        ErrorKind.INVALID,
        `store ${this.id}: a batch of ${batch.size} keys can never fit (max_size ${this.#maxSize})`,
      );
    }
    if (this.#slots.size + newKeys > this.#maxSize) this.sweep();
    const excess = this.#slots.size + newKeys - this.#maxSize;
    if (excess > 0) {
      if (!this.#lru) throw this.#full(`${newKeys} new keys`);
      // Oldest first, skipping the batch's own keys: a batch that fits max_size keeps them all.
      const victims: string[] = [];
      for (const key of this.#slots.keys()) {
        if (victims.length === excess) break;
        if (!batch.has(key)) victims.push(key);
      }
      for (const key of victims) this.#evict(key);
    }
    const expiresAt = this.#expiresAtFor(ttlMs);
    for (const [key, value] of entries) this.#write(key, this.#slots.get(key) ?? NONE, value, expiresAt, undefined);
  }

  /** setMany under a quota: the ledger admits the whole batch (and names its victims) first. */
  #setManyShared(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share: string | undefined, ledger: ShareLedger): void {
    const last = new Map<string, Uint8Array>();
    for (const [key, value] of entries) {
      last.delete(key);
      last.set(key, value);
    }
    if (last.size > this.#maxSize) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: a batch of ${last.size} keys can never fit (max_size ${this.#maxSize})`);
    }
    this.sweep();
    const planned = [...last].map(([key, value]) => ({ key, slot: this.#live(key), bytes: key.length + value.length }));
    for (const victim of ledger.admit(planned, share, this.#ledgerView)) this.#evict(victim);
    const expiresAt = this.#expiresAtFor(ttlMs);
    for (const [key, value] of last) this.#write(key, this.#slots.get(key) ?? NONE, value, expiresAt, undefined, share, true);
  }

  expire(key: string, ttlMs: number): boolean {
    const slot = this.#live(key);
    if (slot === NONE) return false;
    this.#setExpiry(key, slot, this.#expiresAtFor(ttlMs));
    this.#setVersion(slot, ++this.#version);
    return true;
  }

  delete(key: string): boolean {
    const slot = this.#live(key);
    if (slot === NONE) {
      this.#dropStale(key);
      return false;
    }
    this.#drop(key, slot);
    this.#deletes++;
    return true;
  }

  deleteMany(keys: readonly string[]): number {
    let n = 0;
    for (const key of keys) if (this.delete(key)) n++;
    return n;
  }

  clear(): void {
    this.#slots.clear();
    this.#pages.length = 0;
    this.#values.clear();
    this.#metadata.clear();
    this.#collections.clear();
    this.#slotTop = 0;
    this.#freeSlots.length = 0;
    this.#expiry.clear();
    this.#staleIndex.clear();
    this.#sortedKeys?.clear();
    this.#ledger?.clear();
    this.#bytes = 0;
  }

  flush(): number {
    const live = this.size();
    this.clear();
    return live;
  }

  sweep(): number {
    const now = this.#clock.now();
    const staleFor = this.#staleFor;
    let n = 0;
    const isExpired = (key: string, by: number): boolean => {
      const slot = this.#slots.get(key);
      if (slot === undefined) return false;
      const expiresAt = this.#expiresAtOf(slot);
      return expiresAt !== 0 && expiresAt + by <= now;
    };
    this.#expiry.sweep(
      now,
      (key) => {
        const slot = this.#slots.get(key);
        // The index already let go of the key.
        if (slot === undefined) return;
        const reclaimAt = this.#expiresAtOf(slot) + staleFor;
        if (staleFor !== 0 && reclaimAt > now) {
          this.#staleIndex.add(key, reclaimAt);
          return;
        }
        this.#forget(key, slot);
        n++;
      },
      (key) => isExpired(key, 0),
    );
    if (staleFor !== 0) {
      this.#staleIndex.sweep(
        now,
        (key) => {
          const slot = this.#slots.get(key);
          if (slot === undefined) return;
          this.#forget(key, slot);
          n++;
        },
        (key) => isExpired(key, staleFor),
      );
    }
    this.#expired += n;
    return n;
  }

  /** Stops the timers; a store with a snapshot writes it one last time (unless destroyed). */
  close(): void | Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#snapshotTimer !== undefined) clearInterval(this.#snapshotTimer);
    this.#snapshotTimer = undefined;
    if (this.#closed || this.snapshotPath === undefined || this.#snapshotDestroyed) return;
    this.#closed = true;
    return this.#writeSnapshot(this.snapshotPath);
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots
  // -------------------------------------------------------------------------------------------

  /**
   * Writes the snapshot now: the entries as they are at this call, to disk atomically; resolves
   * once the file is renamed into place and its directory synced. @throws StoreError INVALID without a snapshot
   */
  commit(): Promise<void> {
    const path = this.snapshotPath;
    if (path === undefined) return Promise.reject(new StoreError(ErrorKind.INVALID, `store ${this.id} has no snapshot (registry field snapshot)`));
    if (this.#snapshotDestroyed) return Promise.reject(new StoreError(ErrorKind.INVALID, `store ${this.id}: its snapshot was destroyed`));
    return this.#writeSnapshot(path);
  }

  /** Deletes the snapshot file and writes no more (not at close either). */
  async destroy(): Promise<void> {
    const path = this.snapshotPath;
    if (path === undefined) throw new StoreError(ErrorKind.INVALID, `store ${this.id} has no snapshot (registry field snapshot)`);
    this.#snapshotDestroyed = true;
    if (this.#snapshotTimer !== undefined) clearInterval(this.#snapshotTimer);
    this.#snapshotTimer = undefined;
    await this.#snapshotWrite.catch(() => {});
    await rm(path, { force: true });
  }

  #writeSnapshot(path: string): Promise<void> {
    // Encoded now, synchronously: the snapshot is the store at this moment, whatever runs while it is written.
    const chunks = encodeSnapshot(this.#snapshotEntries());
    this.#snapshotWriting = true;
    const write = this.#snapshotWrite
      .catch(() => {})
      .then(() => writeSnapshot(path, chunks))
      .finally(() => {
        if (this.#snapshotWrite === write) this.#snapshotWriting = false;
      });
    this.#snapshotWrite = write;
    return write;
  }

  *#snapshotEntries(): Generator<SnapshotEntry> {
    const now = this.#clock.now();
    for (const [key, slot] of this.#slots) {
      const expiresAt = this.#expiresAtOf(slot);
      if (expiresAt !== 0 && expiresAt <= now) continue;
      yield { key, value: this.#values.get(slot), expiresAt, metadata: this.#metadataOf(slot) };
    }
  }

  /** Fills the new store from its snapshot file (keys that expired meanwhile stay out). */
  #loadSnapshot(path: string): void {
    const entries = readSnapshot(path);
    if (entries === undefined) return;
    const now = this.#clock.now();
    const live = entries.filter((e) => e.expiresAt === 0 || e.expiresAt > now);
    if (live.length > this.#maxSize) {
      throw new SnapshotError(path, `holds ${live.length} live entries, more than max_size ${this.#maxSize} of store ${this.id}`);
    }
    for (const e of live) this.#write(e.key, this.#slots.get(e.key) ?? NONE, e.value, e.expiresAt, e.metadata);
    // Loading is not traffic: a store starts with zero counters.
    this.#sets = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Lists
  // -------------------------------------------------------------------------------------------

  listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): number {
    const slot = this.#live(key);
    const list = slot === NONE ? undefined : this.#collectionAt(key, slot, "list");
    let added = 0;
    for (const value of values) added += value.length;
    const length = (list?.items.length ?? 0) + values.length;
    const bytes = (list?.bytes ?? 0) + added;
    checkCollectionBounds(this.id, key, "list", length, bytes);
    const [written, target] = this.#collectionWrite(key, slot, list, bytes, share, newList);
    for (const value of values) {
      // A copy when it is a view: a small view may pin a whole decoded message.
      const owned = ownedBytes(value);
      if (end === "left") target.items.pushFront(owned);
      else target.items.pushBack(owned);
    }
    this.#resized(key, written, target, bytes, share);
    return target.items.length;
  }

  listPop(key: string, end: ListEnd, count: number): Uint8Array[] {
    const slot = this.#live(key);
    if (slot === NONE) return [];
    const list = this.#collectionAt(key, slot, "list");
    const n = Math.min(count, list.items.length);
    const out = new Array<Uint8Array>(n);
    let bytes = list.bytes;
    for (let i = 0; i < n; i++) {
      const value = end === "left" ? list.items.popFront() : list.items.popBack();
      bytes -= value.length;
      out[i] = value;
    }
    this.#shrunk(key, slot, list, bytes, n);
    return out;
  }

  listLength(key: string): number {
    const slot = this.#live(key);
    return slot === NONE ? 0 : this.#collectionAt(key, slot, "list").items.length;
  }

  listRange(key: string, start: number, stop: number): Uint8Array[] {
    const slot = this.#live(key);
    if (slot === NONE) return [];
    const list = this.#collectionAt(key, slot, "list");
    const range = indexRange(start, stop, list.items.length);
    if (range === null) return [];
    const out = new Array<Uint8Array>(range[1] - range[0] + 1);
    for (let i = range[0]; i <= range[1]; i++) out[i - range[0]] = list.items.at(i);
    return out;
  }

  listTrim(key: string, start: number, stop: number): number {
    const slot = this.#live(key);
    if (slot === NONE) return 0;
    const list = this.#collectionAt(key, slot, "list");
    const length = list.items.length;
    const [from, to] = indexRange(start, stop, length) ?? [length, length - 1];
    let bytes = list.bytes;
    for (let i = 0; i < from; i++) bytes -= list.items.popFront().length;
    for (let i = to + 1; i < length; i++) bytes -= list.items.popBack().length;
    this.#shrunk(key, slot, list, bytes, length - list.items.length);
    return list.items.length;
  }

  // -------------------------------------------------------------------------------------------
  // Sorted sets
  // -------------------------------------------------------------------------------------------

  zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): number {
    const slot = this.#live(key);
    const zset = slot === NONE ? undefined : this.#collectionAt(key, slot, "zset");
    let size = zset?.set.size ?? 0;
    let bytes = zset?.bytes ?? 0;
    const seen = new Set<string>();
    for (const { member, score } of entries) {
      checkScore(this.id, key, score);
      if (seen.has(member)) continue;
      seen.add(member);
      if (zset?.set.score(member) === undefined) {
        size++;
        bytes += member.length + SCORE_BYTES;
      }
    }
    checkCollectionBounds(this.id, key, "zset", size, bytes);
    const [written, target] = this.#collectionWrite(key, slot, zset, bytes, share, newZset);
    let added = 0;
    for (const { member, score } of entries) if (target.set.add(member, score)) added++;
    this.#resized(key, written, target, bytes, share);
    return added;
  }

  zsetIncr(key: string, member: string, by: number, share?: string): number {
    const slot = this.#live(key);
    const zset = slot === NONE ? undefined : this.#collectionAt(key, slot, "zset");
    const old = zset?.set.score(member);
    const score = (old ?? 0) + by;
    checkScore(this.id, key, score);
    const size = (zset?.set.size ?? 0) + (old === undefined ? 1 : 0);
    const bytes = (zset?.bytes ?? 0) + (old === undefined ? member.length + SCORE_BYTES : 0);
    checkCollectionBounds(this.id, key, "zset", size, bytes);
    const [written, target] = this.#collectionWrite(key, slot, zset, bytes, share, newZset);
    target.set.add(member, score);
    this.#resized(key, written, target, bytes, share);
    return score;
  }

  zsetScore(key: string, member: string): number | undefined {
    const slot = this.#live(key);
    return slot === NONE ? undefined : this.#collectionAt(key, slot, "zset").set.score(member);
  }

  zsetRank(key: string, member: string, reverse: boolean): number | undefined {
    const slot = this.#live(key);
    return slot === NONE ? undefined : this.#collectionAt(key, slot, "zset").set.rank(member, reverse);
  }

  zsetRange(key: string, range: ZsetRange): ZsetEntry[] {
    const slot = this.#live(key);
    if (slot === NONE) return [];
    const { set } = this.#collectionAt(key, slot, "zset");
    if (range.by === "score") return set.rangeByScore(range.min, range.max, range.reverse, range.limit);
    const ranks = indexRange(range.start, range.stop, set.size);
    return ranks === null ? [] : set.rangeByRank(ranks[0], ranks[1], range.reverse, range.limit);
  }

  zsetRemove(key: string, members: readonly string[]): number {
    const slot = this.#live(key);
    if (slot === NONE) return 0;
    const zset = this.#collectionAt(key, slot, "zset");
    let removed = 0;
    let bytes = zset.bytes;
    for (const member of members) {
      if (!zset.set.remove(member)) continue;
      removed++;
      bytes -= member.length + SCORE_BYTES;
    }
    this.#shrunk(key, slot, zset, bytes, removed);
    return removed;
  }

  zsetCard(key: string): number {
    const slot = this.#live(key);
    return slot === NONE ? 0 : this.#collectionAt(key, slot, "zset").set.size;
  }

  // -------------------------------------------------------------------------------------------
  // Multi-key transactions
  // -------------------------------------------------------------------------------------------

  atomic(tx: AtomicWrite, share?: string): AtomicOutcome {
    for (const [key, version] of tx.checks) {
      const slot = this.#live(key);
      if (version === null ? slot !== NONE : slot === NONE || formatVersion(this.#versionOf(slot)) !== version) return { ok: false, conflict: key };
    }
    // Everything that can fail is decided before the first change: new numbers, then room.
    const incremented = tx.incr.map(([key, by]) => {
      const slot = this.#live(key);
      if (slot !== NONE && this.#collections.size !== 0 && this.#collections.has(slot)) throw this.#notAValue(key, slot);
      return incrementBytes(key, slot === NONE ? undefined : this.#values.peek(slot), by, ZERO_INIT);
    });
    const writes: [string, Uint8Array][] = [...tx.set.map(([key, value]): [string, Uint8Array] => [key, value])];
    for (let i = 0; i < tx.incr.length; i++) writes.push([tx.incr[i]![0], incremented[i]!]);
    this.#roomForAtomic(tx, writes, share);
    for (const key of tx.delete) {
      const slot = this.#live(key);
      if (slot === NONE) {
        this.#dropStale(key);
        continue;
      }
      this.#drop(key, slot);
      this.#deletes++;
    }
    const expiresAt = this.#expiresAtFor(tx.ttlMs);
    for (const [key, value] of tx.set) this.#write(key, this.#live(key), value, expiresAt, undefined, share, true);
    for (let i = 0; i < tx.incr.length; i++) {
      const key = tx.incr[i]![0];
      const slot = this.#live(key);
      this.#write(key, slot, incremented[i]!, slot === NONE ? expiresAt : this.#expiresAtOf(slot), undefined, share, true);
    }
    return { ok: true, incr: incremented };
  }

  /** Makes room for an atomic write's new keys (its deletes free theirs first), or throws as setMany does. */
  #roomForAtomic(tx: AtomicWrite, writes: readonly (readonly [string, Uint8Array])[], share: string | undefined): void {
    const ledger = this.#ledger;
    if (ledger !== null) {
      const planned = writes.map(([key, value]) => ({ key, slot: this.#live(key), bytes: key.length + value.length }));
      let victims: string[];
      try {
        victims = ledger.admit(planned, share, this.#ledgerView);
      } catch (err) {
        if (this.sweep() === 0) throw err;
        victims = ledger.admit(planned, share, this.#ledgerView);
      }
      const deleted = new Set(tx.delete);
      for (const victim of victims) if (!deleted.has(victim)) this.#evict(victim);
      return;
    }
    const touched = new Set<string>(writes.map(([key]) => key));
    if (touched.size > this.#maxSize) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: a transaction of ${touched.size} keys can never fit (max_size ${this.#maxSize})`);
    }
    let newKeys = 0;
    // A stale copy gives its slot to the write that replaces it.
    for (const key of touched) if (this.#live(key) === NONE && !this.#slots.has(key)) newKeys++;
    for (const key of tx.delete) if (this.#live(key) !== NONE) newKeys--;
    if (this.#slots.size + newKeys > this.#maxSize) this.sweep();
    const excess = this.#slots.size + newKeys - this.#maxSize;
    if (excess <= 0) return;
    if (!this.#lru) throw this.#full(`${newKeys} new keys`);
    const victims: string[] = [];
    const deleted = new Set(tx.delete);
    for (const key of this.#slots.keys()) {
      if (victims.length === excess) break;
      if (!touched.has(key) && !deleted.has(key)) victims.push(key);
    }
    for (const key of victims) this.#evict(key);
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  #notAValue(key: string, slot: number): StoreError {
    return wrongType(this.id, key, this.#collections.get(slot)!.kind, "value");
  }

  /** The collection of `kind` at the live `slot`; INVALID when the key holds anything else. */
  #collectionAt<K extends CollectionKind>(key: string, slot: number, kind: K): Extract<Collection, { kind: K }> {
    const collection = this.#collections.size === 0 ? undefined : this.#collections.get(slot);
    if (collection === undefined) throw wrongType(this.id, key, "value", kind);
    if (collection.kind !== kind) throw wrongType(this.id, key, collection.kind, kind);
    return collection as Extract<Collection, { kind: K }>;
  }

  /**
   * The write step of a collection change that may grow it to `newItemBytes`: admits the key at its
   * new size (quota, max_size) as a value write would, creates the key (no TTL) when `current` is
   * undefined, bumps the version and counts the write. The caller then changes the items and calls
   * #resized. Returns the key's slot and its collection.
   */
  #collectionWrite<C extends Collection>(
    key: string,
    slot: number,
    current: C | undefined,
    newItemBytes: number,
    share: string | undefined,
    create: () => C,
  ): [number, C] {
    if (current === undefined && this.#staleFor !== 0) this.#dropStale(key);
    const ledger = this.#ledger;
    if (ledger !== null) {
      const planned = [{ key, slot, bytes: key.length + newItemBytes }];
      let victims: string[];
      try {
        victims = ledger.admit(planned, share, this.#ledgerView);
      } catch (err) {
        // Expired keys not yet swept still count in their shares: reclaim them, then decide.
        if (this.sweep() === 0) throw err;
        victims = ledger.admit(planned, share, this.#ledgerView);
      }
      for (const victim of victims) this.#evict(victim);
    }
    if (current === undefined) {
      this.#store(key, NONE, NO_VALUE, 0, undefined, ledger !== null);
      const created = this.#slots.get(key)!;
      const collection = create();
      this.#collections.set(created, collection);
      ledger?.added(key, created, key.length, share);
      return [created, collection];
    }
    this.#setVersion(slot, ++this.#version);
    this.#sets++;
    if (this.#lru) this.#touch(key, slot);
    return [slot, current];
  }

  /** Records a collection's new item bytes (in #bytes and the ledger; `share` wrote it). */
  #resized(key: string, slot: number, collection: Collection, bytes: number, share: string | undefined): void {
    const old = collection.bytes;
    collection.bytes = bytes;
    this.#bytes += bytes - old;
    this.#ledger?.rewritten(key, slot, key.length + old, key.length + bytes, share);
  }

  /** After `removed` items were taken out: the key goes when none is left, else it is rewritten smaller. */
  #shrunk(key: string, slot: number, collection: Collection, bytes: number, removed: number): void {
    if (removed === 0) return;
    if (collectionSize(collection) === 0) {
      this.#drop(key, slot);
      return;
    }
    this.#resized(key, slot, collection, bytes, undefined);
    this.#setVersion(slot, ++this.#version);
    this.#sets++;
    if (this.#lru) this.#touch(key, slot);
  }


  /**
   * The slot of the live entry for `key` (NONE when missing), removing it first when it has expired
   * (a stale copy within stale_for stays, for getStale).
   */
  #live(key: string): number {
    const slot = this.#slots.get(key);
    if (slot === undefined) return NONE;
    const expiresAt = this.#expiresAtOf(slot);
    if (expiresAt !== 0) {
      const now = this.#clock.now();
      if (expiresAt <= now) {
        if (expiresAt + this.#staleFor <= now) {
          this.#drop(key, slot);
          this.#expired++;
        }
        return NONE;
      }
    }
    return slot;
  }

  /** Drops the stale copy of `key`, if it has one (a write or delete of the key replaces it). */
  #dropStale(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#drop(key, slot);
    this.#expired++;
  }

  #expiresAtFor(ttlMs: number): number {
    return ttlMs > 0 ? this.#clock.now() + ttlMs : 0;
  }

  #metadataOf(slot: number): Uint8Array | undefined {
    return this.#metadata.size === 0 ? undefined : this.#metadata.get(slot);
  }

  /** Key, value (or collection items) and metadata bytes of the entry at `slot`, as #bytes counts them. */
  #entryBytes(key: string, slot: number): number {
    const items = this.#collections.size === 0 ? 0 : (this.#collections.get(slot)?.bytes ?? 0);
    return key.length + this.#values.length(slot) + items + (this.#metadataOf(slot)?.length ?? 0);
  }

  /**
   * Stores `value` at `key`, over `slot` (its live entry's) or as a new key (slot NONE), making
   * room first when the store is full (under a quota: what the ledger admits, unless `admitted`
   * says the caller did). Every write replaces the metadata and bumps the version.
   */
  #write(
    key: string,
    slot: number,
    value: Uint8Array,
    expiresAt: number,
    metadata: Uint8Array | undefined,
    share?: string,
    admitted = false,
  ): void {
    if (slot === NONE && this.#staleFor !== 0) this.#dropStale(key);
    const ledger = this.#ledger;
    if (ledger !== null) {
      const newBytes = key.length + value.length + (metadata?.length ?? 0);
      if (!admitted) {
        const planned = [{ key, slot, bytes: newBytes }]; // `slot` is live: the sweep keeps it
        let victims: string[];
        try {
          victims = ledger.admit(planned, share, this.#ledgerView);
        } catch (err) {
          // Expired keys not yet swept still count in their shares: reclaim them, then decide.
          if (this.sweep() === 0) throw err;
          victims = ledger.admit(planned, share, this.#ledgerView);
        }
        for (const victim of victims) this.#evict(victim);
      }
      const oldBytes = slot === NONE ? 0 : this.#entryBytes(key, slot);
      this.#store(key, slot, value, expiresAt, metadata, true);
      const written = this.#slots.get(key)!;
      if (slot === NONE) ledger.added(key, written, newBytes, share);
      else ledger.rewritten(key, written, oldBytes, newBytes, share);
      return;
    }
    this.#store(key, slot, value, expiresAt, metadata, false);
  }

  #store(key: string, slot: number, value: Uint8Array, expiresAt: number, metadata: Uint8Array | undefined, roomMade: boolean): void {
    if (slot !== NONE) {
      this.#setExpiry(key, slot, expiresAt);
      const oldMetadata = this.#metadataOf(slot);
      if (oldMetadata !== undefined) {
        this.#metadata.delete(slot);
        this.#bytes -= oldMetadata.length;
      }
      // A value written over a list or sorted set replaces it, as Redis SET does.
      const collection = this.#collections.size === 0 ? undefined : this.#collections.get(slot);
      if (collection !== undefined) {
        this.#collections.delete(slot);
        this.#bytes -= collection.bytes;
      }
      this.#bytes -= this.#values.set(slot, value);
      if (this.#lru) this.#touch(key, slot);
    } else {
      if (!roomMade && this.#slots.size >= this.#maxSize) this.#makeRoom();
      // A key built by concatenation is a chain of V8 cons strings (32 B per link): reading a
      // char flattens it, and the garbage collector then drops the chain.
      key.charCodeAt(0);
      slot = this.#newSlot();
      this.#slots.set(key, slot);
      this.#setExpiresAt(slot, expiresAt);
      if (expiresAt !== 0) this.#expiry.add(key, expiresAt);
      this.#sortedKeys?.insert(key);
      this.#bytes += key.length;
      this.#values.set(slot, value);
    }
    this.#bytes += value.length;
    if (metadata !== undefined) {
      // A copy when it is a view: a small view may pin a whole decoded message.
      this.#metadata.set(slot, ownedBytes(metadata));
      this.#bytes += metadata.length;
    }
    this.#setVersion(slot, ++this.#version);
    this.#sets++;
  }

  #newSlot(): number {
    const reused = this.#freeSlots.pop();
    if (reused !== undefined) return reused;
    const slot = this.#slotTop++;
    if ((slot & (PAGE_SLOTS - 1)) === 0) this.#pages.push(new Float64Array(2 * PAGE_SLOTS));
    return slot;
  }

  #versionOf(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]![(slot & (PAGE_SLOTS - 1)) << 1]!;
  }

  #setVersion(slot: number, version: number): void {
    this.#pages[slot >>> PAGE_BITS]![(slot & (PAGE_SLOTS - 1)) << 1] = version;
  }

  #expiresAtOf(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS]![((slot & (PAGE_SLOTS - 1)) << 1) + 1]!;
  }

  #setExpiresAt(slot: number, expiresAt: number): void {
    this.#pages[slot >>> PAGE_BITS]![((slot & (PAGE_SLOTS - 1)) << 1) + 1] = expiresAt;
  }

  #setExpiry(key: string, slot: number, expiresAt: number): void {
    const current = this.#expiresAtOf(slot);
    if (current === expiresAt) return;
    if (current !== 0) this.#unindex(key, current);
    if (expiresAt !== 0) this.#expiry.add(key, expiresAt);
    this.#setExpiresAt(slot, expiresAt);
  }

  /** Map order is the LRU order: moves the key to the most-recent end (of its share's too). */
  #touch(key: string, slot: number): void {
    this.#slots.delete(key);
    this.#slots.set(key, slot);
    this.#ledger?.touched(key, slot);
  }

  /** Frees one slot for a new key: expired entries first, then LRU eviction, else refuse. */
  #makeRoom(): void {
    this.sweep();
    if (this.#slots.size < this.#maxSize) return;
    if (!this.#lru) throw this.#full("a new key");
    const oldest = this.#slots.keys().next();
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
    this.#drop(key, this.#slots.get(key)!);
    this.#evicted++;
  }

  /** Removes the entry of `key` at `slot`, from the expiry index too. */
  #drop(key: string, slot: number): void {
    const expiresAt = this.#expiresAtOf(slot);
    if (expiresAt !== 0) this.#unindex(key, expiresAt);
    this.#forget(key, slot);
  }

  /** Removes `key`, expiring at `expiresAt`, from whichever expiry index holds it. */
  #unindex(key: string, expiresAt: number): void {
    this.#expiry.remove(key, expiresAt);
    if (this.#staleFor !== 0) this.#staleIndex.remove(key, expiresAt + this.#staleFor);
  }

  /** Removes the entry of `key` at `slot` from everything but the expiry index, and frees the slot. */
  #forget(key: string, slot: number): void {
    this.#ledger?.removed(key, slot, this.#entryBytes(key, slot));
    this.#slots.delete(key);
    this.#sortedKeys?.delete(key);
    this.#bytes -= this.#entryBytes(key, slot);
    if (this.#metadata.size !== 0) this.#metadata.delete(slot);
    if (this.#collections.size !== 0) this.#collections.delete(slot);
    this.#values.delete(slot);
    this.#setExpiresAt(slot, 0);
    this.#freeSlots.push(slot);
  }
}

/**
 * An empty array whose elements kind already holds objects: a fresh `[]` holds small integers
 * until its first push, so the code that pushes would deoptimize once per new store.
 */
function emptyObjectArray<T extends object>(): T[] {
  const array = [undefined] as unknown as T[];
  array.length = 0;
  return array;
}

/** 16 hex digits: fixed width, so versions also sort in write order (the counter stays below 2^53). */
function formatVersion(version: number): string {
  return version.toString(16).padStart(16, "0");
}

function newList(): MemoryList {
  return { kind: "list", items: new Deque<Uint8Array>(), bytes: 0 };
}

function newZset(): MemoryZset {
  return { kind: "zset", set: new SortedSet(), bytes: 0 };
}

/** Items a collection holds. */
function collectionSize(collection: Collection): number {
  return collection.kind === "list" ? collection.items.length : collection.set.size;
}

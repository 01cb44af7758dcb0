/**
 * `store.memory` in a shared-memory zone: the Store semantics (TTLs, max_size, eviction, CAS,
 * versions, list pages) over a {@link Zone} that the host thread and Lua workers map at once.
 *
 * Every call takes the lock of its key's shard (a call on many keys, or on the order across
 * them, every shard's: see Zone, Locks), runs as one operation of an undo log and commits, so a
 * thread that dies mid-call leaves it applied whole or not at all. A write that finds no room
 * (max_size, or no block of max_memory free) is rolled back, room is made holding every shard,
 * as its own committed steps (expired keys first, then a merge of free space, then LRU
 * eviction, or under eviction none a refusal), and the write runs again from the start.
 *
 * Semantics follow ./memory.ts (the Map store), which the store suite holds both to: recency
 * moves on get, getMany, entry and every write; has, ttl, expire and list leave it.
 */
import type { Clock } from "../../clock.js";
import { ErrorKind, StoreError } from "../../errors.js";
import type { MemoryStoreConfig } from "../../registry/types.js";
import { incrementBytes } from "../numbers.js";
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
  MaybePromise,
  PutOptions,
  PutOutcome,
  StaleValue,
  Store,
  StoreInfo,
  StoreStats,
  ZsetEntry,
  ZsetRange,
} from "../store.js";
import { checkCollectionBounds, checkListLimit, checkScore, indexRange, LIST_MAX_EXPIRED_PER_PAGE, SCORE_BYTES, wrongType } from "../store.js";
import { F_DELETES, F_EVICTED, F_EXPIRED, F_SETS, SKIP_MAX_LEVEL, TAG_LIST, TAG_STRING, TAG_ZSET } from "./layout.js";
import { hashKey, LOG_FULL, NEED_ALL, randomLevel, Zone } from "./zone.js";
import { listDrop, listLength, listPop, listPush, listPushBytes, listRange, newListDescriptor } from "./zone-list.js";
import {
  newZsetDescriptor,
  scoreOf,
  zsetAddBytes,
  zsetCount,
  zsetDelete,
  zsetFind,
  zsetInsert,
  zsetRangeByRank,
  zsetRangeByScore,
  zsetRank,
  zsetRescore,
} from "./zone-zset.js";

/** The zone's size when the registry gives no max_memory (configs built in code). */
export const DEFAULT_MAX_MEMORY = 64 * 1024 * 1024;

export interface ZoneStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer (the host's store does; workers leave sweeping to it). */
  sweepTimer?: boolean;
}

/** What a write that found no room needs: new keys beyond max_size, or bytes of blocks. */
const room = { slots: 0, bytes: 0 };
/** Thrown (never escapes this file) by a write that found no room, after setting `room`. */
const ROOM = new Error("zone: no room");

function needRoom(slots: number, bytes: number): never {
  room.slots = slots;
  room.bytes = bytes;
  throw ROOM;
}

/** Keys a write must not evict to make its own room. */
type Keep = string | ReadonlySet<string> | undefined;

/** Where an incr of a missing key starts (s:atomic's incr). */
const ZERO_INIT: LuaNumber = { value: 0, float: false };

/** Blocks of discarded collections freed after each call (each batch its own committed step). */
const RECLAIM_PER_CALL = 512;
const RECLAIM_BATCH = 64;

export class ZoneStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind = "store.memory" as const;
  readonly config: MemoryStoreConfig;
  readonly zone: Zone;
  readonly #clock: Clock;
  readonly #maxSize: number;
  readonly #lru: boolean;
  /** Milliseconds an expired entry stays readable by getStale (0: none). */
  readonly #staleFor: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(config: MemoryStoreConfig, zone: Zone, options: ZoneStoreOptions) {
    if (config.quota !== undefined) {
      throw new StoreError(ErrorKind.INVALID, `store ${config.id}: a zone-backed memory store does not take a quota yet`);
    }
    this.id = config.id;
    this.config = config;
    this.zone = zone;
    this.#clock = options.clock;
    this.#maxSize = zone.maxSize;
    this.#lru = zone.lru;
    this.#staleFor = config.staleForMs ?? 0;
    if (options.sweepTimer ?? false) {
      this.#timer = setInterval(() => void Promise.resolve(this.sweep()).catch(() => {}), config.cleanupIntervalMs);
      // The timer must not keep a CLI process alive.
      this.#timer.unref();
    }
  }

  /** The zone's memory: what a worker passes to attachZone. */
  get buffer(): SharedArrayBuffer {
    return this.zone.buffer;
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  get(key: string): MaybePromise<Uint8Array | undefined> {
    const z = this.zone;
    const h = hashKey(key);
    if (!this.#lru) {
      // Lock-free first (see Zone.readUnlocked); the lock only when that cannot tell.
      const value = z.readUnlocked(key, h, this.#clock);
      if (value !== null) {
        z.countRead(value === undefined ? 1 : 0);
        return value;
      }
    }
    return this.#onKey(h, () => this.#getOne(key, h));
  }

  /**
   * Stale copies (stale_for) are entries the sweep keeps until expiry + stale_for: every other
   * read takes an expired entry as missing, this one answers it flagged.
   */
  getStale(key: string): MaybePromise<Uint8Array | StaleValue | undefined> {
    if (this.#staleFor === 0) return this.get(key);
    const h = hashKey(key);
    return this.#onKey(h, (): Uint8Array | StaleValue | undefined => {
      const z = this.zone;
      const rec = z.find(key, h);
      if (rec !== 0) {
        const expiresAt = z.expiresAt(rec);
        const now = this.#clock.now();
        if (expiresAt !== 0 && expiresAt <= now && expiresAt + this.#staleFor > now) {
          if (z.tagOf(rec) !== TAG_STRING) throw this.#notAValue(key, rec);
          z.countRead(1);
          return { stale: z.copyValue(rec) };
        }
      }
      return this.#getOne(key, h);
    });
  }

  /** get under the lock (for get and getMany). */
  #getOne(key: string, h: number): Uint8Array | undefined {
    const z = this.zone;
    const rec = this.#live(key, h);
    if (rec === 0) {
      z.countRead(1);
      return undefined;
    }
    if (z.tagOf(rec) !== TAG_STRING) throw this.#notAValue(key, rec);
    z.countRead(0);
    if (this.#lru) z.touch(rec);
    return z.copyValue(rec);
  }

  getMany(keys: readonly string[]): MaybePromise<(Uint8Array | undefined)[]> {
    return this.#locked(() => {
      const values = new Array<Uint8Array | undefined>(keys.length);
      for (let i = 0; i < keys.length; i++) values[i] = this.#getOne(keys[i]!, hashKey(keys[i]!));
      return values;
    });
  }

  has(key: string): MaybePromise<boolean> {
    const h = hashKey(key);
    return this.#onKey(h, () => this.#live(key, hashKey(key)) !== 0);
  }

  ttl(key: string): MaybePromise<number | undefined> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) return undefined;
      const expiresAt = this.zone.expiresAt(rec);
      // Clock time may be fractional; a live key always has at least 1 ms left.
      return expiresAt === 0 ? 0 : Math.ceil(expiresAt - this.#clock.now());
    });
  }

  entry(key: string): MaybePromise<EntryRecord | undefined> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      const rec = this.#live(key, h);
      if (rec === 0) {
        z.countRead(1);
        return undefined;
      }
      if (z.tagOf(rec) !== TAG_STRING) throw this.#notAValue(key, rec);
      z.countRead(0);
      if (this.#lru) z.touch(rec);
      const record: EntryRecord = { value: z.copyValue(rec), version: formatVersion(z.version(rec)), expiresAt: z.expiresAt(rec) };
      const metadata = z.copyMetadata(rec);
      if (metadata !== undefined) record.metadata = metadata;
      return record;
    });
  }

  list(options: ListOptions): MaybePromise<ListPage> {
    const { prefix, after, limit } = options;
    checkListLimit(limit);
    return this.#locked(() => {
      const z = this.zone;
      const now = this.#clock.now();
      const keys: ListedKey[] = [];
      let expired = 0;
      let lastVisited: string | undefined;
      let hasMore = false;
      const afterApplies = after !== undefined && after >= prefix;
      let rec = afterApplies ? z.seek(after, false) : z.seek(prefix, true);
      while (rec !== 0 && z.keyStartsWith(rec, prefix)) {
        const next = z.nextInOrder(rec);
        const expiresAt = z.expiresAt(rec);
        if (expiresAt !== 0 && expiresAt <= now) {
          if (expired === LIST_MAX_EXPIRED_PER_PAGE) {
            hasMore = true;
            break;
          }
          lastVisited = z.keyOf(rec);
          // A stale copy stays for getStale; it still costs this page a step.
          if (expiresAt + this.#staleFor <= now) {
            z.remove(rec);
            z.count(F_EXPIRED);
          }
          expired++;
        } else {
          if (keys.length === limit) {
            hasMore = true;
            break;
          }
          const key = z.keyOf(rec);
          const metadata = z.copyMetadata(rec);
          keys.push(metadata === undefined ? { key } : { key, metadata });
          lastVisited = key;
        }
        rec = next;
      }
      return hasMore ? { keys, cursor: lastVisited!, hasMore } : { keys, hasMore };
    });
  }

  info(share?: string): MaybePromise<StoreInfo> {
    void share; // no quota on a zone yet, so no share to report
    return this.#locked(() => {
      this.#sweepLocked();
      // max_memory bounds a zone's bytes: what an allocation could still find is free.
      return { size: this.#liveSize(), bytes: this.zone.bytes, freeBytes: this.zone.freeBytes(), maxSize: this.#maxSize, eviction: this.config.eviction };
    });
  }

  size(): MaybePromise<number> {
    return this.#locked(() => {
      this.#sweepLocked();
      return this.#liveSize();
    });
  }

  stats(): MaybePromise<StoreStats> {
    return this.#locked(() => {
      const z = this.zone;
      return {
        hits: z.readCount(0),
        misses: z.readCount(1),
        sets: z.counter(F_SETS),
        deletes: z.counter(F_DELETES),
        expired: z.counter(F_EXPIRED),
        evicted: z.counter(F_EVICTED),
        size: z.size,
        bytes: z.bytes,
      };
    });
  }

  /** Walks the whole zone under its lock; the problems found (empty: consistent). */
  verify(): MaybePromise<string[]> {
    return this.#locked(() => this.zone.verify());
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  set(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<void> {
    void share;
    const expiresAt = this.#expiresAtFor(ttlMs);
    const h = hashKey(key);
    return this.#onKey(h, () => {
      this.#store(key, h, this.#live(key, h), value, undefined, expiresAt);
    }, key);
  }

  add(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<boolean> {
    void share;
    const expiresAt = this.#expiresAtFor(ttlMs);
    const h = hashKey(key);
    return this.#onKey(h, () => {
      if (this.#live(key, h) !== 0) return false;
      this.#store(key, h, 0, value, undefined, expiresAt);
      return true;
    }, key);
  }

  replace(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<boolean> {
    void share;
    const expiresAt = this.#expiresAtFor(ttlMs);
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) return false;
      this.#store(key, h, rec, value, undefined, expiresAt);
      return true;
    }, key);
  }

  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): MaybePromise<Uint8Array> {
    void share;
    const initExpiresAt = this.#expiresAtFor(initTtlMs);
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      const rec = this.#live(key, h);
      const bytes = incrementBytes(key, rec === 0 ? undefined : this.#valueOf(key, rec), by, init);
      this.#store(key, h, rec, bytes, undefined, rec === 0 ? initExpiresAt : z.expiresAt(rec));
      return bytes;
    }, key);
  }

  put(key: string, value: Uint8Array, options: PutOptions): MaybePromise<PutOutcome> {
    const { ifVersion, onlyIfAbsent, metadata } = options;
    if (onlyIfAbsent && ifVersion !== undefined) {
      throw new StoreError(ErrorKind.INVALID, "put: onlyIfAbsent and ifVersion cannot be combined");
    }
    const expiresAt = this.#expiresAtFor(options.ttlMs);
    const h = hashKey(key);
    return this.#onKey(h, (): PutOutcome => {
      const rec = this.#live(key, h);
      if (onlyIfAbsent && rec !== 0) return "exists";
      if (ifVersion !== undefined) {
        if (rec === 0) return "missing";
        if (formatVersion(this.zone.version(rec)) !== ifVersion) return "conflict";
      }
      this.#store(key, h, rec, value, metadata, expiresAt);
      return "ok";
    }, key);
  }

  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): MaybePromise<void> {
    void share;
    // The last value of a repeated key wins, and its recency is that of its last write.
    const last = new Map<string, Uint8Array>();
    for (const [key, value] of entries) {
      last.delete(key);
      last.set(key, value);
    }
    if (last.size > this.#maxSize) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: a batch of ${last.size} keys can never fit (max_size ${this.#maxSize})`);
    }
    if (last.size === 0) return;
    const expiresAt = this.#expiresAtFor(ttlMs);
    const keys = [...last.keys()];
    const hashes = keys.map(hashKey);
    const recs = new Int32Array(keys.length);
    return this.#locked(() => {
      const z = this.zone;
      let newKeys = 0;
      for (let i = 0; i < keys.length; i++) {
        recs[i] = this.#live(keys[i]!, hashes[i]!);
        // A stale copy gives its place to the write that replaces it.
        if (recs[i] === 0 && (this.#staleFor === 0 || z.find(keys[i]!, hashes[i]!) === 0)) newKeys++;
      }
      if (z.size + newKeys > this.#maxSize) needRoom(newKeys, 0);
      for (let i = 0; i < keys.length; i++) this.#store(keys[i]!, hashes[i]!, recs[i]!, last.get(keys[i]!)!, undefined, expiresAt, last);
    }, new Set(keys));
  }

  expire(key: string, ttlMs: number): MaybePromise<boolean> {
    const expiresAt = this.#expiresAtFor(ttlMs);
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) return false;
      this.zone.setExpiry(rec, expiresAt);
      this.zone.nextVersion(rec, false);
      return true;
    });
  }

  delete(key: string): MaybePromise<boolean> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) {
        this.#dropStale(key, h);
        return false;
      }
      this.zone.remove(rec);
      this.zone.count(F_DELETES);
      return true;
    });
  }

  clear(): MaybePromise<void> {
    return this.#locked(() => this.zone.clear());
  }

  /**
   * One zone operation under the lock: the checks, then deletes, sets and increments. A check that
   * fails returns before anything changes; any failure after it (a non-number to increment, no
   * room) rolls the whole operation back from the undo log, so other threads never see part of it.
   * A write that needs room is rolled back, room is made (never from the transaction's own keys)
   * and the transaction runs again from its checks.
   */
  atomic(tx: AtomicWrite, share?: string): MaybePromise<AtomicOutcome> {
    void share;
    const keep = new Set<string>();
    for (const [key] of tx.set) keep.add(key);
    for (const [key] of tx.incr) keep.add(key);
    if (keep.size > this.#maxSize) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: a transaction of ${keep.size} keys can never fit (max_size ${this.#maxSize})`);
    }
    for (const key of tx.delete) keep.add(key);
    for (const [key] of tx.checks) keep.add(key);
    const expiresAt = this.#expiresAtFor(tx.ttlMs);
    return this.#locked((): AtomicOutcome => {
      const z = this.zone;
      for (const [key, version] of tx.checks) {
        const rec = this.#live(key, hashKey(key));
        if (version === null ? rec !== 0 : rec === 0 || formatVersion(z.version(rec)) !== version) return { ok: false, conflict: key };
      }
      for (const key of tx.delete) {
        const h = hashKey(key);
        const rec = this.#live(key, h);
        if (rec === 0) {
          this.#dropStale(key, h);
          continue;
        }
        z.remove(rec);
        z.count(F_DELETES);
      }
      for (const [key, value] of tx.set) {
        const h = hashKey(key);
        this.#store(key, h, this.#live(key, h), value, undefined, expiresAt);
      }
      const incremented = new Array<Uint8Array>(tx.incr.length);
      for (let i = 0; i < tx.incr.length; i++) {
        const [key, by] = tx.incr[i]!;
        const h = hashKey(key);
        const rec = this.#live(key, h);
        const bytes = incrementBytes(key, rec === 0 ? undefined : this.#valueOf(key, rec), by, ZERO_INIT);
        this.#store(key, h, rec, bytes, undefined, rec === 0 ? expiresAt : z.expiresAt(rec));
        incremented[i] = bytes;
      }
      return { ok: true, incr: incremented };
    }, keep);
  }

  deleteMany(keys: readonly string[]): MaybePromise<number> {
    return this.#locked(() => {
      let n = 0;
      for (const key of keys) {
        const h = hashKey(key);
        const rec = this.#live(key, h);
        if (rec === 0) {
          this.#dropStale(key, h);
          continue;
        }
        this.zone.remove(rec);
        this.zone.count(F_DELETES);
        n++;
      }
      return n;
    });
  }

  flush(): MaybePromise<number> {
    return this.#locked(() => {
      this.#sweepLocked();
      const live = this.#liveSize();
      this.zone.clear();
      return live;
    });
  }

  sweep(): MaybePromise<number> {
    return this.#locked(() => this.#sweepLocked());
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Lists
  // -------------------------------------------------------------------------------------------

  listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): MaybePromise<number> {
    void share;
    let added = 0;
    for (const value of values) added += value.length;
    const left = end === "left";
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      let rec = this.#live(key, h);
      const desc = rec === 0 ? 0 : this.#collectionAt(key, rec, "list");
      const length = (desc === 0 ? 0 : listLength(z, desc)) + values.length;
      const bytes = (rec === 0 ? 0 : z.valueLength(rec)) + added;
      checkCollectionBounds(this.id, key, "list", length, bytes);
      const roomBytes = Zone.entryCost(key.length, SKIP_MAX_LEVEL, 0) + listPushBytes(values);
      rec = this.#collectionWrite(key, h, rec, TAG_LIST, roomBytes);
      const list = z.valueBlock(rec);
      for (const value of values) if (!listPush(z, list, left, value)) needRoom(0, roomBytes);
      z.setItemBytes(rec, bytes);
      return length;
    }, key);
  }

  listPop(key: string, end: ListEnd, count: number): MaybePromise<Uint8Array[]> {
    const left = end === "left";
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      const rec = this.#live(key, h);
      if (rec === 0) return [];
      const list = this.#collectionAt(key, rec, "list");
      const length = listLength(z, list);
      const n = Math.min(count, length);
      const out = new Array<Uint8Array>(n);
      let bytes = z.valueLength(rec);
      for (let i = 0; i < n; i++) {
        const value = listPop(z, list, left);
        bytes -= value.length;
        out[i] = value;
      }
      this.#shrunk(rec, length - n, bytes);
      return out;
    });
  }

  listLength(key: string): MaybePromise<number> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      return rec === 0 ? 0 : listLength(this.zone, this.#collectionAt(key, rec, "list"));
    });
  }

  listRange(key: string, start: number, stop: number): MaybePromise<Uint8Array[]> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) return [];
      const list = this.#collectionAt(key, rec, "list");
      const range = indexRange(start, stop, listLength(this.zone, list));
      return range === null ? [] : listRange(this.zone, list, range[0], range[1]);
    });
  }

  listTrim(key: string, start: number, stop: number): MaybePromise<number> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      const rec = this.#live(key, h);
      if (rec === 0) return 0;
      const list = this.#collectionAt(key, rec, "list");
      const length = listLength(z, list);
      const [from, to] = indexRange(start, stop, length) ?? [length, length - 1];
      const kept = to - from + 1;
      if (kept === length) return length;
      if (kept === 0) {
        z.remove(rec);
        return 0;
      }
      let bytes = z.valueLength(rec);
      if (from > 0) bytes -= listDrop(z, list, true, from);
      if (to < length - 1) bytes -= listDrop(z, list, false, length - 1 - to);
      this.#shrunk(rec, kept, bytes);
      return kept;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Sorted sets
  // -------------------------------------------------------------------------------------------

  zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): MaybePromise<number> {
    void share;
    for (const { score } of entries) checkScore(this.id, key, score);
    const hashes = entries.map(({ member }) => hashKey(member));
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      let rec = this.#live(key, h);
      let desc = rec === 0 ? 0 : this.#collectionAt(key, rec, "zset");
      // New members (a repeated one once), for the bounds before anything changes.
      let size = desc === 0 ? 0 : zsetCount(z, desc);
      let bytes = rec === 0 ? 0 : z.valueLength(rec);
      const fresh: string[] = [];
      const seen = entries.length > 1 ? new Set<string>() : undefined;
      for (let i = 0; i < entries.length; i++) {
        const { member } = entries[i]!;
        if (seen !== undefined) {
          if (seen.has(member)) continue;
          seen.add(member);
        }
        if (desc === 0 || zsetFind(z, desc, member, hashes[i]!) === 0) {
          size++;
          bytes += member.length + SCORE_BYTES;
          fresh.push(member);
        }
      }
      checkCollectionBounds(this.id, key, "zset", size, bytes);
      const roomBytes = Zone.entryCost(key.length, SKIP_MAX_LEVEL, 0) + zsetAddBytes(z, desc, fresh);
      rec = this.#collectionWrite(key, h, rec, TAG_ZSET, roomBytes);
      desc = z.valueBlock(rec);
      let added = 0;
      for (let i = 0; i < entries.length; i++) {
        const { member, score } = entries[i]!;
        const node = zsetFind(z, desc, member, hashes[i]!);
        if (node !== 0) zsetRescore(z, desc, node, member, score);
        else if (zsetInsert(z, desc, member, hashes[i]!, score)) added++;
        else needRoom(0, roomBytes);
      }
      z.setItemBytes(rec, bytes);
      return added;
    }, key);
  }

  zsetIncr(key: string, member: string, by: number, share?: string): MaybePromise<number> {
    void share;
    const mh = hashKey(member);
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      let rec = this.#live(key, h);
      let desc = rec === 0 ? 0 : this.#collectionAt(key, rec, "zset");
      const node = desc === 0 ? 0 : zsetFind(z, desc, member, mh);
      const score = (node === 0 ? 0 : scoreOf(z, node)) + by;
      checkScore(this.id, key, score);
      const size = (desc === 0 ? 0 : zsetCount(z, desc)) + (node === 0 ? 1 : 0);
      const bytes = (rec === 0 ? 0 : z.valueLength(rec)) + (node === 0 ? member.length + SCORE_BYTES : 0);
      checkCollectionBounds(this.id, key, "zset", size, bytes);
      const roomBytes = Zone.entryCost(key.length, SKIP_MAX_LEVEL, 0) + zsetAddBytes(z, desc, [member]);
      rec = this.#collectionWrite(key, h, rec, TAG_ZSET, roomBytes);
      desc = z.valueBlock(rec);
      if (node !== 0) zsetRescore(z, desc, node, member, score);
      else if (!zsetInsert(z, desc, member, mh, score)) needRoom(0, roomBytes);
      z.setItemBytes(rec, bytes);
      return score;
    }, key);
  }

  zsetScore(key: string, member: string): MaybePromise<number | undefined> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) return undefined;
      const node = zsetFind(this.zone, this.#collectionAt(key, rec, "zset"), member, hashKey(member));
      return node === 0 ? undefined : scoreOf(this.zone, node);
    });
  }

  zsetRank(key: string, member: string, reverse: boolean): MaybePromise<number | undefined> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      if (rec === 0) return undefined;
      const desc = this.#collectionAt(key, rec, "zset");
      const node = zsetFind(this.zone, desc, member, hashKey(member));
      return node === 0 ? undefined : zsetRank(this.zone, desc, node, member, reverse);
    });
  }

  zsetRange(key: string, range: ZsetRange): MaybePromise<ZsetEntry[]> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      const rec = this.#live(key, h);
      if (rec === 0) return [];
      const desc = this.#collectionAt(key, rec, "zset");
      if (range.by === "score") return zsetRangeByScore(z, desc, range.min, range.max, range.reverse, range.limit);
      const ranks = indexRange(range.start, range.stop, zsetCount(z, desc));
      return ranks === null ? [] : zsetRangeByRank(z, desc, ranks[0], ranks[1], range.reverse, range.limit);
    });
  }

  zsetRemove(key: string, members: readonly string[]): MaybePromise<number> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const z = this.zone;
      const rec = this.#live(key, h);
      if (rec === 0) return 0;
      const desc = this.#collectionAt(key, rec, "zset");
      let removed = 0;
      let bytes = z.valueLength(rec);
      for (const member of members) {
        const mh = hashKey(member);
        const node = zsetFind(z, desc, member, mh);
        if (node === 0) continue;
        zsetDelete(z, desc, node, member, mh);
        removed++;
        bytes -= member.length + SCORE_BYTES;
      }
      if (removed > 0) this.#shrunk(rec, zsetCount(z, desc), bytes);
      return removed;
    });
  }

  zsetCard(key: string): MaybePromise<number> {
    const h = hashKey(key);
    return this.#onKey(h, () => {
      const rec = this.#live(key, h);
      return rec === 0 ? 0 : zsetCount(this.zone, this.#collectionAt(key, rec, "zset"));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  /**
   * Runs `op` as one zone operation holding the lock of the shard of the key whose hashKey is
   * `h`: committed when it returns, rolled back when it throws. An operation that needs room, a
   * bigger undo log than a shard's, or (on the host thread) the global lock while a worker holds
   * it, is rolled back and runs again holding every shard. On the host thread a lock held by a
   * worker is waited for without blocking the event loop.
   */
  #onKey<T>(h: number, op: () => T, keep?: Keep): MaybePromise<T> {
    const z = this.zone;
    z.step = 0;
    const s = Zone.shardOf(h);
    if (!z.tryLockShard(s) && !z.lockShard(s)) return z.lockShardAsync(s, () => this.#run(op, keep));
    return this.#run(op, keep);
  }

  /** Runs `op` as one zone operation holding every shard (what reads or writes many keys, or the indexes across them). */
  #locked<T>(op: () => T, keep?: Keep): MaybePromise<T> {
    const z = this.zone;
    z.step = 0;
    if (!z.lockAll()) return z.lockAllAsync(() => this.#run(op, keep));
    return this.#run(op, keep);
  }

  #run<T>(op: () => T, keep: Keep): MaybePromise<T> {
    const z = this.zone;
    let held = true;
    try {
      let merged = false;
      for (;;) {
        try {
          const result = op();
          z.commit();
          if (z.hasGarbage()) this.#reclaimAfter();
          return result;
        } catch (e) {
          z.recover();
          if (z.oneShard && (e === ROOM || e === LOG_FULL || e === NEED_ALL)) {
            // Room is made (evicting any shard's keys), and the wide log used, holding every shard.
            if (z.widen()) continue;
            held = false;
            return z.lockAllAsync(() => this.#run(op, keep));
          }
          if (e === LOG_FULL) {
            throw new StoreError(ErrorKind.INVALID, `store ${this.id}: one call changes more than the zone's undo log holds; split it or raise max_memory`);
          }
          if (e !== ROOM) throw e;
          try {
            merged = this.#makeRoom(keep, merged);
          } catch (roomError) {
            z.recover(); // an eviction or sweep batch cut short
            throw roomError;
          }
        }
      }
    } finally {
      if (held) z.unlock();
    }
  }

  /**
   * After a committed operation: frees some blocks of discarded collections. Holding one shard,
   * that needs the global lock; when the host thread cannot have it at once (or a batch outgrows
   * the shard's log) the blocks wait for a later call.
   */
  #reclaimAfter(): void {
    try {
      this.#reclaim(RECLAIM_PER_CALL);
    } catch (e) {
      this.zone.recover();
      if (e !== NEED_ALL && e !== LOG_FULL) throw e;
    }
  }

  /**
   * Makes room for what `room` says, in steps each committed on its own: expired keys first, then
   * (for bytes) one merge of free space, then LRU eviction; under eviction none it refuses.
   * Returns whether free space has been merged. Each call frees something or throws.
   */
  #makeRoom(keep: Keep, merged: boolean): boolean {
    const z = this.zone;
    // A write bigger than the zone's whole block space must not evict everything first.
    if (room.bytes > z.blockSpace()) throw this.#full();
    if (z.hasGarbage()) {
      this.#reclaim(Number.POSITIVE_INFINITY);
      return merged;
    }
    if (this.#sweepLocked() > 0) return merged;
    if (room.bytes > 0 && !merged) {
      z.coalesce();
      return true;
    }
    if (!this.#lru) throw this.#full();
    const excess = z.size + room.slots - this.#maxSize;
    let evicted = 0;
    let rec = z.oldest();
    while (evicted < excess || evicted === 0 || z.freeBytes() < room.bytes) {
      while (rec !== 0 && this.#kept(rec, keep)) rec = z.newerThan(rec);
      if (rec === 0) {
        if (evicted === 0) throw this.#full();
        break;
      }
      const newer = z.newerThan(rec);
      z.remove(rec);
      z.count(F_EVICTED);
      // Commit in batches: each eviction stands on its own, and the log stays small.
      if (++evicted % 64 === 0) z.commit();
      // An evicted list or sorted set gives its blocks back only once they are freed.
      if (z.hasGarbage()) {
        z.commit();
        this.#reclaim(Number.POSITIVE_INFINITY);
      }
      rec = newer;
    }
    z.commit();
    if (room.bytes > 0) z.coalesce();
    return true;
  }

  #kept(rec: number, keep: Keep): boolean {
    if (keep === undefined) return false;
    if (typeof keep === "string") return this.zone.compareKey(rec, keep) === 0;
    return keep.has(this.zone.keyOf(rec));
  }

  #full(): StoreError {
    const what =
      room.slots > 0
        ? `(max_size ${this.#maxSize}); cannot add ${room.slots === 1 ? "a new key" : `${room.slots} new keys`}`
        : `(max_memory ${this.zone.buffer.byteLength} bytes); cannot store ${room.bytes} more bytes`;
    return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is full ${what}`, { retryable: true });
  }

  /**
   * Frees up to `limit` blocks of discarded lists and sorted sets, in batches each committed on
   * its own (a thread that dies in one leaves the others done and that one undone).
   */
  #reclaim(limit: number): void {
    const z = this.zone;
    for (let freed = 0; freed < limit && z.hasGarbage(); ) {
      freed += z.reclaim(RECLAIM_BATCH);
      z.commit();
    }
  }

  /** Removes expired entries (committed in batches) and returns how many. */
  #sweepLocked(): number {
    const z = this.zone;
    const now = this.#clock.now();
    let swept = 0;
    // The heap orders by expiry, so by expiry + stale_for too: the stale copies are kept at its top.
    const before = now - this.#staleFor;
    for (let rec = z.soonest(); rec !== 0 && z.expiresAt(rec) <= before; rec = z.soonest()) {
      z.remove(rec);
      z.count(F_EXPIRED);
      if (++swept % 128 === 0) z.commit();
    }
    z.commit();
    return swept;
  }

  /** A view of the value bytes of the live entry `rec` of `key` (valid until the next write); INVALID for a collection. */
  #valueOf(key: string, rec: number): Uint8Array {
    if (this.zone.tagOf(rec) !== TAG_STRING) throw this.#notAValue(key, rec);
    return this.zone.valueView(rec);
  }

  #notAValue(key: string, rec: number): StoreError {
    return wrongType(this.id, key, this.zone.tagOf(rec) === TAG_LIST ? "list" : "zset", "value");
  }

  /** The descriptor of the collection of `kind` at the live `rec`; INVALID when the key holds anything else. */
  #collectionAt(key: string, rec: number, kind: CollectionKind): number {
    const tag = this.zone.tagOf(rec);
    const wanted = kind === "list" ? TAG_LIST : TAG_ZSET;
    if (tag !== wanted) throw wrongType(this.id, key, tag === TAG_STRING ? "value" : tag === TAG_LIST ? "list" : "zset", kind);
    return this.zone.valueBlock(rec);
  }

  /**
   * The write step of a collection change: a missing key becomes a new, empty collection (no
   * TTL); a live one gets a new version and recency. Counts the write. Returns the entry.
   */
  #collectionWrite(key: string, h: number, rec: number, tag: number, roomBytes: number): number {
    const z = this.zone;
    if (rec === 0) {
      this.#dropStale(key, h);
      z.global();
      if (z.size >= this.#maxSize) needRoom(1, 0);
      const desc = tag === TAG_LIST ? newListDescriptor(z) : newZsetDescriptor(z);
      if (desc === 0) needRoom(0, roomBytes);
      rec = z.insertCollection(key, h, randomLevel(), tag, desc, 0);
      if (rec === 0) needRoom(0, roomBytes);
    } else {
      z.nextVersion(rec, false);
      if (this.#lru) z.touch(rec);
    }
    z.count(F_SETS);
    return rec;
  }

  /** After items were taken out of `rec`: the key goes when none is left, else it is a write like any other. */
  #shrunk(rec: number, items: number, bytes: number): void {
    const z = this.zone;
    if (items === 0) {
      z.remove(rec);
      return;
    }
    z.setItemBytes(rec, bytes);
    z.nextVersion(rec, false);
    z.count(F_SETS);
    if (this.#lru) z.touch(rec);
  }

  /** The entry of a live `key` (0 when missing), removing it first when it has expired. */
  #live(key: string, h: number): number {
    const z = this.zone;
    const rec = z.find(key, h);
    if (rec === 0) return 0;
    const expiresAt = z.expiresAt(rec);
    if (expiresAt !== 0) {
      const now = this.#clock.now();
      if (expiresAt <= now) {
        // A stale copy (within stale_for) stays for getStale.
        if (expiresAt + this.#staleFor <= now) {
          z.remove(rec);
          z.count(F_EXPIRED);
        }
        return 0;
      }
    }
    return rec;
  }

  /** Removes the stale copy of `key`, if it has one (a write or delete of the key replaces it). */
  #dropStale(key: string, h: number): void {
    if (this.#staleFor === 0) return;
    const z = this.zone;
    const rec = z.find(key, h);
    if (rec === 0) return;
    z.remove(rec);
    z.count(F_EXPIRED);
  }

  /** Entries less the stale copies a sweep kept (call after #sweepLocked). */
  #liveSize(): number {
    const z = this.zone;
    return this.#staleFor === 0 ? z.size : z.size - z.expiringBy(this.#clock.now());
  }

  /**
   * Writes `value` at `key`: over its live entry `rec`, or as a new entry (rec 0). Every write
   * replaces the metadata and bumps the version; `batch` (setMany) sizes a room request.
   */
  #store(
    key: string,
    h: number,
    rec: number,
    value: Uint8Array,
    metadata: Uint8Array | undefined,
    expiresAt: number,
    batch?: ReadonlyMap<string, Uint8Array>,
  ): void {
    const z = this.zone;
    if (rec !== 0) {
      if (!z.rewrite(rec, value, metadata)) needRoom(0, this.#bytesFor(key, value, metadata, batch));
      z.setExpiry(rec, expiresAt);
      if (this.#lru) z.touch(rec);
    } else {
      this.#dropStale(key, h);
      // The entry count is shared by every shard: read it holding the global lock.
      z.global();
      if (z.size >= this.#maxSize) needRoom(1, 0);
      if (z.insert(key, h, randomLevel(), value, metadata, expiresAt) === 0) needRoom(0, this.#bytesFor(key, value, metadata, batch));
    }
    z.count(F_SETS);
  }

  /** Bytes to free for a write (a whole batch's, for setMany): generous, with the highest level. */
  #bytesFor(key: string, value: Uint8Array, metadata: Uint8Array | undefined, batch?: ReadonlyMap<string, Uint8Array>): number {
    if (batch === undefined) return Zone.entryCost(key.length, SKIP_MAX_LEVEL, value.length + (metadata?.length ?? 0));
    let bytes = 0;
    for (const [k, v] of batch) bytes += Zone.entryCost(k.length, 4, v.length);
    return bytes;
  }

  #expiresAtFor(ttlMs: number): number {
    return ttlMs > 0 ? this.#clock.now() + ttlMs : 0;
  }
}

/** 16 hex digits, as the Map store writes them: fixed width, so versions also sort in write order. */
function formatVersion(version: number): string {
  return version.toString(16).padStart(16, "0");
}

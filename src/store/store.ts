/**
 * The store interface every backend implements (memory now; SQLite and Redis later).
 *
 * Keys are byte strings (src/bytes.ts) already validated by the caller (see validate.ts);
 * values are MessagePack bytes produced by the codec and are never mutated once stored.
 * Every method may answer synchronously or with a Promise: the memory store answers at
 * once (the hot path stays free of promise allocation), asynchronous backends return
 * promises and the runtime suspends the calling script until they settle.
 */
import { ErrorKind, StoreError } from "../errors.js";
import type { StoreConfig } from "../registry/types.js";

export type MaybePromise<T> = T | Promise<T>;

/** A Lua number: its value and whether Lua sees it as a float (`math.type`) or an integer. */
export interface LuaNumber {
  value: number;
  float: boolean;
}

/** Per-store counters, readable from the host. */
export interface StoreCounters {
  /** Value reads (get, getMany per key, entry) that found a live key. */
  hits: number;
  /** Value reads that found no live key. */
  misses: number;
  /** Writes that stored a value: set, add, replace, incr, put, and each key of setMany. */
  sets: number;
  /** `delete` calls that removed a live key. */
  deletes: number;
  /** Entries removed because their TTL passed (found on access or by a sweep). */
  expired: number;
  /** Entries removed to make room (LRU eviction). */
  evicted: number;
}

export interface StoreStats extends StoreCounters {
  /** Entries held, including expired ones not yet swept. */
  size: number;
  /** Encoded bytes held: key bytes plus value bytes plus metadata bytes. */
  bytes: number;
  /** With a quota: every share holding keys, by name, with its keys and entry bytes. */
  shares?: Record<string, ShareUsage>;
}

/** One share's usage of a store with a quota. */
export interface ShareUsage {
  keys: number;
  /** Entry bytes: key plus value plus metadata, as `bytes` counts them. */
  bytes: number;
}

/** `info()` of a store with a quota: the asking writer's share. */
export interface ShareInfo extends ShareUsage {
  /** The actor field that names shares, e.g. `actor.meta.tenant`. */
  by: string;
  share: string;
  maxKeys: number;
  maxBytes?: number;
}

/** A key as `list` returns it, with its metadata (MessagePack bytes) when it has some. */
export interface ListedKey {
  key: string;
  metadata?: Uint8Array;
}

/** Largest `list` page. */
export const LIST_MAX_LIMIT = 1000;
/**
 * Expired keys a `list` page may step over (and reclaim) before it stops early with a cursor:
 * a range full of expired, not yet swept keys must not hold the store for long.
 */
export const LIST_MAX_EXPIRED_PER_PAGE = 1000;

/** Every backend's check of a `list` page size. @throws StoreError INVALID outside 1..LIST_MAX_LIMIT */
export function checkListLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT) {
    throw new StoreError(ErrorKind.INVALID, `list limit must be an integer in 1..${LIST_MAX_LIMIT}, got ${limit}`);
  }
}

export interface ListOptions {
  /** Only keys starting with these bytes. @default "" */
  prefix: string;
  /** Only keys sorting strictly after this one (a cursor from a previous page). */
  after?: string;
  /** Page size, an integer 1..1000; others are refused with StoreError INVALID. */
  limit: number;
}

export interface ListPage {
  /**
   * Live keys sorted by their bytes. A page may hold fewer than `limit` keys, even none, while
   * `hasMore` is true (a backend may stop early, e.g. after stepping over many expired keys):
   * callers go on while `hasMore`, never until a short page.
   */
  keys: ListedKey[];
  /** Feeds `after` for the next page (the last key looked at); absent on the last page. */
  cursor?: string;
  hasMore: boolean;
}

/** A key's full record, for `entry`. */
export interface EntryRecord {
  value: Uint8Array;
  /**
   * Changes on every mutation of the key (every write, and `expire`), and is never reused by
   * the store, not even after delete + recreate or `clear`. Compare for equality only.
   */
  version: string;
  /** Expiry as clock milliseconds since the epoch; 0 = never. */
  expiresAt: number;
  metadata?: Uint8Array;
}

export interface PutOptions {
  /** 0 = no expiry (an earlier TTL is removed, as with `set`). */
  ttlMs: number;
  /** Write only when the key is missing (else "exists"). */
  onlyIfAbsent: boolean;
  /** Write only when the key exists with this version (else "missing" or "conflict"). */
  ifVersion?: string;
  /**
   * MessagePack bytes kept with the entry, returned by `entry` and `list`. Like Cloudflare KV,
   * every write replaces the metadata with the one it carries: a write without metadata (and
   * every set/add/replace/incr/setMany) removes it; `expire` keeps it.
   */
  metadata?: Uint8Array;
  /** The writer's share (stores with a quota; see Store.set). */
  share?: string;
}

/** How a conditional put ended. */
export type PutOutcome = "ok" | "exists" | "conflict" | "missing";

export interface StoreInfo {
  /** Live entries (expired ones excluded). */
  size: number;
  /** Encoded bytes held (key, value and metadata bytes, as StoreStats.bytes counts them). */
  bytes: number;
  /**
   * Bytes the backend can still take, where it has a bound: Redis with `maxmemory` set
   * (maxmemory minus used_memory of the server holding the store, all its data counted).
   * Absent where nothing bounds bytes (memory and SQLite stores are bounded by max_size).
   */
  freeBytes?: number;
  maxSize: number;
  /** The eviction policy, e.g. "none" or "lru". */
  eviction: string;
  /** With a quota and a share asked for: that share's usage and limits. */
  quota?: ShareInfo;
}

/**
 * Lists and sorted sets ("collections"): one key holds a whole list of values, or a sorted set
 * of members with scores. Such a key is a key like any other for has, ttl, expire, delete, list,
 * max_size, LRU and quotas (its bytes are its key plus its items' bytes); reading it as a value
 * (get, get_many, entry, incr) fails with StoreError INVALID, and set/add/put over it replace it,
 * as Redis SET does. A collection that loses its last item is deleted. Every change is a write:
 * the version changes and `sets` counts it.
 */
export type CollectionKind = "list" | "zset";

/** Most items (list elements, sorted-set members) one key may hold. */
export const MAX_COLLECTION_ITEMS = 1_000_000;
/** Most bytes of items one key may hold: list elements' bytes, or members' bytes plus 8 per score. */
export const MAX_COLLECTION_BYTES = 64 * 1024 * 1024;
/** Bytes a sorted-set member counts for besides its own: its score. */
export const SCORE_BYTES = 8;

/** The end of a list a push or pop works on: `left` is the head (index 0), `right` the tail. */
export type ListEnd = "left" | "right";

/** A sorted-set member and its score (a finite float or an infinity, never NaN). */
export interface ZsetEntry {
  member: string;
  score: number;
}

/**
 * A sorted-set range. Order is by score, ties by member bytes (as Redis); `reverse` walks from the
 * highest. By rank: `start..stop`, 0-based and inclusive, negative counting from the end (-1 the
 * last), ranks taken in the walk's order. By score: every member with min <= score <= max. At most
 * `limit` entries (undefined: all).
 */
export type ZsetRange =
  | { by: "rank"; start: number; stop: number; reverse: boolean; limit?: number }
  | { by: "score"; min: number; max: number; reverse: boolean; limit?: number };

/**
 * A multi-key transaction: every check holds, then every delete, set and incr is applied, or
 * nothing is. Keys of `set`, `delete` and `incr` are distinct (the caller ensures it).
 */
export interface AtomicWrite {
  /** Each key must have this version (entry().version), or be missing (null). */
  checks: readonly (readonly [string, string | null])[];
  set: readonly (readonly [string, Uint8Array])[];
  delete: readonly string[];
  /** Adds to numbers as `incr` does (a missing key starts from integer 0). */
  incr: readonly (readonly [string, LuaNumber])[];
  /** TTL of the keys set and of the keys incr creates (0 = none; an incr of a live key keeps its TTL). */
  ttlMs: number;
}

/** How an atomic write ended: applied (with each incr's new value, in `incr` order), or the first check that failed. */
export type AtomicOutcome = { ok: true; incr: Uint8Array[] } | { ok: false; conflict: string };

/** Every backend's check of collection bounds. @throws StoreError INVALID past MAX_COLLECTION_ITEMS or MAX_COLLECTION_BYTES */
export function checkCollectionBounds(storeId: string, key: string, kind: CollectionKind, items: number, bytes: number): void {
  const what = kind === "list" ? "list" : "sorted set";
  if (items > MAX_COLLECTION_ITEMS) {
    throw new StoreError(ErrorKind.INVALID, `store ${storeId}: the ${what} at ${JSON.stringify(key)} would hold ${items} items, over ${MAX_COLLECTION_ITEMS}`);
  }
  if (bytes > MAX_COLLECTION_BYTES) {
    throw new StoreError(ErrorKind.INVALID, `store ${storeId}: the ${what} at ${JSON.stringify(key)} would hold ${bytes} bytes, over ${MAX_COLLECTION_BYTES}`);
  }
}

/**
 * Indexes `start..stop` of a sequence of `length` (0-based, inclusive, negative counting from the
 * end, as Redis LRANGE) as a range `[from, to]` within 0..length-1, or null when it is empty.
 */
export function indexRange(start: number, stop: number, length: number): [number, number] | null {
  const from = Math.max(0, start < 0 ? start + length : start);
  const to = Math.min(length - 1, stop < 0 ? stop + length : stop);
  return from > to || from >= length ? null : [from, to];
}

/** Every backend's check of a score. @throws StoreError INVALID for NaN (a sorted set cannot order it) */
export function checkScore(storeId: string, key: string, score: number): void {
  if (Number.isNaN(score)) throw new StoreError(ErrorKind.INVALID, `store ${storeId}: a score of the sorted set at ${JSON.stringify(key)} would be NaN`);
}

/** The error for a key read or changed as the wrong type (a value as a list, a list as a value, ...). */
export function wrongType(storeId: string, key: string, holds: CollectionKind | "value", wanted: CollectionKind | "value"): StoreError {
  const name = (k: CollectionKind | "value") => (k === "list" ? "a list" : k === "zset" ? "a sorted set" : "a value");
  return new StoreError(ErrorKind.INVALID, `store ${storeId}: key ${JSON.stringify(key)} holds ${name(holds)}, not ${name(wanted)}`);
}

/**
 * What `getStale` answers for a key that expired less than stale_for ago: its last value, wrapped
 * so that a live value (a bare Uint8Array, the common answer) needs no object.
 */
export interface StaleValue {
  readonly stale: Uint8Array;
}

/** True when a getStale answer is a stale copy rather than a live value. */
export function isStaleValue(answer: Uint8Array | StaleValue | undefined): answer is StaleValue {
  return answer !== undefined && !(answer instanceof Uint8Array);
}

export interface Store {
  readonly id: string;
  readonly kind: StoreConfig["kind"];
  readonly config: StoreConfig;

  /** The value bytes, or undefined when missing or expired. */
  get(key: string): MaybePromise<Uint8Array | undefined>;
  /**
   * `get` that also answers a key which expired less than the store's stale_for ago, as a
   * {@link StaleValue} (OpenResty's `get_stale`). A live value answers and counts as `get` does; a
   * stale one counts as a miss and does not touch the key's recency. Without stale_for it is `get`.
   *
   * Stale copies: an expired key stays where it was, invisible to every other call, until stale_for
   * has passed since its expiry (then the sweep or the next access reclaims it). Until then it counts
   * against max_size, in bytes and in its share, like a live key, and LRU may evict it. A write of the
   * key (set, add, incr, put, setMany, atomic, a collection push) and a delete drop the stale copy.
   */
  getStale(key: string): MaybePromise<Uint8Array | StaleValue | undefined>;
  /**
   * Stores `value`; `ttlMs` 0 means no expiry (and removes an earlier TTL, as Redis SET does).
   * Fails with StoreError UNAVAILABLE (retryable) when a new key does not fit.
   *
   * `share` (every write takes one): the writer's share in a store with a quota, whose keys and
   * bytes the write counts against (it then owns the key); undefined for host-side writes,
   * which keep a key's owner and count against no share. A write past the share's quota fails
   * with StoreError RATE_LIMITED (under LRU it evicts the share's own keys first); see
   * src/store/share-ledger.ts for the rules every backend follows.
   */
  set(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<void>;
  has(key: string): MaybePromise<boolean>;
  /** True when the key existed (and was not expired). */
  delete(key: string): MaybePromise<boolean>;

  /** Set-if-absent: true when written, false when the key exists. */
  add(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<boolean>;
  /** Set-if-present: true when written, false when the key is absent. Replaces the TTL like set. */
  replace(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<boolean>;
  /**
   * Adds `by` to the number stored at `key` and returns the new value's MessagePack bytes (what
   * the Lua side pushes, so `math.type` survives). A missing or expired key starts from `init` and
   * gets `initTtlMs` (0 = none) only when created; an existing key keeps its TTL. A stored value
   * that is not a number fails with StoreError INVALID. The result is a float when the current
   * number or `by` is a float, or when an integer sum leaves the 32-bit range (fengari integers
   * are 32-bit; never wrapped), else an integer. A write: the version changes, metadata is
   * removed, `sets` counts it. The rules and encoding live in ./numbers.ts for every backend.
   */
  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): MaybePromise<Uint8Array>;
  /** Milliseconds left; 0 for no expiry; undefined when missing. */
  ttl(key: string): MaybePromise<number | undefined>;
  /**
   * Sets (ttlMs > 0) or removes (ttlMs = 0) the expiry; false when the key is missing. Changes
   * the version (every mutation does) but keeps the value and metadata.
   */
  expire(key: string, ttlMs: number): MaybePromise<boolean>;
  /** Values in the order of `keys` (undefined for missing ones). */
  getMany(keys: readonly string[]): MaybePromise<(Uint8Array | undefined)[]>;
  /**
   * Writes all entries or none: when the new keys do not fit (eviction none), or there are more
   * distinct keys than max_size, it fails as a whole (UNAVAILABLE retryable, resp. INVALID) before
   * writing anything. With LRU eviction it evicts as many other keys as it needs. A repeated key:
   * the last value wins.
   */
  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): MaybePromise<void>;
  /**
   * Deletes every key of `keys` that is live, all in one step (no reader sees some gone and others
   * not), and returns how many it deleted; each counts in `deletes`. A repeated key counts once.
   */
  deleteMany(keys: readonly string[]): MaybePromise<number>;
  /**
   * One page of live keys in byte order; never holds the store for long. A walk that feeds each
   * page's cursor to the next returns every key present for the whole walk exactly once.
   */
  list(options: ListOptions): MaybePromise<ListPage>;
  entry(key: string): MaybePromise<EntryRecord | undefined>;
  /**
   * Conditional write (compare-and-set); see PutOutcome. `onlyIfAbsent` together with
   * `ifVersion` is refused with StoreError INVALID. A new key that does not fit fails as `set`.
   */
  put(key: string, value: Uint8Array, options: PutOptions): MaybePromise<PutOutcome>;
  /** Size and limits; with a quota and `share`, that share's usage too. */
  info(share?: string): MaybePromise<StoreInfo>;

  /** Live entries right now (expired ones excluded). */
  size(): MaybePromise<number>;
  /** Removes every entry. */
  clear(): MaybePromise<void>;
  /**
   * Removes every entry, as `clear`, and returns how many live keys it removed (expired ones not
   * yet swept count as expired, not here). Versions go on from where they were.
   */
  flush(): MaybePromise<number>;
  /** Active expiry: removes expired entries now and returns how many. */
  sweep(): MaybePromise<number>;
  stats(): MaybePromise<StoreStats>;
  /** Stops timers and releases resources; the store must not be used afterwards. */
  close(): MaybePromise<void>;
  /** A memory store with a snapshot: writes it now (see src/store/snapshot.ts). */
  commit?(): MaybePromise<void>;
  /** A memory store with a snapshot: deletes the file and writes no more. */
  destroy?(): MaybePromise<void>;
}

/**
 * Lists and sorted sets (see CollectionKind), the methods a backend adds to Store for them. Every
 * backend has them; the gateway answers a call on a store without them as INVALID (see
 * `hasCollections`). Same answer rules as Store: synchronous or
 * a promise, StoreError for failures.
 */
export interface CollectionStore {
  // ---- lists ----

  /**
   * Pushes `values` (one or more), in order, onto `end` of the list at `key` (a left push of a, b
   * leaves b first, as Redis LPUSH) and returns the new length. A missing key becomes a list with
   * no TTL; an existing list keeps its TTL. INVALID when the key holds another type or the list
   * would pass the bounds; a new key that does not fit, or past the share's quota, fails as `set`.
   */
  listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): MaybePromise<number>;
  /** Removes and returns up to `count` (>= 1) elements from `end`, in the order taken; [] when missing. */
  listPop(key: string, end: ListEnd, count: number): MaybePromise<Uint8Array[]>;
  /** Elements of the list; 0 when missing. */
  listLength(key: string): MaybePromise<number>;
  /** Elements `start..stop`, 0-based and inclusive, negative counting from the end (-1 the last), as Redis LRANGE. */
  listRange(key: string, start: number, stop: number): MaybePromise<Uint8Array[]>;
  /** Keeps elements `start..stop` (as listRange) and removes the rest; returns the new length (0: the key is gone). */
  listTrim(key: string, start: number, stop: number): MaybePromise<number>;

  // ---- sorted sets (see CollectionKind; members are byte strings, scores floats, never NaN) ----

  /**
   * Sets each entry's score, adding the members that are new (a repeated member: the last score
   * wins), and returns how many were new. A missing key becomes a sorted set with no TTL. INVALID
   * when the key holds another type, a score is NaN or the set would pass the bounds; a new key
   * that does not fit, or past the share's quota, fails as `set`.
   */
  zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): MaybePromise<number>;
  /** Adds `by` to the member's score (a new member starts from 0) and returns the new score; INVALID when it would be NaN. */
  zsetIncr(key: string, member: string, by: number, share?: string): MaybePromise<number>;
  /** The member's score, or undefined when the member or the key is missing. */
  zsetScore(key: string, member: string): MaybePromise<number | undefined>;
  /** The member's 0-based rank from the lowest (from the highest with `reverse`), or undefined. */
  zsetRank(key: string, member: string, reverse: boolean): MaybePromise<number | undefined>;
  /** The members of a range (see ZsetRange) with their scores; [] when the key is missing. */
  zsetRange(key: string, range: ZsetRange): MaybePromise<ZsetEntry[]>;
  /** Removes the members there are and returns how many; a set that loses its last member is deleted. */
  zsetRemove(key: string, members: readonly string[]): MaybePromise<number>;
  /** Members of the set; 0 when missing. */
  zsetCard(key: string): MaybePromise<number>;
}

/** The CollectionStore methods by name (the allow-lists of calls that cross threads take them from here). */
export const COLLECTION_METHODS = [
  "listPush",
  "listPop",
  "listLength",
  "listRange",
  "listTrim",
  "zsetAdd",
  "zsetIncr",
  "zsetScore",
  "zsetRank",
  "zsetRange",
  "zsetRemove",
  "zsetCard",
] as const satisfies readonly (keyof CollectionStore)[];

/** True when `store` has the collection methods (every backend's store does). */
export function hasCollections(store: Store): store is Store & CollectionStore {
  return typeof (store as Partial<CollectionStore>).listPush === "function";
}

/**
 * Multi-key transactions, the method a backend adds to Store for `s:atomic`: every backend has it
 * (`atomicOf` guards a Store whose type does not say so).
 */
export interface AtomicStore {
  /**
   * Applies `tx` whole or not at all: first every check (a failed one answers `{ ok: false }`
   * naming its key, and nothing is written), then deletes, sets and increments. An incr of a value
   * that is not a number, or of a list or sorted set, is INVALID; new keys that do not fit, or past
   * the share's quota, fail as setMany does; in every failure nothing is written. On SQLite one
   * transaction, on Redis one script: atomic across processes and hosts; on the shared-memory
   * zone one operation under its lock: atomic across workers.
   */
  atomic(tx: AtomicWrite, share?: string): MaybePromise<AtomicOutcome>;
}

/** `store` with its atomic method. @throws StoreError INVALID for a backend without it */
export function atomicOf(store: Store): Store & AtomicStore {
  if (typeof (store as Partial<AtomicStore>).atomic !== "function") {
    throw new StoreError(ErrorKind.INVALID, `store ${store.id}: this backend (${store.kind}) has no atomic transactions`);
  }
  return store as Store & AtomicStore;
}

/** `store` with its collection methods. @throws StoreError INVALID for a backend without them */
export function collectionsOf(store: Store): Store & CollectionStore {
  if (!hasCollections(store)) {
    throw new StoreError(ErrorKind.INVALID, `store ${store.id}: this backend (${store.kind}) has no lists or sorted sets`);
  }
  return store;
}

/** True when `value` is a promise-like (an asynchronous backend's answer). */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof value === "object" && value !== null && typeof (value as Promise<T>).then === "function";
}

/**
 * `store.sql`: entries in one SQLite table (better-sqlite3, synchronous), durable and shareable by
 * several processes that open the same file.
 *
 * Schema (`kv` stands for `table_name`):
 * - `kv(key BLOB PRIMARY KEY, value BLOB, version INTEGER, expires_at INTEGER, metadata BLOB, used
 *   INTEGER) WITHOUT ROWID`: keys are the key bytes, so the primary key orders them as `list` needs
 *   (BLOBs compare with memcmp). `expires_at` is clock milliseconds, 0 = never.
 * - `kv_expires_at`, a partial index on `expires_at > 0`: a sweep touches only rows that expire.
 * - `kv_meta`, one row: the version counter and the row count and byte total, the last two kept by
 *   triggers so that they stay right whichever process (or statement) changes the table.
 * - `kv_used`, an index on the recency column, only with `eviction: lru`.
 * - With a quota: a `share` column (the owning share, NULL for keys written from the host, added
 *   to an older table when missing) and `kv_shares(share, keys, bytes)`, kept by triggers in the
 *   writing transaction like `kv_meta`; every write decides its admission in that transaction by
 *   the rules of src/store/share-ledger.ts, so they hold across processes.
 *
 * Durability and sharing: WAL journal with `synchronous = FULL`, so a call returns only after its
 * transaction is committed and synced (it survives a process kill and a power cut). Every call that
 * reads before it writes runs in one `BEGIN IMMEDIATE` transaction, so `add`, `incr`, `put` with a
 * version, `setMany` and the max_size check stay atomic across processes; a process that finds the
 * database locked waits up to `busy_timeout`, then fails as Unavailable (retryable). Versions come
 * from the counter in `kv_meta`, bumped inside the writing transaction, so they are unique across
 * processes and never reused. Counters (hits, misses, ...) are this process's own.
 *
 * Stale copies (stale_for): an expired row stays until stale_for after its expiry; reads and the
 * sweep reclaim only rows older than that, writes of the key replace it, and `size` leaves out the
 * expired rows a sweep kept (counted on the partial index on expires_at).
 *
 * With `eviction: lru` every read of a value is a write (it records recency from the same counter),
 * which costs a synced commit: choose lru for caches, not for read-heavy data.
 */
import { Buffer } from "node:buffer";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { QuotaConfig, SqlStoreConfig } from "../registry/types.js";
import { incrementBytes } from "./numbers.js";
import { prefixEnd } from "./prefix-range.js";
import type {
  AtomicOutcome,
  AtomicStore,
  AtomicWrite,
  CollectionKind,
  CollectionStore,
  EntryRecord,
  ZsetEntry,
  ZsetRange,
  ListEnd,
  ListedKey,
  ListOptions,
  ListPage,
  LuaNumber,
  PutOptions,
  PutOutcome,
  Store,
  ShareUsage,
  StoreInfo,
  StaleValue,
  StoreStats,
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

/** Expired rows one sweep transaction deletes: other processes get the lock between batches. */
const SWEEP_BATCH = 1000;
/** The layout this code reads and writes, kept in the meta row. */
const SCHEMA_VERSION = 2;

export interface SqlStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer. @default true */
  sweepTimer?: boolean;
  /** Directory a relative `path` resolves against (the registry file's). @default process.cwd() */
  baseDir?: string;
  /**
   * Where the counters live: hits, misses, sets, deletes, expired, evicted, in that order (a Lua
   * worker passes its region of the host's shared counters, so the host sums them without
   * asking it). @default a private array
   */
  counters?: Float64Array;
}

/** A row as the value statements return it (raw mode): value, expires_at, collection (null: a value). */
type ValueRow = [Buffer, number, CollectionKind | null];
/** value, version, expires_at, metadata, collection. */
type EntryRow = [Buffer, number, number, Buffer | null, CollectionKind | null];
/** key, expires_at, metadata. */
type ListRow = [Buffer, number, Buffer | null];
/** expires_at, version. */
type StateRow = [number, number];
/** expires_at, collection (null: a value), item_bytes, item_count. */
type KindRow = [number, CollectionKind | null, number, number];
/** The value column of a list or sorted set row (its `collection` column says which). */
const NO_VALUE = Buffer.alloc(0);

/** One row a write is about to store (see the quota rules in makeTransactions). */
interface PlannedRow {
  k: Buffer;
  /** The live row's share: undefined when there is no live row, null when it has no share. */
  owner: string | null | undefined;
  oldBytes: number;
  newBytes: number;
}

/** Where an incr of a missing key starts (s:atomic's incr). */
const ZERO_INIT: LuaNumber = { value: 0, float: false };

/** Why a write could not happen, decided inside its transaction and thrown after it ended. */
const FULL = Symbol("full");

export class SqlStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind = "store.sql" as const;
  readonly config: SqlStoreConfig;
  /** The database file, absolute, or ":memory:". */
  readonly file: string;
  readonly #clock: Clock;
  readonly #db: Database.Database;
  readonly #lru: boolean;
  readonly #maxSize: number;
  /** Milliseconds an expired row stays readable by getStale (0: none). */
  readonly #staleFor: number;
  #timer: NodeJS.Timeout | undefined;
  readonly #counters: Float64Array;
  get #hits(): number { return this.#counters[0]!; }
  set #hits(n: number) { this.#counters[0] = n; }
  get #misses(): number { return this.#counters[1]!; }
  set #misses(n: number) { this.#counters[1] = n; }
  get #sets(): number { return this.#counters[2]!; }
  set #sets(n: number) { this.#counters[2] = n; }
  get #deletes(): number { return this.#counters[3]!; }
  set #deletes(n: number) { this.#counters[3] = n; }
  get #expired(): number { return this.#counters[4]!; }
  set #expired(n: number) { this.#counters[4] = n; }
  get #evicted(): number { return this.#counters[5]!; }
  set #evicted(n: number) { this.#counters[5] = n; }
  /** Counted inside a transaction, added to the counters only when it commits. */
  #pendingExpired = 0;
  #pendingEvicted = 0;
  /** Keys an atomic write deleted, counted when it commits. */
  #pendingDeletes = 0;

  readonly #sql: ReturnType<typeof prepareStatements>;
  readonly #tx: ReturnType<SqlStore["makeTransactions"]>;

  constructor(config: SqlStoreConfig, options: SqlStoreOptions) {
    this.id = config.id;
    this.config = config;
    this.#clock = options.clock;
    this.#counters = options.counters ?? new Float64Array(6);
    this.#lru = config.eviction === "lru";
    this.#maxSize = config.maxSize;
    this.#staleFor = config.staleForMs ?? 0;
    this.file = config.path === ":memory:" ? ":memory:" : resolve(options.baseDir ?? process.cwd(), config.path);
    try {
      if (this.file !== ":memory:") mkdirSync(dirname(this.file), { recursive: true });
      this.#db = new Database(this.file, { timeout: config.busyTimeoutMs });
    } catch (error) {
      throw this.#openError(error);
    }
    try {
      // WAL lets readers go on while one process writes; FULL syncs the WAL on every commit, so an
      // acknowledged write survives a power cut, not only a crash (NORMAL would risk the last commits).
      this.#db.pragma("journal_mode = WAL");
      this.#db.pragma("synchronous = FULL");
      createSchema(this.#db, config.tableName, this.#lru, config.quota !== undefined);
      this.#sql = prepareStatements(this.#db, config.tableName, config.quota !== undefined);
    } catch (error) {
      this.#db.close();
      throw this.#openError(error);
    }
    this.#tx = this.makeTransactions();
    if (options.sweepTimer ?? true) {
      this.#timer = setInterval(() => {
        try {
          this.sweep();
        } catch {
          // A busy database: the next tick tries again, and reads hide expired keys meanwhile.
        }
      }, config.cleanupIntervalMs);
      // The timer must not keep a CLI process alive.
      this.#timer.unref();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  get(key: string): Uint8Array | undefined {
    try {
      const k = Buffer.from(key, "latin1");
      const value = this.#lru ? this.#commit(this.#tx.readTouch, k) : this.#readValue(k);
      if (value === undefined) this.#misses++;
      else this.#hits++;
      return value;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  getStale(key: string): Uint8Array | StaleValue | undefined {
    if (this.#staleFor === 0 || this.#lru) {
      // With lru a live read records recency in a transaction: get does that; only a stale copy is answered here.
      if (this.#staleFor !== 0) {
        const stale = this.#staleRow(key);
        if (stale !== undefined) return stale;
      }
      return this.get(key);
    }
    try {
      const k = Buffer.from(key, "latin1");
      const row = this.#sql.value.get(k) as ValueRow | undefined;
      if (row === undefined) {
        this.#misses++;
        return undefined;
      }
      const now = this.#clock.now();
      if (row[1] !== 0 && row[1] <= now) {
        if (row[1] + this.#staleFor > now) return this.#staleAnswer(k, row);
        this.#reap(k, now - this.#staleFor);
        this.#misses++;
        return undefined;
      }
      if (row[2] !== null) throw this.#notAValue(k);
      this.#hits++;
      return row[0];
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  /** The stale copy of `key` if it has one (expired less than stale_for ago), else undefined. */
  #staleRow(key: string): StaleValue | undefined {
    try {
      const k = Buffer.from(key, "latin1");
      const row = this.#sql.value.get(k) as ValueRow | undefined;
      if (row === undefined || row[1] === 0) return undefined;
      const now = this.#clock.now();
      return row[1] <= now && row[1] + this.#staleFor > now ? this.#staleAnswer(k, row) : undefined;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  #staleAnswer(k: Buffer, row: ValueRow): StaleValue {
    if (row[2] !== null) throw this.#notAValue(k);
    this.#misses++;
    return { stale: row[0] };
  }

  getMany(keys: readonly string[]): (Uint8Array | undefined)[] {
    if (keys.length === 0) return [];
    try {
      const values = this.#lru ? this.#commit(this.#tx.getMany, keys) : this.#readMany(keys);
      for (const value of values) {
        if (value === undefined) this.#misses++;
        else this.#hits++;
      }
      return values;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  has(key: string): boolean {
    try {
      return this.#liveExpiry(Buffer.from(key, "latin1")) !== undefined;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  ttl(key: string): number | undefined {
    try {
      const expiresAt = this.#liveExpiry(Buffer.from(key, "latin1"));
      if (expiresAt === undefined) return undefined;
      if (expiresAt === 0) return 0;
      // Clock time may be fractional; a live key always has at least 1 ms left.
      return Math.ceil(expiresAt - this.#clock.now());
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  entry(key: string): EntryRecord | undefined {
    try {
      const k = Buffer.from(key, "latin1");
      // Only with lru does a read write (its recency); otherwise one statement, no write lock.
      const row = this.#lru ? this.#commit(this.#tx.entry, k) : this.#readEntry(k);
      if (row === undefined) {
        this.#misses++;
        return undefined;
      }
      if (row[4] !== null) throw this.#notAValue(k);
      this.#hits++;
      const [value, version, expiresAt, metadata] = row;
      const record: EntryRecord = { value, version: formatVersion(version), expiresAt };
      if (metadata !== null) record.metadata = metadata;
      return record;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  list(options: ListOptions): ListPage {
    const { prefix, after, limit } = options;
    checkListLimit(limit);
    try {
      const prefixBytes = Buffer.from(prefix, "latin1");
      const end = prefixEnd(prefixBytes);
      const afterApplies = after !== undefined && after >= prefix;
      const start = afterApplies ? Buffer.from(after, "latin1") : prefixBytes;
      const statement = this.#sql.list[afterApplies ? 1 : 0][end === undefined ? 0 : 1];
      const now = this.#clock.now();
      const keys: ListedKey[] = [];
      const expired: Buffer[] = [];
      let lastVisited: Buffer | undefined;
      let hasMore = false;
      // One read statement walks the primary key; it stops as soon as the page is decided.
      const rows = (end === undefined ? statement.iterate(start) : statement.iterate(start, end)) as IterableIterator<ListRow>;
      for (const [key, expiresAt, metadata] of rows) {
        if (expiresAt !== 0 && expiresAt <= now) {
          if (expired.length === LIST_MAX_EXPIRED_PER_PAGE) {
            hasMore = true;
            break;
          }
          expired.push(key);
          lastVisited = key;
          continue;
        }
        if (keys.length === limit) {
          hasMore = true;
          break;
        }
        const text = key.toString("latin1");
        keys.push(metadata === null ? { key: text } : { key: text, metadata });
        lastVisited = key;
      }
      if (expired.length > 0) this.#commit(this.#tx.reapMany, expired, now - this.#staleFor);
      return hasMore ? { keys, cursor: lastVisited!.toString("latin1"), hasMore } : { keys, hasMore };
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  info(share?: string): StoreInfo {
    this.sweep();
    let totals: [number, number];
    try {
      totals = this.#sql.totals.get() as [number, number];
    } catch (error) {
      throw this.#storeError(error);
    }
    const info: StoreInfo = { size: totals[0] - this.#staleRows(), bytes: totals[1], maxSize: this.#maxSize, eviction: this.config.eviction };
    const quota = this.config.quota;
    if (quota !== undefined && share !== undefined) {
      try {
        const row = this.#sql.shareUsage!.get(share) as [number, number] | undefined;
        info.quota = { by: quota.by, share, keys: row?.[0] ?? 0, bytes: row?.[1] ?? 0, maxKeys: quota.maxKeys };
        if (quota.maxBytes !== undefined) info.quota.maxBytes = quota.maxBytes;
      } catch (error) {
        throw this.#storeError(error);
      }
    }
    return info;
  }

  size(): number {
    this.sweep();
    try {
      return (this.#sql.count.get() as number) - this.#staleRows();
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  stats(): StoreStats {
    try {
      const [size, bytes] = this.#sql.totals.get() as [number, number];
      const stats: StoreStats = {
        hits: this.#hits,
        misses: this.#misses,
        sets: this.#sets,
        deletes: this.#deletes,
        expired: this.#expired,
        evicted: this.#evicted,
        size,
        bytes,
      };
      if (this.#sql.allShares !== undefined) {
        const shares: Record<string, ShareUsage> = {};
        for (const [name, keys, shareBytes] of this.#sql.allShares.all() as [string, number, number][]) shares[name] = { keys, bytes: shareBytes };
        stats.shares = shares;
      }
      return stats;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  set(key: string, value: Uint8Array, ttlMs: number, share?: string): void {
    this.#write("set", key, value, ttlMs, share);
  }

  add(key: string, value: Uint8Array, ttlMs: number, share?: string): boolean {
    return this.#write("add", key, value, ttlMs, share);
  }

  replace(key: string, value: Uint8Array, ttlMs: number, share?: string): boolean {
    return this.#write("replace", key, value, ttlMs, share);
  }

  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): Uint8Array {
    try {
      const bytes = this.#commit(this.#tx.incr, key, by, init, initTtlMs, share ?? null);
      if (bytes === FULL) throw this.#full("a new key");
      this.#sets++;
      return bytes;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  put(key: string, value: Uint8Array, options: PutOptions): PutOutcome {
    if (options.onlyIfAbsent && options.ifVersion !== undefined) {
      throw new StoreError(ErrorKind.INVALID, "put: onlyIfAbsent and ifVersion cannot be combined");
    }
    try {
      const outcome = this.#commit(this.#tx.put, Buffer.from(key, "latin1"), value, options);
      if (outcome === FULL) throw this.#full("a new key");
      if (outcome === "ok") this.#sets++;
      return outcome;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): void {
    // The last value of a repeated key wins; Map keeps first-insertion order, which is fine.
    const batch = new Map<string, Uint8Array>();
    for (const [key, value] of entries) batch.set(key, value);
    if (batch.size > this.#maxSize) {
      throw new StoreError(
        ErrorKind.INVALID,
        `store ${this.id}: a batch of ${batch.size} keys can never fit (max_size ${this.#maxSize})`,
      );
    }
    if (batch.size === 0) return;
    try {
      const newKeys = this.#commit(this.#tx.setMany, batch, this.#expiresAt(ttlMs), share ?? null);
      if (newKeys !== undefined) throw this.#full(`${newKeys} new keys`);
      this.#sets += entries.length;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  expire(key: string, ttlMs: number): boolean {
    try {
      return this.#commit(this.#tx.expire, Buffer.from(key, "latin1"), this.#expiresAt(ttlMs));
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  delete(key: string): boolean {
    try {
      const k = Buffer.from(key, "latin1");
      const now = this.#clock.now();
      if (this.#sql.deleteLive.run(k, now).changes > 0) {
        this.#deletes++;
        return true;
      }
      this.#reap(k, now);
      return false;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  deleteMany(keys: readonly string[]): number {
    if (keys.length === 0) return 0;
    try {
      const n = this.#commit(this.#tx.deleteMany, keys, this.#clock.now());
      this.#deletes += n;
      return n;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  clear(): void {
    try {
      this.#sql.clear.run();
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  flush(): number {
    try {
      return this.#commit(this.#tx.flush, this.#clock.now());
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  sweep(): number {
    try {
      const now = this.#clock.now();
      let total = 0;
      for (;;) {
        // Each batch is its own transaction, so a large sweep never holds the lock for long.
        const n = this.#sql.sweepBatch.run(now - this.#staleFor, SWEEP_BATCH).changes;
        total += n;
        if (n < SWEEP_BATCH) break;
      }
      this.#expired += total;
      return total;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#db.open) this.#db.close();
  }

  // -------------------------------------------------------------------------------------------
  // Lists: rows of `<table>_list` (key, pos, value), positions contiguous from the head
  // -------------------------------------------------------------------------------------------

  listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): number {
    try {
      const length = this.#commit(this.#tx.listPush, Buffer.from(key, "latin1"), end, values, share ?? null);
      if (length === FULL) throw this.#full("a new key");
      this.#sets++;
      return length;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  listPop(key: string, end: ListEnd, count: number): Uint8Array[] {
    try {
      const values = this.#commit(this.#tx.listPop, Buffer.from(key, "latin1"), end, count);
      if (values.length > 0) this.#sets++;
      return values;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  listLength(key: string): number {
    try {
      return this.#tx.listRead.deferred(Buffer.from(key, "latin1"), 0, -1, false)[0];
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  listRange(key: string, start: number, stop: number): Uint8Array[] {
    try {
      return this.#tx.listRead.deferred(Buffer.from(key, "latin1"), start, stop, true)[1];
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  listTrim(key: string, start: number, stop: number): number {
    try {
      return this.#commit(this.#tx.listTrim, Buffer.from(key, "latin1"), start, stop);
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Sorted sets: rows of `<table>_zset` (key, member, score), indexed by (key, score, member)
  // -------------------------------------------------------------------------------------------

  zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): number {
    for (const { score } of entries) checkScore(this.id, key, score);
    try {
      const members = entries.map((e) => Buffer.from(e.member, "latin1"));
      const added = this.#commit(this.#tx.zsetAdd, Buffer.from(key, "latin1"), members, entries.map((e) => e.score), share ?? null);
      if (added === FULL) throw this.#full("a new key");
      this.#sets++;
      return added;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  zsetIncr(key: string, member: string, by: number, share?: string): number {
    try {
      const score = this.#commit(this.#tx.zsetIncr, Buffer.from(key, "latin1"), Buffer.from(member, "latin1"), by, share ?? null);
      if (score === FULL) throw this.#full("a new key");
      this.#sets++;
      return score;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  zsetScore(key: string, member: string): number | undefined {
    const m = Buffer.from(member, "latin1");
    return this.#zsetRead(key, undefined, (k) => this.#sql.zsetScore.get(k, m) as number | undefined);
  }

  zsetRank(key: string, member: string, reverse: boolean): number | undefined {
    const m = Buffer.from(member, "latin1");
    return this.#zsetRead(key, undefined, (k) => {
      const score = this.#sql.zsetScore.get(k, m) as number | undefined;
      if (score === undefined) return undefined;
      return this.#sql.zsetRank[reverse ? 1 : 0].get(k, score, m) as number;
    });
  }

  zsetRange(key: string, range: ZsetRange): ZsetEntry[] {
    const limit = range.limit ?? -1;
    return this.#zsetRead(key, [] as ZsetEntry[], (k, row) => {
      let rows: [Buffer, number][];
      if (range.by === "score") {
        rows = this.#sql.zsetByScore[range.reverse ? 1 : 0].all(k, range.min, range.max, limit) as [Buffer, number][];
      } else {
        const ranks = indexRange(range.start, range.stop, row[3]);
        if (ranks === null) return [];
        const n = Math.min(ranks[1] - ranks[0] + 1, limit === -1 ? Number.POSITIVE_INFINITY : limit);
        rows = this.#sql.zsetByRank[range.reverse ? 1 : 0].all(k, n, ranks[0]) as [Buffer, number][];
      }
      return rows.map(([member, score]) => ({ member: member.toString("latin1"), score }));
    });
  }

  zsetRemove(key: string, members: readonly string[]): number {
    try {
      const removed = this.#commit(this.#tx.zsetRemove, Buffer.from(key, "latin1"), members.map((m) => Buffer.from(m, "latin1")));
      if (removed > 0) this.#sets++;
      return removed;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  zsetCard(key: string): number {
    return this.#zsetRead(key, 0, (_k, row) => row[3]);
  }

  /** A read of the sorted set at `key` in one read transaction; `missing` when the key is. */
  #zsetRead<T>(key: string, missing: T, read: (k: Buffer, row: KindRow) => T): T {
    try {
      const k = Buffer.from(key, "latin1");
      return this.#tx.zsetRead.deferred(k, missing, (row: KindRow) => read(k, row)) as T;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Multi-key transactions: one BEGIN IMMEDIATE transaction, so atomic across processes
  // -------------------------------------------------------------------------------------------

  atomic(tx: AtomicWrite, share?: string): AtomicOutcome {
    const touched = new Set([...tx.set.map(([key]) => key), ...tx.incr.map(([key]) => key)]);
    if (touched.size > this.#maxSize) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: a transaction of ${touched.size} keys can never fit (max_size ${this.#maxSize})`);
    }
    try {
      this.#pendingDeletes = 0;
      const outcome = this.#commit(this.#tx.atomic, tx, share ?? null);
      if (outcome.ok) {
        this.#deletes += this.#pendingDeletes;
        this.#sets += tx.set.length + tx.incr.length;
      }
      return outcome;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Transactions: each runs as BEGIN IMMEDIATE ... COMMIT through #commit
  // -------------------------------------------------------------------------------------------

  /** The multi-statement operations, as better-sqlite3 transaction functions. */
  private makeTransactions() {
    const db = this.#db;
    const sql = this.#sql;
    const clock = this.#clock;

    /**
     * The row's expiry and version, live or a stale copy, deleting it first when it expired more
     * than stale_for ago. A write of the key upserts over a stale copy, so it is no new key.
     */
    const storedState = (k: Buffer, now: number): StateRow | undefined => {
      const row = sql.state.get(k) as StateRow | undefined;
      if (row === undefined) return undefined;
      if (row[0] !== 0 && row[0] <= now - this.#staleFor) {
        this.#pendingExpired += sql.deleteKey.run(k).changes;
        return undefined;
      }
      return row;
    };

    /** The live row's expiry and version (see storedState). */
    const liveState = (k: Buffer, now: number): StateRow | undefined => {
      const row = storedState(k, now);
      return row === undefined || row[0] === 0 || row[0] > now ? row : undefined;
    };

    const nextVersion = (): number => sql.nextVersion.get() as number;

    /** Frees `needed` slots for new keys (none of `keep`): expired rows first, then LRU, else false. */
    const makeRoom = (now: number, needed: number, keep?: ReadonlyMap<string, unknown>): boolean => {
      let excess = (sql.count.get() as number) + needed - this.#maxSize;
      if (excess <= 0) return true;
      // Stale copies count until stale_for has passed, as in every backend.
      this.#pendingExpired += sql.sweepAll.run(now - this.#staleFor).changes;
      excess = (sql.count.get() as number) + needed - this.#maxSize;
      if (excess <= 0) return true;
      if (!this.#lru) return false;
      const candidates = sql.oldest.all(excess + (keep?.size ?? 0)) as Buffer[];
      for (const victim of candidates) {
        if (excess === 0) break;
        if (keep?.has(victim.toString("latin1"))) continue;
        sql.deleteKey.run(victim);
        this.#pendingEvicted++;
        excess--;
      }
      return true;
    };

    const quota = this.config.quota;
    /**
     * Room for new keys: under a quota the share rules decide (and evict, under LRU), else
     * max_size with expired rows first, then LRU. False when it does not fit (eviction none).
     */
    const room = (now: number, needed: number, keep: ReadonlyMap<string, unknown> | undefined, planned: readonly PlannedRow[], share: string | null): boolean => {
      if (quota === undefined) return needed === 0 || makeRoom(now, needed, keep);
      try {
        admit(planned, share, quota);
      } catch (error) {
        // Expired rows still count in their shares: reclaim them, then decide again.
        const swept = sql.sweepAll.run(now - this.#staleFor).changes;
        if (swept === 0) throw error;
        this.#pendingExpired += swept;
        admit(planned, share, quota);
      }
      return true;
    };

    /** The rules of src/store/share-ledger.ts, on the rows of this transaction. */
    const admit = (planned: readonly PlannedRow[], share: string | null, q: QuotaConfig): void => {
      const held = sql.sharesHeld!.get() as [number, number];
      const [sharesHolding, ownedKeys] = held;
      const unowned = (sql.count.get() as number) - ownedKeys;
      const batch = new Set(planned.map((p) => p.k.toString("latin1")));
      if (share === null) {
        const newKeys = planned.filter((p) => p.owner === undefined).length;
        let excess = unowned + newKeys - (this.#maxSize - sharesHolding * q.maxKeys);
        if (excess > 0 && this.#lru) {
          for (const victim of sql.oldestUnowned!.all(excess + batch.size) as Buffer[]) {
            if (excess === 0) break;
            if (batch.has(victim.toString("latin1"))) continue;
            sql.deleteKey.run(victim);
            this.#pendingEvicted++;
            excess--;
          }
        }
        if (excess > 0) {
          throw new StoreError(
            ErrorKind.UNAVAILABLE,
            `store ${this.id} is full (max_size ${this.#maxSize}, ${sharesHolding * q.maxKeys} reserved by shares)`,
            { retryable: true },
          );
        }
        return;
      }
      const usage = sql.shareUsage!.get(share) as [number, number] | undefined;
      let keys = usage?.[0] ?? 0;
      let bytes = usage?.[1] ?? 0;
      const holdsKeys = keys > 0;
      for (const p of planned) {
        if (p.owner === share) bytes -= p.oldBytes;
        else keys++;
        bytes += p.newBytes;
      }
      const maxBytes = q.maxBytes ?? Infinity;
      if ((keys > q.maxKeys || bytes > maxBytes) && this.#lru) {
        // .all(): the connection cannot delete while a statement iterates. A share holds about max_keys rows.
        for (const [victim, size] of sql.oldestOfShare!.all(share) as [Buffer, number][]) {
          if (keys <= q.maxKeys && bytes <= maxBytes) break;
          if (batch.has(victim.toString("latin1"))) continue;
          sql.deleteKey.run(victim);
          this.#pendingEvicted++;
          keys--;
          bytes -= size;
        }
      }
      if (keys > q.maxKeys || bytes > maxBytes) {
        const what = keys > q.maxKeys ? `${keys} keys, over max_keys ${q.maxKeys}` : `${bytes} bytes, over max_bytes ${q.maxBytes ?? 0}`;
        throw new StoreError(ErrorKind.RATE_LIMITED, `store ${this.id}: share ${JSON.stringify(share)} of ${q.by} would hold ${what}`);
      }
      if (!holdsKeys && unowned + (sharesHolding + 1) * q.maxKeys > this.#maxSize) {
        throw new StoreError(
          ErrorKind.UNAVAILABLE,
          `store ${this.id} is full: its max_size ${this.#maxSize} is reserved by ${sharesHolding} shares of max_keys ${q.maxKeys}`,
          { retryable: true },
        );
      }
    };

    /** What a write is about to do to one row: its owner now, its entry bytes now and after. */
    const plan = (k: Buffer, value: Uint8Array, metadata: Uint8Array | null): PlannedRow => {
      const row = quota === undefined ? undefined : (sql.ownerOf!.get(k) as [string | null, number] | undefined);
      return {
        k,
        owner: row === undefined ? undefined : row[0],
        oldBytes: row?.[1] ?? 0,
        newBytes: k.length + value.length + (metadata?.length ?? 0),
      };
    };

    /** Writes a row with a fresh version, which also becomes its recency. */
    const store = (k: Buffer, value: Uint8Array, expiresAt: number, metadata: Uint8Array | null, share: string | null = null): void => {
      const version = nextVersion();
      if (quota === undefined) sql.upsert.run(k, value, version, expiresAt, metadata, version);
      else sql.upsertShared!.run(k, value, version, expiresAt, metadata, version, share);
    };

    const write = db.transaction(
      (mode: "set" | "add" | "replace", k: Buffer, value: Uint8Array, ttlMs: number, share: string | null): boolean | typeof FULL => {
        const now = clock.now();
        const row = storedState(k, now);
        const live = row !== undefined && (row[0] === 0 || row[0] > now);
        if (mode === "add" && live) return false;
        if (mode === "replace" && !live) return false;
        if (!room(now, row !== undefined ? 0 : 1, undefined, [plan(k, value, null)], share)) return FULL;
        store(k, value, ttlMs > 0 ? now + ttlMs : 0, null, share);
        return true;
      },
    );

    const incr = db.transaction(
      (key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share: string | null): Uint8Array | typeof FULL => {
        const k = Buffer.from(key, "latin1");
        const now = clock.now();
        let row = sql.value.get(k) as ValueRow | undefined;
        // A stale copy stays a row the write upserts over: no new key.
        const stored = row !== undefined && (row[1] === 0 || row[1] > now - this.#staleFor);
        if (row !== undefined && row[1] !== 0 && row[1] <= now) {
          if (!stored) this.#pendingExpired += sql.deleteKey.run(k).changes;
          row = undefined;
        }
        if (row !== undefined && row[2] !== null) throw this.#notAValue(k);
        const bytes = incrementBytes(key, row?.[0], by, init);
        if (!room(now, stored ? 0 : 1, undefined, [plan(k, bytes, null)], share)) return FULL;
        store(k, bytes, row !== undefined ? row[1] : initTtlMs > 0 ? now + initTtlMs : 0, null, share);
        return bytes;
      },
    );

    const put = db.transaction((k: Buffer, value: Uint8Array, options: PutOptions): PutOutcome | typeof FULL => {
      const now = clock.now();
      const row = storedState(k, now);
      const state = row === undefined || row[0] === 0 || row[0] > now ? row : undefined;
      if (options.onlyIfAbsent && state !== undefined) return "exists";
      if (options.ifVersion !== undefined) {
        if (state === undefined) return "missing";
        if (formatVersion(state[1]) !== options.ifVersion) return "conflict";
      }
      const metadata = options.metadata ?? null;
      const share = options.share ?? null;
      if (!room(now, row === undefined ? 1 : 0, undefined, [plan(k, value, metadata)], share)) return FULL;
      store(k, value, options.ttlMs > 0 ? now + options.ttlMs : 0, metadata, share);
      return "ok";
    });

    /** Returns undefined when written, else how many new keys did not fit. */
    const setMany = db.transaction((batch: ReadonlyMap<string, Uint8Array>, expiresAt: number, share: string | null): number | undefined => {
      const now = clock.now();
      const keys: Buffer[] = [];
      const planned: PlannedRow[] = [];
      let newKeys = 0;
      for (const [key, value] of batch) {
        const k = Buffer.from(key, "latin1");
        keys.push(k);
        if (storedState(k, now) === undefined) newKeys++;
        if (quota !== undefined) planned.push(plan(k, value, null));
      }
      if (!room(now, newKeys, batch, planned, share)) return newKeys;
      let i = 0;
      for (const value of batch.values()) store(keys[i++]!, value, expiresAt, null, share);
      return undefined;
    });

    const expire = db.transaction((k: Buffer, expiresAt: number): boolean => {
      if (liveState(k, clock.now()) === undefined) return false;
      sql.setExpiry.run(expiresAt, nextVersion(), k);
      return true;
    });

    /** A value read that also records recency (eviction lru). */
    const readTouch = db.transaction((k: Buffer): Buffer | undefined => {
      const row = sql.value.get(k) as ValueRow | undefined;
      if (row === undefined) return undefined;
      const now = clock.now();
      if (row[1] !== 0 && row[1] <= now) {
        this.#pendingExpired += sql.deleteExpired.run(k, now - this.#staleFor).changes;
        return undefined;
      }
      if (row[2] !== null) throw this.#notAValue(k);
      sql.touch.run(nextVersion(), k);
      return row[0];
    });

    /** entry with lru: records the key's recency. */
    const entry = db.transaction((k: Buffer): EntryRow | undefined => {
      const row = sql.entry.get(k) as EntryRow | undefined;
      if (row === undefined) return undefined;
      const now = clock.now();
      if (row[2] !== 0 && row[2] <= now) {
        this.#pendingExpired += sql.deleteExpired.run(k, now - this.#staleFor).changes;
        return undefined;
      }
      sql.touch.run(nextVersion(), k);
      return row;
    });

    /** getMany with lru: every value read records its recency. */
    const getMany = db.transaction((keys: readonly string[]): (Uint8Array | undefined)[] => {
      const now = clock.now();
      const values = new Array<Uint8Array | undefined>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const k = Buffer.from(keys[i]!, "latin1");
        const row = sql.value.get(k) as ValueRow | undefined;
        if (row !== undefined && row[1] !== 0 && row[1] <= now) {
          this.#pendingExpired += sql.deleteExpired.run(k, now - this.#staleFor).changes;
        } else if (row !== undefined) {
          if (row[2] !== null) throw this.#notAValue(k);
          values[i] = row[0];
          sql.touch.run(nextVersion(), k);
        }
      }
      return values;
    });

    /** Values from one snapshot; collects the expired keys it meets for the caller to reap. */
    const readMany = db.transaction((keys: readonly string[], now: number, expired: Buffer[]): (Uint8Array | undefined)[] => {
      const values = new Array<Uint8Array | undefined>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const k = Buffer.from(keys[i]!, "latin1");
        const row = sql.value.get(k) as ValueRow | undefined;
        if (row === undefined) continue;
        if (row[1] !== 0 && row[1] <= now) expired.push(k);
        else if (row[2] !== null) throw this.#notAValue(k);
        else values[i] = row[0];
      }
      return values;
    });

    /** Lazy expiry of many keys in one commit (a list page that stepped over expired keys). */
    const reapMany = db.transaction((keys: readonly Buffer[], now: number): void => {
      for (const k of keys) this.#pendingExpired += sql.deleteExpired.run(k, now).changes;
    });

    /** Every row goes; the expired ones count as expired, the rest is the answer. */
    const flush = db.transaction((now: number): number => {
      this.#pendingExpired += sql.sweepAll.run(now).changes;
      return sql.clear.run().changes;
    });

    /** Live rows of `keys` deleted in one commit (expired ones reaped as expired); returns how many. */
    const deleteMany = db.transaction((keys: readonly string[], now: number): number => {
      let n = 0;
      for (const key of keys) {
        const k = Buffer.from(key, "latin1");
        if (sql.deleteLive.run(k, now).changes > 0) n++;
        else this.#pendingExpired += sql.deleteExpired.run(k, now).changes;
      }
      return n;
    });


    /** The live row's expiry, collection and item bytes; an expired row is deleted first. */
    const liveKind = (k: Buffer, now: number): KindRow | undefined => {
      const row = sql.kind.get(k) as KindRow | undefined;
      if (row === undefined) return undefined;
      if (row[0] !== 0 && row[0] <= now) {
        this.#pendingExpired += sql.deleteKey.run(k).changes;
        return undefined;
      }
      return row;
    };

    /** The live row of `kind` at `k`, or undefined; INVALID when the key holds anything else. */
    const liveCollection = (k: Buffer, now: number, kind: CollectionKind): KindRow | undefined => {
      const row = liveKind(k, now);
      if (row !== undefined && row[1] !== kind) throw wrongType(this.id, k.toString("latin1"), row[1] ?? "value", kind);
      return row;
    };

    /**
     * The write step of a collection that grows to `itemBytes`: admits the key at its new size
     * (quota, max_size) as a value write would, then creates its row (no TTL) or rewrites it with a
     * new version. False when a new key does not fit.
     */
    const growCollection = (
      k: Buffer,
      row: KindRow | undefined,
      kind: CollectionKind,
      itemBytes: number,
      itemCount: number,
      share: string | null,
      now: number,
    ): boolean => {
      const planned = quota === undefined ? [] : [{ ...plan(k, NO_VALUE, null), newBytes: k.length + itemBytes }];
      if (!room(now, row === undefined ? 1 : 0, undefined, planned, share)) return false;
      const version = nextVersion();
      if (row === undefined) {
        if (quota === undefined) sql.insertCollection.run(k, version, version, kind, itemBytes, itemCount);
        else sql.insertCollection.run(k, version, version, kind, itemBytes, itemCount, share);
      } else if (quota === undefined) sql.updateCollection.run(itemBytes, itemCount, version, version, k);
      else sql.updateCollection.run(itemBytes, itemCount, version, version, share, k);
      return true;
    };

    /** After `removed` items worth `removedBytes` were deleted: the row goes when `empty`, else it is rewritten smaller. */
    const shrinkCollection = (k: Buffer, row: KindRow, empty: boolean, removedBytes: number, removed: number): void => {
      if (empty) {
        sql.deleteKey.run(k);
        return;
      }
      const version = nextVersion();
      if (quota === undefined) sql.updateCollection.run(row[2] - removedBytes, row[3] - removed, version, version, k);
      else sql.updateCollection.run(row[2] - removedBytes, row[3] - removed, version, version, null, k);
    };

    /** The positions of a list's first and last element ([0, -1] for none): they are contiguous. */
    const listBounds = (k: Buffer, row: KindRow | undefined): [number, number] =>
      row === undefined ? [0, -1] : (sql.listBounds.get(k) as [number, number]);

    const listPush = db.transaction((k: Buffer, end: ListEnd, values: readonly Uint8Array[], share: string | null): number | typeof FULL => {
      const now = clock.now();
      const row = liveCollection(k, now, "list");
      let [min, max] = listBounds(k, row);
      const length = max - min + 1 + values.length;
      let itemBytes = row?.[2] ?? 0;
      for (const value of values) itemBytes += value.length;
      checkCollectionBounds(this.id, k.toString("latin1"), "list", length, itemBytes);
      if (!growCollection(k, row, "list", itemBytes, length, share, now)) return FULL;
      for (const value of values) sql.listInsert.run(k, end === "left" ? --min : ++max, value);
      return length;
    });

    const listPop = db.transaction((k: Buffer, end: ListEnd, count: number): Buffer[] => {
      const row = liveCollection(k, clock.now(), "list");
      if (row === undefined) return [];
      const [min, max] = listBounds(k, row);
      const n = Math.min(count, max - min + 1);
      const [from, to] = end === "left" ? [min, min + n - 1] : [max - n + 1, max];
      const values = sql.listRange.all(k, from, to) as Buffer[];
      if (end === "right") values.reverse();
      let bytes = 0;
      for (const value of values) bytes += value.length;
      sql.listDelete.run(k, from, to);
      shrinkCollection(k, row, n === max - min + 1, bytes, n);
      return values;
    });

    /** A list's length and elements start..stop (none when `values` is false), from one snapshot. */
    const listRead = db.transaction((k: Buffer, start: number, stop: number, values: boolean): [number, Buffer[]] => {
      const row = sql.kind.get(k) as KindRow | undefined;
      if (row === undefined || (row[0] !== 0 && row[0] <= clock.now())) return [0, []];
      if (row[1] !== "list") throw wrongType(this.id, k.toString("latin1"), row[1] ?? "value", "list");
      const [min, max] = listBounds(k, row);
      const length = max - min + 1;
      const range = values ? indexRange(start, stop, length) : null;
      if (range === null) return [length, []];
      return [length, sql.listRange.all(k, min + range[0], min + range[1]) as Buffer[]];
    });

    const listTrim = db.transaction((k: Buffer, start: number, stop: number): number => {
      const row = liveCollection(k, clock.now(), "list");
      if (row === undefined) return 0;
      const [min, max] = listBounds(k, row);
      const length = max - min + 1;
      const range = indexRange(start, stop, length);
      if (range === null) {
        sql.deleteKey.run(k);
        return 0;
      }
      const kept = range[1] - range[0] + 1;
      if (kept === length) return length;
      const [keepFrom, keepTo] = [min + range[0], min + range[1]];
      const bytes = (sql.listRangeBytes.get(k, min, keepFrom - 1) as number) + (sql.listRangeBytes.get(k, keepTo + 1, max) as number);
      sql.listDelete.run(k, min, keepFrom - 1);
      sql.listDelete.run(k, keepTo + 1, max);
      shrinkCollection(k, row, false, bytes, length - kept);
      return kept;
    });

    /** The members of `entries` not in the set yet (each once) and the bytes they add. */
    const newMembers = (k: Buffer, row: KindRow | undefined, members: readonly Buffer[]): [number, number] => {
      const seen = new Set<string>();
      let count = 0;
      let bytes = 0;
      for (const m of members) {
        const text = m.toString("latin1");
        if (seen.has(text)) continue;
        seen.add(text);
        if (row !== undefined && sql.zsetScore.get(k, m) !== undefined) continue;
        count++;
        bytes += m.length + SCORE_BYTES;
      }
      return [count, bytes];
    };

    const zsetAdd = db.transaction((k: Buffer, members: readonly Buffer[], scores: readonly number[], share: string | null): number | typeof FULL => {
      const now = clock.now();
      const row = liveCollection(k, now, "zset");
      const [count, bytes] = newMembers(k, row, members);
      const itemCount = (row?.[3] ?? 0) + count;
      const itemBytes = (row?.[2] ?? 0) + bytes;
      checkCollectionBounds(this.id, k.toString("latin1"), "zset", itemCount, itemBytes);
      if (!growCollection(k, row, "zset", itemBytes, itemCount, share, now)) return FULL;
      for (let i = 0; i < members.length; i++) sql.zsetUpsert.run(k, members[i]!, scores[i]!);
      return count;
    });

    const zsetIncr = db.transaction((k: Buffer, m: Buffer, by: number, share: string | null): number | typeof FULL => {
      const now = clock.now();
      const row = liveCollection(k, now, "zset");
      const old = row === undefined ? undefined : (sql.zsetScore.get(k, m) as number | undefined);
      const score = (old ?? 0) + by;
      checkScore(this.id, k.toString("latin1"), score);
      const itemCount = (row?.[3] ?? 0) + (old === undefined ? 1 : 0);
      const itemBytes = (row?.[2] ?? 0) + (old === undefined ? m.length + SCORE_BYTES : 0);
      checkCollectionBounds(this.id, k.toString("latin1"), "zset", itemCount, itemBytes);
      if (!growCollection(k, row, "zset", itemBytes, itemCount, share, now)) return FULL;
      sql.zsetUpsert.run(k, m, score);
      return score;
    });

    const zsetRemove = db.transaction((k: Buffer, members: readonly Buffer[]): number => {
      const row = liveCollection(k, clock.now(), "zset");
      if (row === undefined) return 0;
      let removed = 0;
      let bytes = 0;
      for (const m of members) {
        if (sql.zsetDelete.run(k, m).changes === 0) continue;
        removed++;
        bytes += m.length + SCORE_BYTES;
      }
      if (removed > 0) shrinkCollection(k, row, removed === row[3], bytes, removed);
      return removed;
    });

    /** A read of the sorted set at `k` from one snapshot: `read` gets its row, or the answer is `missing`. */
    const zsetRead = db.transaction(<T>(k: Buffer, missing: T, read: (row: KindRow) => T): T => {
      const row = sql.kind.get(k) as KindRow | undefined;
      if (row === undefined || (row[0] !== 0 && row[0] <= clock.now())) return missing;
      if (row[1] !== "zset") throw wrongType(this.id, k.toString("latin1"), row[1] ?? "value", "zset");
      return read(row);
    });

    /** An atomic write, or the first failed check (nothing written then). Throws (rolling back) when it cannot apply. */
    const atomic = db.transaction((tx: AtomicWrite, share: string | null): AtomicOutcome => {
      const now = clock.now();
      for (const [key, version] of tx.checks) {
        const state = liveState(Buffer.from(key, "latin1"), now);
        if (version === null ? state !== undefined : state === undefined || formatVersion(state[1]) !== version) return { ok: false, conflict: key };
      }
      const incremented = tx.incr.map(([key, by]) => {
        const k = Buffer.from(key, "latin1");
        const row = liveState(k, now) === undefined ? undefined : (sql.value.get(k) as ValueRow);
        if (row !== undefined && row[2] !== null) throw this.#notAValue(k);
        return { k, bytes: incrementBytes(key, row?.[0], by, ZERO_INIT), expiresAt: row === undefined ? (tx.ttlMs > 0 ? now + tx.ttlMs : 0) : row[1] };
      });
      let freed = 0;
      for (const key of tx.delete) {
        const k = Buffer.from(key, "latin1");
        const n = sql.deleteLive.run(k, now).changes;
        freed += n;
        // A stale copy goes with the delete.
        if (n === 0) this.#pendingExpired += sql.deleteExpired.run(k, now).changes;
      }
      this.#pendingDeletes += freed;
      const writes = tx.set.map(([key, value]) => ({ k: Buffer.from(key, "latin1"), value }));
      for (const i of incremented) writes.push({ k: i.k, value: i.bytes });
      let newKeys = 0;
      const planned: PlannedRow[] = [];
      for (const w of writes) {
        if (storedState(w.k, now) === undefined) newKeys++;
        if (quota !== undefined) planned.push(plan(w.k, w.value, null));
      }
      const keep = new Map(writes.map((w) => [w.k.toString("latin1"), true]));
      if (!room(now, newKeys, keep, planned, share)) throw this.#full(`${newKeys} new keys`);
      const expiresAt = tx.ttlMs > 0 ? now + tx.ttlMs : 0;
      for (const [key, value] of tx.set) store(Buffer.from(key, "latin1"), value, expiresAt, null, share);
      for (const i of incremented) store(i.k, i.bytes, i.expiresAt, null, share);
      return { ok: true, incr: incremented.map((i) => i.bytes) };
    });

    return {
      atomic,
      write,
      incr,
      put,
      setMany,
      expire,
      readTouch,
      entry,
      getMany,
      readMany,
      reapMany,
      flush,
      deleteMany,
      listPush,
      listPop,
      listRead,
      listTrim,
      zsetAdd,
      zsetIncr,
      zsetRemove,
      zsetRead,
    };
  }

  /** Runs a transaction function as BEGIN IMMEDIATE; the counters it touched count only if it commits. */
  #commit<A extends unknown[], R>(transaction: Database.Transaction<(...args: A) => R>, ...args: A): R {
    this.#pendingExpired = 0;
    this.#pendingEvicted = 0;
    const result = transaction.immediate(...args);
    this.#expired += this.#pendingExpired;
    this.#evicted += this.#pendingEvicted;
    return result;
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  #write(mode: "set" | "add" | "replace", key: string, value: Uint8Array, ttlMs: number, share: string | undefined): boolean {
    try {
      const written = this.#commit(this.#tx.write, mode, Buffer.from(key, "latin1"), value, ttlMs, share ?? null);
      if (written === FULL) throw this.#full("a new key");
      if (written) this.#sets++;
      return written;
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  /** The value of a live key, in one statement; an expired row is deleted on the way. */
  #readValue(k: Buffer): Buffer | undefined {
    const row = this.#sql.value.get(k) as ValueRow | undefined;
    if (row === undefined) return undefined;
    const now = this.#clock.now();
    if (row[1] !== 0 && row[1] <= now) {
      this.#reap(k, now - this.#staleFor);
      return undefined;
    }
    if (row[2] !== null) throw this.#notAValue(k);
    return row[0];
  }

  /** The whole row of a live key, in one statement; an expired row is deleted on the way. */
  #readEntry(k: Buffer): EntryRow | undefined {
    const row = this.#sql.entry.get(k) as EntryRow | undefined;
    if (row === undefined) return undefined;
    const now = this.#clock.now();
    if (row[2] !== 0 && row[2] <= now) {
      this.#reap(k, now - this.#staleFor);
      return undefined;
    }
    return row;
  }

  /**
   * Values of many keys from one snapshot (a read transaction, which takes no write lock); expired
   * rows met on the way are deleted afterwards, in one write transaction.
   */
  #readMany(keys: readonly string[]): (Uint8Array | undefined)[] {
    const now = this.#clock.now();
    const expired: Buffer[] = [];
    const values = this.#tx.readMany.deferred(keys, now, expired);
    if (expired.length > 0) this.#commit(this.#tx.reapMany, expired, now - this.#staleFor);
    return values;
  }

  /** The expiry of a live key (0 = never), or undefined; an expired row is deleted on the way. */
  #liveExpiry(k: Buffer): number | undefined {
    const expiresAt = this.#sql.expiry.get(k) as number | undefined;
    if (expiresAt === undefined) return undefined;
    const now = this.#clock.now();
    if (expiresAt !== 0 && expiresAt <= now) {
      this.#reap(k, now - this.#staleFor);
      return undefined;
    }
    return expiresAt;
  }

  /**
   * Deletes the row of `k` if it expired at or before `before` (now, or now - stale_for to keep a
   * stale copy): lazy expiry. The condition makes it safe against another process that rewrote the
   * key in between.
   */
  #reap(k: Buffer, before: number): void {
    this.#expired += this.#sql.deleteExpired.run(k, before).changes;
  }

  /** Expired rows a sweep left (stale copies within stale_for); 0 without stale_for. */
  #staleRows(): number {
    return this.#staleFor === 0 ? 0 : (this.#sql.countExpired.get(this.#clock.now()) as number);
  }

  /** The error for a list or sorted set row read as a value. */
  #notAValue(k: Buffer): StoreError {
    const kind = (this.#sql.kind.get(k) as KindRow | undefined)?.[1] ?? "list";
    return wrongType(this.id, k.toString("latin1"), kind, "value");
  }

  #expiresAt(ttlMs: number): number {
    return ttlMs > 0 ? this.#clock.now() + ttlMs : 0;
  }

  #full(what: string): StoreError {
    return new StoreError(
      ErrorKind.UNAVAILABLE,
      `store ${this.id} is full (max_size ${this.#maxSize}); cannot add ${what}`,
      { retryable: true },
    );
  }

  #openError(error: unknown): StoreError {
    return new StoreError(
      ErrorKind.UNAVAILABLE,
      `store ${this.id}: cannot open SQLite database ${this.file}: ${messageOf(error)}`,
      { cause: error },
    );
  }

  /** SQLite failures as StoreErrors: a locked or failing database is Unavailable and retryable. */
  #storeError(error: unknown): unknown {
    if (error instanceof StoreError) return error;
    const code = error instanceof Database.SqliteError ? error.code : "";
    if (/^SQLITE_(BUSY|LOCKED|FULL|IOERR)/.test(code)) {
      return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id}: ${messageOf(error)} (${code})`, {
        retryable: true,
        cause: error,
      });
    }
    if (!this.#db.open) {
      return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`, { cause: error });
    }
    return new StoreError(ErrorKind.INTERNAL, `store ${this.id}: ${messageOf(error)}${code ? ` (${code})` : ""}`, {
      cause: error,
    });
  }
}

/** SQL identifiers, quoted (the registry allows only letters, digits and '_' in table_name). */
function names(table: string) {
  const q = (name: string) => `"${name}"`;
  return {
    table: q(table),
    meta: q(`${table}_meta`),
    expiresIndex: q(`${table}_expires_at`),
    usedIndex: q(`${table}_used`),
    onInsert: q(`${table}_count_insert`),
    onDelete: q(`${table}_count_delete`),
    onUpdate: q(`${table}_count_update`),
    shares: q(`${table}_shares`),
    list: q(`${table}_list`),
    zset: q(`${table}_zset`),
    zsetOrder: q(`${table}_zset_order`),
    onItemsDelete: q(`${table}_items_delete`),
    onItemsReplace: q(`${table}_items_replace`),
    shareIndex: q(`${table}_share`),
    onShareInsert: q(`${table}_share_insert`),
    onShareDelete: q(`${table}_share_delete`),
    onShareUpdate: q(`${table}_share_update`),
  };
}

function createSchema(db: Database.Database, tableName: string, lru: boolean, quota: boolean): void {
  const n = names(tableName);
  const size = (row: "NEW" | "OLD") =>
    `(length(${row}.key) + length(${row}.value) + coalesce(length(${row}.metadata), 0) + ${row}.item_bytes)`;
  // IMMEDIATE: two processes opening a new file at once must not both create it.
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${n.table} (
        key BLOB PRIMARY KEY NOT NULL,
        value BLOB NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER NOT NULL DEFAULT 0,
        metadata BLOB,
        used INTEGER NOT NULL DEFAULT 0,
        collection TEXT,
        item_bytes INTEGER NOT NULL DEFAULT 0,
        item_count INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS ${n.expiresIndex} ON ${n.table} (expires_at) WHERE expires_at > 0;
      CREATE TABLE IF NOT EXISTS ${n.meta} (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        schema INTEGER NOT NULL,
        version INTEGER NOT NULL,
        count INTEGER NOT NULL,
        bytes INTEGER NOT NULL
      );
      INSERT OR IGNORE INTO ${n.meta} (id, schema, version, count, bytes) VALUES (1, ${SCHEMA_VERSION}, 0, 0, 0);
    `);
    migrate(db, tableName);
    db.exec(`
      CREATE TRIGGER IF NOT EXISTS ${n.onInsert} AFTER INSERT ON ${n.table} BEGIN
        UPDATE ${n.meta} SET count = count + 1, bytes = bytes + ${size("NEW")} WHERE id = 1;
      END;
      CREATE TRIGGER IF NOT EXISTS ${n.onDelete} AFTER DELETE ON ${n.table} BEGIN
        UPDATE ${n.meta} SET count = count - 1, bytes = bytes - ${size("OLD")} WHERE id = 1;
      END;
      CREATE TRIGGER IF NOT EXISTS ${n.onUpdate} AFTER UPDATE OF value, metadata, item_bytes ON ${n.table} BEGIN
        UPDATE ${n.meta} SET bytes = bytes + ${size("NEW")} - ${size("OLD")} WHERE id = 1;
      END;
      CREATE TABLE IF NOT EXISTS ${n.list} (
        key BLOB NOT NULL,
        pos INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (key, pos)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS ${n.zset} (
        key BLOB NOT NULL,
        member BLOB NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (key, member)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS ${n.zsetOrder} ON ${n.zset} (key, score, member);
      CREATE TRIGGER IF NOT EXISTS ${n.onItemsDelete} AFTER DELETE ON ${n.table} WHEN OLD.collection IS NOT NULL BEGIN
        DELETE FROM ${n.list} WHERE key = OLD.key;
        DELETE FROM ${n.zset} WHERE key = OLD.key;
      END;
      CREATE TRIGGER IF NOT EXISTS ${n.onItemsReplace} AFTER UPDATE OF collection ON ${n.table}
        WHEN OLD.collection IS NOT NULL AND NEW.collection IS NOT OLD.collection BEGIN
        DELETE FROM ${n.list} WHERE key = OLD.key;
        DELETE FROM ${n.zset} WHERE key = OLD.key;
      END;
    `);
    if (lru) db.exec(`CREATE INDEX IF NOT EXISTS ${n.usedIndex} ON ${n.table} (used)`);
    if (quota) createShareSchema(db, tableName, size);
    const schema = db.prepare(`SELECT schema FROM ${n.meta} WHERE id = 1`).pluck().get();
    if (schema !== SCHEMA_VERSION) {
      throw new Error(`table ${n.table} has layout ${String(schema)}, this version reads layout ${SCHEMA_VERSION}`);
    }
  }).immediate();
}

/**
 * The share column and the per-share counts, kept by triggers so they stay right whichever
 * process writes. A table made before quotas gets the column (its keys then belong to no share).
 */
function createShareSchema(db: Database.Database, tableName: string, size: (row: "NEW" | "OLD") => string): void {
  const n = names(tableName);
  const columns = db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(tableName) as string[];
  if (!columns.includes("share")) db.exec(`ALTER TABLE ${n.table} ADD COLUMN share TEXT`);
  const add = (row: "NEW") =>
    `INSERT INTO ${n.shares} (share, keys, bytes) SELECT ${row}.share, 1, ${size(row)} WHERE ${row}.share IS NOT NULL
       ON CONFLICT (share) DO UPDATE SET keys = keys + 1, bytes = bytes + excluded.bytes;`;
  const remove = (row: "OLD") =>
    `UPDATE ${n.shares} SET keys = keys - 1, bytes = bytes - ${size(row)} WHERE share = ${row}.share;
     DELETE FROM ${n.shares} WHERE share = ${row}.share AND keys = 0;`;
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${n.shares} (share TEXT PRIMARY KEY NOT NULL, keys INTEGER NOT NULL, bytes INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS ${n.shareIndex} ON ${n.table} (share, used);
    CREATE TRIGGER IF NOT EXISTS ${n.onShareInsert} AFTER INSERT ON ${n.table} BEGIN ${add("NEW")} END;
    CREATE TRIGGER IF NOT EXISTS ${n.onShareDelete} AFTER DELETE ON ${n.table} BEGIN ${remove("OLD")} END;
    CREATE TRIGGER IF NOT EXISTS ${n.onShareUpdate} AFTER UPDATE OF value, metadata, share, item_bytes ON ${n.table} BEGIN
      ${remove("OLD")}
      ${add("NEW")}
    END;
  `);
}

function prepareStatements(db: Database.Database, tableName: string, quota: boolean) {
  const { table, meta, shares, list, zset } = names(tableName);
  const listStatement = (lower: ">=" | ">", upper: boolean) =>
    db
      .prepare(
        `SELECT key, expires_at, metadata FROM ${table} WHERE key ${lower} ?${upper ? " AND key < ?" : ""} ORDER BY key`,
      )
      .raw();
  const live = "(expires_at = 0 OR expires_at > ?)";
  const expired = "expires_at > 0 AND expires_at <= ?";
  return {
    value: db.prepare(`SELECT value, expires_at, collection FROM ${table} WHERE key = ?`).raw(),
    entry: db.prepare(`SELECT value, version, expires_at, metadata, collection FROM ${table} WHERE key = ?`).raw(),
    expiry: db.prepare(`SELECT expires_at FROM ${table} WHERE key = ?`).pluck(),
    state: db.prepare(`SELECT expires_at, version FROM ${table} WHERE key = ?`).raw(),
    kind: db.prepare(`SELECT expires_at, collection, item_bytes, item_count FROM ${table} WHERE key = ?`).raw(),
    insertCollection: db.prepare(
      `INSERT INTO ${table} (key, value, version, expires_at, used, collection, item_bytes, item_count${quota ? ", share" : ""})
       VALUES (?, X'', ?, 0, ?, ?, ?, ?${quota ? ", ?" : ""})`,
    ),
    updateCollection: db.prepare(
      `UPDATE ${table} SET item_bytes = ?, item_count = ?, version = ?, used = ?${quota ? ", share = coalesce(?, share)" : ""} WHERE key = ?`,
    ),
    zsetScore: db.prepare(`SELECT score FROM ${zset} WHERE key = ? AND member = ?`).pluck(),
    zsetUpsert: db.prepare(`INSERT INTO ${zset} (key, member, score) VALUES (?, ?, ?) ON CONFLICT (key, member) DO UPDATE SET score = excluded.score`),
    zsetDelete: db.prepare(`DELETE FROM ${zset} WHERE key = ? AND member = ?`),
    /** [ascending, descending]: members before (after) (score, member), which is the rank. */
    zsetRank: [
      db.prepare(`SELECT count(*) FROM ${zset} WHERE key = ? AND (score, member) < (?, ?)`).pluck(),
      db.prepare(`SELECT count(*) FROM ${zset} WHERE key = ? AND (score, member) > (?, ?)`).pluck(),
    ] as const,
    zsetByRank: [
      db.prepare(`SELECT member, score FROM ${zset} WHERE key = ? ORDER BY score, member LIMIT ? OFFSET ?`).raw(),
      db.prepare(`SELECT member, score FROM ${zset} WHERE key = ? ORDER BY score DESC, member DESC LIMIT ? OFFSET ?`).raw(),
    ] as const,
    zsetByScore: [
      db.prepare(`SELECT member, score FROM ${zset} WHERE key = ? AND score BETWEEN ? AND ? ORDER BY score, member LIMIT ?`).raw(),
      db.prepare(`SELECT member, score FROM ${zset} WHERE key = ? AND score BETWEEN ? AND ? ORDER BY score DESC, member DESC LIMIT ?`).raw(),
    ] as const,
    listBounds: db.prepare(`SELECT min(pos), max(pos) FROM ${list} WHERE key = ?`).raw(),
    listInsert: db.prepare(`INSERT INTO ${list} (key, pos, value) VALUES (?, ?, ?)`),
    listRange: db.prepare(`SELECT value FROM ${list} WHERE key = ? AND pos BETWEEN ? AND ? ORDER BY pos`).pluck(),
    listRangeBytes: db.prepare(`SELECT coalesce(sum(length(value)), 0) FROM ${list} WHERE key = ? AND pos BETWEEN ? AND ?`).pluck(),
    listDelete: db.prepare(`DELETE FROM ${list} WHERE key = ? AND pos BETWEEN ? AND ?`),
    upsert: db.prepare(
      `INSERT INTO ${table} (key, value, version, expires_at, metadata, used) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
         expires_at = excluded.expires_at, metadata = excluded.metadata, used = excluded.used,
         collection = NULL, item_bytes = 0, item_count = 0`,
    ),
    setExpiry: db.prepare(`UPDATE ${table} SET expires_at = ?, version = ? WHERE key = ?`),
    touch: db.prepare(`UPDATE ${table} SET used = ? WHERE key = ?`),
    nextVersion: db.prepare(`UPDATE ${meta} SET version = version + 1 WHERE id = 1 RETURNING version`).pluck(),
    count: db.prepare(`SELECT count FROM ${meta} WHERE id = 1`).pluck(),
    totals: db.prepare(`SELECT count, bytes FROM ${meta} WHERE id = 1`).raw(),
    deleteKey: db.prepare(`DELETE FROM ${table} WHERE key = ?`),
    deleteLive: db.prepare(`DELETE FROM ${table} WHERE key = ? AND ${live}`),
    deleteExpired: db.prepare(`DELETE FROM ${table} WHERE key = ? AND ${expired}`),
    // Walks the partial index on expires_at.
    countExpired: db.prepare(`SELECT count(*) FROM ${table} WHERE ${expired}`).pluck(),
    // The subquery walks the partial index on expires_at: only rows that expire are looked at.
    sweepBatch: db.prepare(`DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE ${expired} LIMIT ?)`),
    sweepAll: db.prepare(`DELETE FROM ${table} WHERE ${expired}`),
    oldest: db.prepare(`SELECT key FROM ${table} ORDER BY used LIMIT ?`).pluck(),
    clear: db.prepare(`DELETE FROM ${table}`),
    // Quota only: the share column and counts exist.
    upsertShared: quota
      ? db.prepare(
          `INSERT INTO ${table} (key, value, version, expires_at, metadata, used, share) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version,
             expires_at = excluded.expires_at, metadata = excluded.metadata, used = excluded.used,
             share = coalesce(excluded.share, share), collection = NULL, item_bytes = 0, item_count = 0`,
        )
      : undefined,
    ownerOf: quota
      ? db.prepare(`SELECT share, length(key) + length(value) + coalesce(length(metadata), 0) + item_bytes FROM ${table} WHERE key = ?`).raw()
      : undefined,
    shareUsage: quota ? db.prepare(`SELECT keys, bytes FROM ${shares} WHERE share = ?`).raw() : undefined,
    sharesHeld: quota ? db.prepare(`SELECT count(*), coalesce(sum(keys), 0) FROM ${shares}`).raw() : undefined,
    allShares: quota ? db.prepare(`SELECT share, keys, bytes FROM ${shares}`).raw() : undefined,
    oldestOfShare: quota
      ? db.prepare(`SELECT key, length(key) + length(value) + coalesce(length(metadata), 0) + item_bytes FROM ${table} WHERE share = ? ORDER BY used`).raw()
      : undefined,
    oldestUnowned: quota ? db.prepare(`SELECT key FROM ${table} WHERE share IS NULL ORDER BY used LIMIT ?`).pluck() : undefined,
    /** [after applies][has an upper bound] */
    list: [
      [listStatement(">=", false), listStatement(">=", true)],
      [listStatement(">", false), listStatement(">", true)],
    ] as const,
  };
}


/** 16 hex digits, as store.memory writes them (the counter stays below 2^53). */
function formatVersion(version: number): string {
  return version.toString(16).padStart(16, "0");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Brings a table of layout 1 (no lists or sorted sets) to layout 2: the collection columns, and the
 * byte triggers that count item bytes (dropped here, recreated by createSchema).
 */
function migrate(db: Database.Database, tableName: string): void {
  const n = names(tableName);
  const schema = db.prepare(`SELECT schema FROM ${n.meta} WHERE id = 1`).pluck().get();
  if (schema !== 1) return;
  const columns = db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(tableName) as string[];
  if (!columns.includes("collection")) db.exec(`ALTER TABLE ${n.table} ADD COLUMN collection TEXT`);
  if (!columns.includes("item_bytes")) db.exec(`ALTER TABLE ${n.table} ADD COLUMN item_bytes INTEGER NOT NULL DEFAULT 0`);
  if (!columns.includes("item_count")) db.exec(`ALTER TABLE ${n.table} ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0`);
  db.exec(`
    DROP TRIGGER IF EXISTS ${n.onInsert};
    DROP TRIGGER IF EXISTS ${n.onDelete};
    DROP TRIGGER IF EXISTS ${n.onUpdate};
    DROP TRIGGER IF EXISTS ${n.onShareInsert};
    DROP TRIGGER IF EXISTS ${n.onShareDelete};
    DROP TRIGGER IF EXISTS ${n.onShareUpdate};
    UPDATE ${n.meta} SET schema = ${SCHEMA_VERSION} WHERE id = 1;
  `);
}

/**
 * `store.redis`: entries in Redis (ioredis), shared by every host that names the same store.
 *
 * Key layout, for store `app:cache` with the default key_prefix:
 *   luastore:{app:cache}:<key bytes>   a hash { v = value, ver = version, m = metadata } with Redis's own TTL (PX)
 *   luastore:{app:cache}#keys          sorted set of the keys (all scores 0): `list` order and max_size
 *   luastore:{app:cache}#expiry        sorted set of the keys with a TTL, by expiry time
 *   luastore:{app:cache}#sizes         hash key -> bytes, for stats().bytes
 *   luastore:{app:cache}#meta          hash { version = the version counter, bytes, and with a quota shares, owned }
 *   luastore:{app:cache}#owners        with a quota: hash key -> the share that owns it
 *   luastore:{app:cache}#shares        with a quota: hash { k:<share> = keys, b:<share> = bytes }
 * The `{store id}` hash tag keeps one store's keys in one Cluster slot, so its scripts may touch
 * them all. Every operation that writes is one server-side Lua script (./redis-scripts.ts), atomic
 * in Redis.
 *
 * `list` walks the `#keys` sorted set with ZRANGEBYLEX, which orders members by their bytes, so
 * pages are sorted and a walk returns every key present throughout exactly once. (SCAN, which the
 * issue names, returns keys in hash order and may repeat them; it cannot give sorted pages.)
 *
 * Time: Redis expires entries by its own clock; `ttl` and `entry().expiresAt` are read from PTTL
 * (expiresAt = this host's clock + PTTL). The store's injected clock is not used for expiry, so
 * tests run it in real time.
 *
 * Failures: a call gets command_timeout in all (connect_timeout until the first connection is up),
 * waiting for a lost connection included, then fails as Unavailable, retryable. A command is sent
 * at most once: nothing queues or resends it once it may have reached a server (see `connect` and
 * `#call`); only attempts Redis reports as not executed are retried, within that time. A call that
 * timed out may still have been applied, once. The client reconnects by itself.
 *
 * Reads that need no script are plain commands: `get` is one HGET and `has`/`ttl` one PTTL when the
 * key is there; only a miss runs the script that also forgets a key Redis expired. In a store with
 * stale_for those reads are scripts: a stale copy is a hash that HGET and PTTL would show as live
 * (see redis-scripts.ts).
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { Cluster, Command, Redis, type ClusterNode, type RedisOptions } from "ioredis";
import { quoteByteString } from "../bytes.js";
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import { defaultReplicaTimeout } from "../registry/kinds.js";
import type { RedisStoreConfig } from "../registry/types.js";
import { prefixEnd } from "./prefix-range.js";
import { Outcome, SCRIPTS, type ScriptName } from "./redis-scripts.js";
import type {
  AtomicOutcome,
  AtomicStore,
  AtomicWrite,
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
  StaleValue,
  Store,
  ShareUsage,
  StoreInfo,
  StoreStats,
} from "./store.js";
import {
  checkCollectionBounds,
  checkListLimit,
  checkScore,
  LIST_MAX_EXPIRED_PER_PAGE,
  MAX_COLLECTION_BYTES,
  MAX_COLLECTION_ITEMS,
  wrongType,
  type CollectionKind,
} from "./store.js";

/** Keys one sweep or clear script handles: other clients get Redis between batches. */
const BATCH = 1000;
/** How often a store checks its commands in flight for a passed deadline (see `#watchDeadlines`). */
const DEADLINE_TICK_MS = 10;
/** Reconnection delay: grows by 100 ms per attempt up to 1 s, so a restarted Redis is found soon. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** A command (or a script's command) on a key of another type: a value read as a list, a list as a value. */
const WRONG_TYPE_REPLY = /^(ERR .*)?WRONGTYPE\b/;
/** Commands sent without a script (reads whose answer needs no bookkeeping). */
type PlainCommand = "hget" | "pttl" | "llen" | "lrange" | "zscore" | "zrank" | "zrevrank" | "zrange" | "zcard";
/** Reply errors that mean "not now" rather than "wrong": the call is retryable. */
const TRANSIENT_REPLY = /^(OOM|BUSY|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;

export interface RedisStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer. @default true */
  sweepTimer?: boolean;
  /** Where `url_env`, `username_env` and `password_env` are looked up. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory the `tls` files resolve against (the registry's). @default process.cwd() */
  baseDir?: string;
  /** Where the counters live, as SqlStoreOptions.counters. @default a private array */
  counters?: Float64Array;
}

type Arg = Buffer | string | number;
type Reply = Buffer | number | null | Reply[];

/** Each script's SHA1 (what EVALSHA names) and source (EVAL, when a server does not know it yet). */
const SCRIPT_CODE = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, lua]) => [name, { sha: createHash("sha1").update(lua).digest("hex"), lua }]),
) as Record<ScriptName, { sha: string; lua: string }>;
const ASCII = /^[\x00-\x7f]*$/;
/** Bulk strings answer as Buffers (keys and values are bytes). */
const REPLY_AS_BUFFERS = { replyEncoding: null } as const;
/** What ioredis rejects a command with when it did not send it (no connection, no offline queue). */
const NOT_SENT = new Set([
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
]);
/**
 * Replies Redis gives before it runs a command (or, for READONLY, when the script's first write
 * is refused on a replica, which has written nothing): sending the command again is safe.
 */
const NOT_EXECUTED_REPLY = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|NOREPLICAS|BUSY)\b/;

/**
 * The scripts a store's caller writes with: with min_replicas, each is followed by WAIT. The
 * others only read, or forget keys Redis already expired (bookkeeping a replica converges on by
 * itself). Every script is listed, so a new one must say which it is.
 */
const CONFIRMED: Record<ScriptName, boolean> = {
  luastoreGet: false,
  luastoreGetStale: false,
  luastoreGetMany: false,
  luastoreProbe: false,
  luastoreEntry: false,
  luastoreWrite: true,
  luastoreIncr: true,
  luastoreSetMany: true,
  luastoreExpire: true,
  luastoreDelete: true,
  luastoreDeleteMany: true,
  luastoreList: false,
  luastoreListPush: true,
  luastoreListPop: true,
  luastoreListTrim: true,
  luastoreZsetAdd: true,
  luastoreZsetIncr: true,
  luastoreZsetRemove: true,
  luastoreAtomic: true,
  luastoreSweep: false,
  luastoreClear: true,
  luastoreFlush: true,
  luastoreShare: false,
  luastoreShares: false,
  luastoreCapacity: false,
  luastoreTotals: false,
};

const OUTCOMES: Record<number, PutOutcome> = {
  [Outcome.OK]: "ok",
  [Outcome.EXISTS]: "exists",
  [Outcome.MISSING]: "missing",
  [Outcome.CONFLICT]: "conflict",
};

export class RedisStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind = "store.redis" as const;
  readonly config: RedisStoreConfig;
  readonly #clock: Clock;
  readonly #client: Redis | Cluster;
  /** Commands sent and not answered yet, with their call's deadline (performance.now() time). */
  readonly #inFlight = new Map<Command, number>();
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Commands queued at a Cluster node that has not connected: never written to a socket yet. */
  readonly #unsent = new WeakSet<Command>();
  /** The Cluster node a command was last handed to: the one that ran it, when it succeeded. */
  readonly #takenBy = new WeakMap<Command, Redis>();
  /** With min_replicas: WAIT's arguments (replicas, timeout in ms) after every write. */
  readonly #waitArgs: [number, number] | undefined;
  readonly #cluster: boolean;
  /** Credentials that no message may show. */
  readonly #secrets: string[];
  /** `<key_prefix>{<store id>}:`: an entry's Redis key is this followed by the key bytes. */
  readonly #entryPrefix: Buffer;
  /** Milliseconds an expired value stays readable by getStale (0: none). */
  readonly #staleFor: number;
  /** The same, as a string, when it is ASCII (see `#plainKey`). */
  readonly #entryPrefixText: string | undefined;
  /** index, expiry, sizes, meta: the first four KEYS of every script. */
  readonly #bookkeeping: readonly [Buffer, Buffer, Buffer, Buffer];
  readonly #maxSize: string;
  /** Calls waiting for the connection; each is resolved on `ready` or rejected by its own timer. */
  readonly #waiters = new Set<() => void>();
  #everReady = false;
  #closed = false;
  #lastError: Error | undefined;
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

  constructor(config: RedisStoreConfig, options: RedisStoreOptions) {
    this.id = config.id;
    this.config = config;
    this.#clock = options.clock;
    this.#counters = options.counters ?? new Float64Array(6);
    this.#maxSize = String(config.maxSize);
    const base = `${config.keyPrefix}{${config.id}}`;
    this.#entryPrefix = Buffer.from(`${base}:`, "utf8");
    this.#staleFor = config.staleForMs === undefined ? 0 : Math.ceil(config.staleForMs);
    this.#entryPrefixText = ASCII.test(base) ? `${base}:` : undefined;
    this.#bookkeeping = [
      Buffer.from(`${base}#keys`, "utf8"),
      Buffer.from(`${base}#expiry`, "utf8"),
      Buffer.from(`${base}#sizes`, "utf8"),
      Buffer.from(`${base}#meta`, "utf8"),
    ];
    const target = resolveTarget(config, options.env ?? process.env, options.baseDir ?? process.cwd());
    this.#secrets = [target.username, target.password].filter((x): x is string => x !== undefined && x.length >= 3);
    if (config.minReplicas > 0) {
      this.#waitArgs = [config.minReplicas, Math.ceil(config.replicaTimeoutMs ?? defaultReplicaTimeout(config.commandTimeoutMs))];
    }
    this.#client = connect(target, config, this.#unsent, this.#takenBy);
    this.#cluster = this.#client instanceof Cluster;
    // Without an 'error' listener a refused connection would crash the process; the error is
    // kept for the message of the calls that fail meanwhile.
    this.#client.on("error", (error: Error) => {
      this.#lastError = error;
    });
    this.#client.on("ready", () => {
      this.#everReady = true;
      this.#lastError = undefined;
      for (const wake of [...this.#waiters]) wake();
    });
    if (options.sweepTimer ?? true) {
      this.#timer = setInterval(() => {
        // A sweep while Redis is down fails like any call; the next tick tries again.
        this.sweep().catch(() => {});
      }, config.cleanupIntervalMs);
      // The timer must not keep a CLI process alive.
      this.#timer.unref();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  get(key: string): Promise<Uint8Array | undefined> {
    if (this.#staleFor !== 0) return this.#getMiss(key);
    // A hit needs no script: a plain HGET. A miss runs the script, which also forgets a key Redis
    // expired (and counts it), and reads again, in case the key was written in between.
    return this.#call("hget", [this.#plainKey(key), "v"]).then((value) => {
      if (!(value instanceof Buffer)) return this.#getMiss(key);
      this.#hits++;
      return value;
    });
  }

  async #getMiss(key: string): Promise<Uint8Array | undefined> {
    const member = Buffer.from(key, "latin1");
    const reply = await this.#run("luastoreGet", [this.#entryKey(member)], [member]);
    if (reply instanceof Buffer) {
      this.#hits++;
      return reply;
    }
    this.#expired += reply as number;
    this.#misses++;
    return undefined;
  }

  async getStale(key: string): Promise<Uint8Array | StaleValue | undefined> {
    if (this.#staleFor === 0) return this.get(key);
    const member = Buffer.from(key, "latin1");
    const reply = await this.#run("luastoreGetStale", [this.#entryKey(member)], [member]);
    if (Array.isArray(reply)) {
      const value = reply[1] as Buffer;
      if (reply[0] === 0) {
        this.#hits++;
        return value;
      }
      this.#misses++;
      return { stale: value };
    }
    this.#expired += reply as number;
    this.#misses++;
    return undefined;
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const members = keys.map((key) => Buffer.from(key, "latin1"));
    const replies = (await this.#run("luastoreGetMany", members.map((m) => this.#entryKey(m)), members)) as Reply[];
    return replies.map((reply) => {
      if (reply instanceof Buffer) {
        this.#hits++;
        return reply;
      }
      this.#expired += reply as number;
      this.#misses++;
      return undefined;
    });
  }

  async has(key: string): Promise<boolean> {
    return (await this.#probe(key)) !== -2;
  }

  async ttl(key: string): Promise<number | undefined> {
    const pttl = await this.#probe(key);
    if (pttl === -2) return undefined;
    if (pttl === -1) return 0;
    // A live key always has at least 1 ms left, as in memory.
    return Math.max(1, pttl);
  }

  async entry(key: string): Promise<EntryRecord | undefined> {
    const member = Buffer.from(key, "latin1");
    const reply = await this.#run("luastoreEntry", [this.#entryKey(member)], [member]);
    if (!Array.isArray(reply)) {
      this.#expired += reply as number;
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    const [value, version, pttl, metadata] = reply as [Buffer, Buffer, number, Buffer | null | undefined];
    const record: EntryRecord = {
      value,
      version: version.toString("latin1"),
      expiresAt: pttl >= 0 ? this.#clock.now() + Math.max(1, pttl) : 0,
    };
    if (metadata instanceof Buffer) record.metadata = metadata;
    return record;
  }

  async list(options: ListOptions): Promise<ListPage> {
    const { prefix, after, limit } = options;
    checkListLimit(limit);
    const prefixBytes = Buffer.from(prefix, "latin1");
    const afterApplies = after !== undefined && after >= prefix;
    const start = afterApplies
      ? Buffer.concat([Buffer.from("("), Buffer.from(after, "latin1")])
      : prefix === ""
        ? "-"
        : Buffer.concat([Buffer.from("["), prefixBytes]);
    const end = prefixEnd(prefixBytes);
    const stop = end === undefined ? "+" : Buffer.concat([Buffer.from("("), end]);
    const reply = (await this.#run("luastoreList", [], [start, stop, limit, LIST_MAX_EXPIRED_PER_PAGE])) as Reply[];
    const hasMore = reply[0] === 1;
    this.#expired += reply[2] as number;
    const keys: ListedKey[] = [];
    for (let i = 3; i < reply.length; i += 2) {
      const key = (reply[i] as Buffer).toString("latin1");
      const metadata = reply[i + 1];
      keys.push(metadata instanceof Buffer ? { key, metadata } : { key });
    }
    return hasMore ? { keys, cursor: (reply[1] as Buffer).toString("latin1"), hasMore } : { keys, hasMore };
  }

  async info(share?: string): Promise<StoreInfo> {
    await this.sweep();
    const [size, bytes, used, max] = (await this.#run("luastoreCapacity", [], [this.#staleFor])) as [number, number, number, number];
    const info: StoreInfo = { size, bytes, maxSize: this.config.maxSize, eviction: this.config.eviction };
    if (max > 0) info.freeBytes = Math.max(0, max - used);
    const quota = this.config.quota;
    if (quota !== undefined && share !== undefined) {
      const [keys, bytes] = (await this.#run("luastoreShare", [], [Buffer.from(share, "latin1")])) as [number, number];
      info.quota = { by: quota.by, share, keys, bytes, maxKeys: quota.maxKeys };
      if (quota.maxBytes !== undefined) info.quota.maxBytes = quota.maxBytes;
    }
    return info;
  }

  async size(): Promise<number> {
    await this.sweep();
    return (await this.#totals(this.#staleFor))[0];
  }

  async stats(): Promise<StoreStats> {
    const [size, bytes] = await this.#totals();
    const stats: StoreStats = {
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      deletes: this.#deletes,
      expired: this.#expired,
      evicted: 0,
      size,
      bytes,
    };
    if (this.config.quota !== undefined) {
      const flat = (await this.#run("luastoreShares", [], [])) as (Buffer | number)[];
      const shares: Record<string, ShareUsage> = {};
      for (let i = 0; i < flat.length; i += 3) {
        shares[(flat[i] as Buffer).toString("latin1")] = { keys: flat[i + 1] as number, bytes: flat[i + 2] as number };
      }
      stats.shares = shares;
    }
    return stats;
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  async set(key: string, value: Uint8Array, ttlMs: number, share?: string): Promise<void> {
    await this.#write("set", key, value, ttlMs, share);
  }

  async add(key: string, value: Uint8Array, ttlMs: number, share?: string): Promise<boolean> {
    return (await this.#write("add", key, value, ttlMs, share)) === "ok";
  }

  async replace(key: string, value: Uint8Array, ttlMs: number, share?: string): Promise<boolean> {
    return (await this.#write("replace", key, value, ttlMs, share)) === "ok";
  }

  async put(key: string, value: Uint8Array, options: PutOptions): Promise<PutOutcome> {
    const { ifVersion } = options;
    if (options.onlyIfAbsent && ifVersion !== undefined) {
      throw new StoreError(ErrorKind.INVALID, "put: onlyIfAbsent and ifVersion cannot be combined");
    }
    const mode = options.onlyIfAbsent ? "absent" : ifVersion !== undefined ? "version" : "put";
    return this.#write(mode, key, value, options.ttlMs, options.share, ifVersion, options.metadata);
  }

  async incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): Promise<Uint8Array> {
    const member = Buffer.from(key, "latin1");
    const reply = (await this.#run(
      "luastoreIncr",
      [this.#entryKey(member)],
      [
        member,
        float64(by.value),
        by.float ? "1" : "0",
        float64(init.value),
        init.float ? "1" : "0",
        this.#ttlArg(initTtlMs),
        this.#maxSize,
        ...this.#quotaArgs(share),
      ],
    )) as [number, Buffer, number, Buffer?];
    const [outcome, bytes, expired, refusal] = reply;
    this.#expired += expired;
    if (outcome === Outcome.NOT_A_NUMBER) {
      throw new StoreError(ErrorKind.INVALID, `value at key ${quoteByteString(key)} is not a number`);
    }
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    this.#refuse(outcome, refusal);
    this.#sets++;
    return bytes;
  }

  async setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): Promise<void> {
    // The last value of a repeated key wins.
    const batch = new Map<string, Uint8Array>();
    for (const [key, value] of entries) batch.set(key, value);
    if (batch.size > this.config.maxSize) {
      throw new StoreError(
        ErrorKind.INVALID,
        `store ${this.id}: a batch of ${batch.size} keys can never fit (max_size ${this.config.maxSize})`,
      );
    }
    if (batch.size === 0) return;
    const members = [...batch.keys()].map((key) => Buffer.from(key, "latin1"));
    const reply = (await this.#run(
      "luastoreSetMany",
      members.map((m) => this.#entryKey(m)),
      [this.#ttlArg(ttlMs), this.#maxSize, ...members, ...[...batch.values()].map(asBuffer), ...this.#quotaArgs(share)],
    )) as [number, number, number, Buffer?];
    const [outcome, newKeys, expired, refusal] = reply;
    this.#expired += expired;
    if (outcome === Outcome.FULL) throw this.#full(`${newKeys} new keys`);
    this.#refuse(outcome, refusal);
    this.#sets += entries.length;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const member = Buffer.from(key, "latin1");
    const [changed, expired] = (await this.#run("luastoreExpire", [this.#entryKey(member)], [member, this.#ttlArg(ttlMs)])) as [
      number,
      number,
    ];
    this.#expired += expired;
    return changed === 1;
  }

  async delete(key: string): Promise<boolean> {
    const member = Buffer.from(key, "latin1");
    const [deleted, expired] = (await this.#run("luastoreDelete", [this.#entryKey(member)], [member])) as [number, number];
    this.#expired += expired;
    if (deleted === 1) this.#deletes++;
    return deleted === 1;
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    const distinct = [...new Set(keys)];
    if (distinct.length === 0) return 0;
    const members = distinct.map((key) => Buffer.from(key, "latin1"));
    const [deleted, expired] = (await this.#run("luastoreDeleteMany", members.map((m) => this.#entryKey(m)), members)) as [number, number];
    this.#expired += expired;
    this.#deletes += deleted;
    return deleted;
  }

  async clear(): Promise<void> {
    // In batches, each atomic: a concurrent writer's key is either cleared or kept whole.
    while (((await this.#run("luastoreClear", [], [BATCH])) as number) > 0);
  }

  async flush(): Promise<number> {
    // In batches like clear; a key whose hash Redis already expired counts as expired.
    let live = 0;
    for (;;) {
      const [removed, gone] = (await this.#run("luastoreFlush", [], [BATCH])) as [number, number];
      live += removed;
      this.#expired += gone;
      if (removed + gone === 0) return live;
    }
  }

  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const [forgotten, looked] = (await this.#run("luastoreSweep", [], [BATCH])) as [number, number];
      total += forgotten;
      // A due key Redis has not dropped yet is looked at but kept: stop rather than spin on it.
      if (looked < BATCH || forgotten === 0) break;
    }
    this.#expired += total;
    return total;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    // Commands still in flight settle as the connection closes; none needs its deadline now.
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#inFlight.clear();
    for (const wake of [...this.#waiters]) wake();
    if (this.#client.status === "ready") {
      try {
        await this.#client.quit();
        return;
      } catch {
        // Fall through to a hard disconnect.
      }
    }
    this.#client.disconnect();
  }

  // -------------------------------------------------------------------------------------------
  // Lists: a native Redis list at the entry key (no hash, so no version field)
  // -------------------------------------------------------------------------------------------

  async listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): Promise<number> {
    const member = Buffer.from(key, "latin1");
    const args: Arg[] = [member, end, this.#maxSize, MAX_COLLECTION_ITEMS, MAX_COLLECTION_BYTES, ...this.#quotaArgs(share), ...values.map(asBuffer)];
    const reply = (await this.#run("luastoreListPush", [this.#entryKey(member)], args)) as [number, number, Reply, Reply?];
    const [outcome, expired, third, fourth] = reply;
    this.#expired += expired;
    this.#collectionOutcome(key, "list", outcome, third, fourth);
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    this.#refuse(outcome, third instanceof Buffer ? third : undefined);
    this.#sets++;
    return third as number;
  }

  async listPop(key: string, end: ListEnd, count: number): Promise<Uint8Array[]> {
    const member = Buffer.from(key, "latin1");
    const reply = (await this.#run("luastoreListPop", [this.#entryKey(member)], [member, end, count])) as Reply[];
    const [outcome, expired] = reply as [number, number];
    this.#expired += expired;
    this.#collectionOutcome(key, "list", outcome, reply[2] ?? null);
    if (reply.length > 2) this.#sets++;
    return reply.slice(2) as Buffer[];
  }

  async listLength(key: string): Promise<number> {
    return (await this.#typed(key, "list", "llen", [this.#plainKey(key)], 0)) as number;
  }

  async listRange(key: string, start: number, stop: number): Promise<Uint8Array[]> {
    return (await this.#typed(key, "list", "lrange", [this.#plainKey(key), start, stop], [])) as Buffer[];
  }

  async listTrim(key: string, start: number, stop: number): Promise<number> {
    const member = Buffer.from(key, "latin1");
    const reply = (await this.#run("luastoreListTrim", [this.#entryKey(member)], [member, start, stop])) as [number, number, Reply];
    const [outcome, expired, third] = reply;
    this.#expired += expired;
    this.#collectionOutcome(key, "list", outcome, third);
    if (outcome === Outcome.OK && (third as number) > 0) this.#sets++;
    return third as number;
  }

  // -------------------------------------------------------------------------------------------
  // Sorted sets: a native ZSET at the entry key (ties ordered by member bytes, as the store wants)
  // -------------------------------------------------------------------------------------------

  async zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): Promise<number> {
    for (const { score } of entries) checkScore(this.id, key, score);
    const member = Buffer.from(key, "latin1");
    const pairs: Arg[] = [];
    for (const e of entries) pairs.push(scoreArg(e.score), Buffer.from(e.member, "latin1"));
    const args: Arg[] = [member, this.#maxSize, MAX_COLLECTION_ITEMS, MAX_COLLECTION_BYTES, ...this.#quotaArgs(share), ...pairs];
    const [outcome, expired, third, fourth] = (await this.#run("luastoreZsetAdd", [this.#entryKey(member)], args)) as [number, number, Reply, Reply?];
    this.#expired += expired;
    this.#collectionOutcome(key, "zset", outcome, third, fourth);
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    this.#refuse(outcome, third instanceof Buffer ? third : undefined);
    this.#sets++;
    return third as number;
  }

  async zsetIncr(key: string, setMember: string, by: number, share?: string): Promise<number> {
    checkScore(this.id, key, by);
    const member = Buffer.from(key, "latin1");
    const args: Arg[] = [member, this.#maxSize, MAX_COLLECTION_ITEMS, MAX_COLLECTION_BYTES, ...this.#quotaArgs(share), scoreArg(by), Buffer.from(setMember, "latin1")];
    const [outcome, expired, third, fourth] = (await this.#run("luastoreZsetIncr", [this.#entryKey(member)], args)) as [number, number, Reply, Reply?];
    this.#expired += expired;
    if (outcome === Outcome.NOT_A_NUMBER) checkScore(this.id, key, Number.NaN);
    this.#collectionOutcome(key, "zset", outcome, third, fourth);
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    this.#refuse(outcome, third instanceof Buffer ? third : undefined);
    this.#sets++;
    return parseScore(third);
  }

  async zsetScore(key: string, member: string): Promise<number | undefined> {
    const reply = await this.#typed(key, "zset", "zscore", [this.#plainKey(key), Buffer.from(member, "latin1")], null);
    return reply === null ? undefined : parseScore(reply);
  }

  async zsetRank(key: string, member: string, reverse: boolean): Promise<number | undefined> {
    const reply = await this.#typed(key, "zset", reverse ? "zrevrank" : "zrank", [this.#plainKey(key), Buffer.from(member, "latin1")], null);
    return reply === null ? undefined : (reply as number);
  }

  async zsetRange(key: string, range: ZsetRange): Promise<ZsetEntry[]> {
    const args: Arg[] = [this.#plainKey(key)];
    if (range.by === "score") {
      // REV takes the bounds from the highest.
      const [from, to] = range.reverse ? [range.max, range.min] : [range.min, range.max];
      args.push(scoreArg(from), scoreArg(to), "BYSCORE");
      if (range.reverse) args.push("REV");
      if (range.limit !== undefined) args.push("LIMIT", 0, range.limit);
    } else {
      let stop = range.stop;
      // LIMIT needs BYSCORE or BYLEX: a rank range is cut short by its stop instead, when both ends count from the start.
      if (range.limit !== undefined && range.start >= 0 && stop >= 0) stop = Math.min(stop, range.start + range.limit - 1);
      args.push(range.start, stop);
      if (range.reverse) args.push("REV");
    }
    if (range.limit === 0) return [];
    args.push("WITHSCORES");
    const flat = (await this.#typed(key, "zset", "zrange", args, [])) as Buffer[];
    const n = Math.min(flat.length / 2, range.limit ?? Number.POSITIVE_INFINITY);
    const out = new Array<ZsetEntry>(n);
    for (let i = 0; i < n; i++) out[i] = { member: flat[2 * i]!.toString("latin1"), score: parseScore(flat[2 * i + 1]!) };
    return out;
  }

  async zsetRemove(key: string, members: readonly string[]): Promise<number> {
    const member = Buffer.from(key, "latin1");
    const args: Arg[] = [member, ...members.map((m) => Buffer.from(m, "latin1"))];
    const [outcome, expired, third] = (await this.#run("luastoreZsetRemove", [this.#entryKey(member)], args)) as [number, number, Reply];
    this.#expired += expired;
    this.#collectionOutcome(key, "zset", outcome, third);
    if ((third as number) > 0) this.#sets++;
    return third as number;
  }

  async zsetCard(key: string): Promise<number> {
    return (await this.#typed(key, "zset", "zcard", [this.#plainKey(key)], 0)) as number;
  }

  // -------------------------------------------------------------------------------------------
  // Multi-key transactions: one script over keys of one hash tag, so one slot of a Cluster
  // -------------------------------------------------------------------------------------------

  async atomic(tx: AtomicWrite, share?: string): Promise<AtomicOutcome> {
    const touched = new Set([...tx.set.map(([key]) => key), ...tx.incr.map(([key]) => key)]);
    if (touched.size > this.config.maxSize) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: a transaction of ${touched.size} keys can never fit (max_size ${this.config.maxSize})`);
    }
    const keys: Buffer[] = [];
    const data: Arg[] = [];
    const member = (key: string): Buffer => {
      const m = Buffer.from(key, "latin1");
      keys.push(this.#entryKey(m));
      return m;
    };
    for (const [key, version] of tx.checks) data.push(member(key), version ?? "");
    for (const [key, value] of tx.set) data.push(member(key), asBuffer(value));
    for (const key of tx.delete) data.push(member(key));
    for (const [key, by] of tx.incr) data.push(member(key), float64(by.value), by.float ? "1" : "0");
    const [share_, maxKeys, maxBytes] = this.#quotaArgs(share);
    const args: Arg[] = [this.#maxSize, this.#ttlArg(tx.ttlMs), share_!, maxKeys!, maxBytes!, tx.checks.length, tx.set.length, tx.delete.length, tx.incr.length, ...data];
    const reply = (await this.#run("luastoreAtomic", keys, args)) as Reply[];
    const [outcome, expired] = reply as [number, number];
    this.#expired += expired;
    if (outcome === Outcome.CONFLICT) return { ok: false, conflict: tx.checks[(reply[2] as number) - 1]![0] };
    if (outcome === Outcome.NOT_A_NUMBER) {
      throw new StoreError(ErrorKind.INVALID, `value at key ${quoteByteString(tx.incr[(reply[2] as number) - 1]![0])} is not a number`);
    }
    if (outcome === Outcome.FULL) throw this.#full(`${reply[2] as number} new keys`);
    this.#refuse(outcome, reply[2] instanceof Buffer ? reply[2] : undefined);
    this.#sets += tx.set.length + tx.incr.length;
    this.#deletes += tx.delete.length;
    return { ok: true, incr: reply.slice(2) as Buffer[] };
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  /** Throws for a collection script's WRONG_TYPE (with the key's Redis TYPE) or BOUNDS (items, bytes) outcome. */
  #collectionOutcome(key: string, kind: CollectionKind, outcome: number, third: Reply, fourth?: Reply): void {
    if (outcome === Outcome.WRONG_TYPE) throw wrongType(this.id, key, holdsOf(third), kind);
    if (outcome === Outcome.BOUNDS) checkCollectionBounds(this.id, key, kind, third as number, fourth as number);
  }

  /** A plain read command on a collection: a key of another type answers WRONGTYPE, which becomes INVALID. */
  /** A plain collection read; `missing` is its answer for a key that is not there. */
  async #typed(key: string, kind: CollectionKind, name: PlainCommand, args: Arg[], missing: Reply): Promise<Reply> {
    try {
      return await this.#call(name, args);
    } catch (error) {
      if (error instanceof StoreError && error.kind === ErrorKind.INVALID) {
        // A value's stale copy is a hash the plain command meets: the key is missing.
        if (this.#staleFor !== 0 && !(await this.has(key))) return missing;
        throw new StoreError(ErrorKind.INVALID, `store ${this.id}: key ${JSON.stringify(key)} does not hold ${kind === "list" ? "a list" : "a sorted set"}`);
      }
      throw error;
    }
  }

  async #write(
    mode: "set" | "add" | "replace" | "put" | "absent" | "version",
    key: string,
    value: Uint8Array,
    ttlMs: number,
    share: string | undefined,
    ifVersion?: string,
    metadata?: Uint8Array,
  ): Promise<PutOutcome> {
    const member = Buffer.from(key, "latin1");
    // Metadata is a MessagePack table, never empty: "" says there is none.
    const args: Arg[] = [member, asBuffer(value), this.#ttlArg(ttlMs), this.#maxSize, mode, ifVersion ?? "", metadata !== undefined ? asBuffer(metadata) : ""];
    args.push(...this.#quotaArgs(share));
    const [outcome, expired, refusal] = (await this.#run("luastoreWrite", [this.#entryKey(member)], args)) as [number, number, Buffer?];
    this.#expired += expired;
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    this.#refuse(outcome, refusal);
    if (outcome === Outcome.OK) this.#sets++;
    return OUTCOMES[outcome]!;
  }

  /** The key's PTTL: -2 missing, -1 no TTL. A plain PTTL; only a miss runs the script (see `get`). */
  async #probe(key: string): Promise<number> {
    // With stale_for a PTTL counts the stale copy's grace: the script reads the logical expiry.
    const plain = this.#staleFor === 0 ? ((await this.#call("pttl", [this.#plainKey(key)])) as number) : -2;
    if (plain !== -2) return plain;
    const member = Buffer.from(key, "latin1");
    const entryKey = this.#entryKey(member);
    const [pttl, expired] = (await this.#run("luastoreProbe", [entryKey], [member])) as [number, number];
    this.#expired += expired;
    return pttl;
  }

  /** Keys and bytes; keys leave out stale copies when `staleFor` is the store's (0: count them). */
  async #totals(staleFor = 0): Promise<[number, number]> {
    return (await this.#run("luastoreTotals", [], [staleFor])) as [number, number];
  }

  /** The share arguments every write script ends with: share ("" = the host), max_keys (0: no quota), max_bytes (-1: none). */
  #quotaArgs(share: string | undefined): Arg[] {
    const quota = this.config.quota;
    if (quota === undefined) return ["", 0, -1];
    return [share === undefined ? "" : Buffer.from(share, "latin1"), quota.maxKeys, quota.maxBytes ?? -1];
  }

  /** Throws the quota refusal a write script answered with, if any. */
  #refuse(outcome: number, refusal: Buffer | undefined): void {
    const why = refusal?.toString("latin1") ?? "";
    if (outcome === Outcome.OVER_QUOTA) {
      throw new StoreError(ErrorKind.RATE_LIMITED, `store ${this.id}: the writer's share of ${this.config.quota?.by ?? ""} would hold ${why}`);
    }
    if (outcome === Outcome.RESERVED) {
      throw new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is full: ${why}`, { retryable: true });
    }
  }

  /**
   * A TTL argument of the write scripts: whole milliseconds (a fractional TTL rounds up so that it
   * never becomes 0, none), with the store's stale_for after a comma when it has one (see ttl_arg in
   * redis-scripts.ts).
   */
  #ttlArg(ttlMs: number): number | string {
    const ttl = ttlMs > 0 ? Math.ceil(ttlMs) : 0;
    return ttl > 0 && this.#staleFor !== 0 ? `${ttl},${this.#staleFor}` : ttl;
  }

  #entryKey(member: Buffer): Buffer {
    return Buffer.concat([this.#entryPrefix, member]);
  }

  /**
   * The entry key for a plain command: a string when prefix and key are ASCII (the command then
   * goes out as one string, no Buffer copies), else the bytes.
   */
  #plainKey(key: string): string | Buffer {
    if (this.#entryPrefixText !== undefined && ASCII.test(key)) return this.#entryPrefixText + key;
    return this.#entryKey(Buffer.from(key, "latin1"));
  }

  /** Runs one script with the bookkeeping keys, `entryKeys` and the entry prefix before `args`. */
  #run(name: ScriptName, entryKeys: readonly Buffer[], args: readonly Arg[]): Promise<Reply> {
    const { sha, lua } = SCRIPT_CODE[name];
    const confirm = this.#waitArgs !== undefined && CONFIRMED[name];
    return this.#call("evalsha", [sha, 4 + entryKeys.length, ...this.#bookkeeping, ...entryKeys, this.#entryPrefix, ...args], lua, confirm);
  }

  /**
   * Sends one command and answers its reply, within command_timeout (connect_timeout while the
   * first connection is not up yet) from the call. A command is sent once: the only retries are of
   * attempts Redis reports as not executed (see `#notExecuted`), and only while time is left. A
   * script the server does not know (NOSCRIPT, not executed) is sent once more as EVAL. With
   * `confirm`, the call succeeds only once min_replicas replicas have its effect (see `#confirm`).
   */
  async #call(name: "evalsha" | PlainCommand, args: Arg[], lua?: string, confirm = false): Promise<Reply> {
    const started = performance.now();
    const deadline = started + (this.#everReady ? this.config.commandTimeoutMs : this.config.connectTimeoutMs);
    let commandName: string = name;
    for (let attempt = 0; ; attempt++) {
      if (this.#client.status !== "ready") await this.#connected(deadline);
      const command = new Command(commandName, args, REPLY_AS_BUFFERS);
      this.#inFlight.set(command, deadline);
      this.#watchDeadlines();
      // A Cluster command counts as unsent until a connected node takes it (see `connect`).
      if (this.#cluster) this.#unsent.add(command);
      else batchWrites((this.#client as Redis).stream);
      this.#client.sendCommand(command);
      // One connection (standalone, Sentinel): WAIT right behind the script, in the same write,
      // counts the replicas that have the script's effect, with no round trip of its own. On a
      // Cluster the script's node is known only once it answered (a redirection moves it).
      const ack = confirm && !this.#cluster ? this.#sendWait(this.#client as Redis, deadline) : undefined;
      let reply: Reply;
      try {
        reply = (await command.promise) as Reply;
        this.#inFlight.delete(command);
      } catch (error) {
        this.#inFlight.delete(command);
        // The script did not run (or failed): what WAIT answers says nothing about this call.
        if (ack !== undefined) {
          this.#inFlight.delete(ack);
          ack.promise.catch(() => {});
        }
        if (lua !== undefined && commandName === "evalsha" && isReplyError(error, "NOSCRIPT")) {
          commandName = "eval";
          args = [lua, ...args.slice(1)];
          continue;
        }
        const pause = Math.min(5 * 2 ** attempt, 100);
        if (this.#notExecuted(error, command) && performance.now() + pause < deadline && !this.#closed) {
          await new Promise((resolve) => setTimeout(resolve, pause));
          continue;
        }
        throw this.#storeError(error);
      }
      if (confirm) await this.#confirm(ack ?? this.#waitOnNodeOf(command, deadline));
      return reply;
    }
  }

  /** Sends WAIT (min_replicas, replica_timeout) on `connection`, timed with the call. */
  #sendWait(connection: Redis, deadline: number): Command {
    const wait = new Command("wait", this.#waitArgs!);
    this.#inFlight.set(wait, deadline);
    this.#watchDeadlines();
    connection.sendCommand(wait);
    return wait;
  }

  /** WAIT on the Cluster node that ran `command`; undefined when none is known. */
  #waitOnNodeOf(command: Command, deadline: number): Command | undefined {
    const node = this.#takenBy.get(command);
    return node === undefined ? undefined : this.#sendWait(node, deadline);
  }

  /**
   * Succeeds when WAIT counted min_replicas replicas. Otherwise the write has taken effect on the
   * primary and is not undone, so the error is not retryable: a script that retried it would
   * apply it twice. What it may lose is what asynchronous replication loses: the primary failing
   * before a replica has it.
   */
  async #confirm(wait: Command | undefined): Promise<void> {
    const [need, timeoutMs] = this.#waitArgs!;
    let acked: number | undefined;
    let why = "the node that ran it is not known";
    if (wait !== undefined) {
      try {
        acked = (await wait.promise) as number;
      } catch (error) {
        why = this.#scrub(error instanceof Error ? error.message : String(error));
      }
      this.#inFlight.delete(wait);
    }
    if (acked !== undefined && acked >= need) return;
    const seen = acked === undefined ? `its replicas could not be counted (${why})` : `${acked} of ${need} replicas (min_replicas) had it after ${timeoutMs} ms`;
    throw new StoreError(
      ErrorKind.UNAVAILABLE,
      `store ${this.id}: the write took effect on the primary, but ${seen}; not retryable: it is applied, and a retry would apply it again`,
    );
  }

  /**
   * Fails commands whose call ran out of time ("Command timed out", as ioredis's own timeout
   * would). One timer per store, every DEADLINE_TICK_MS while commands are in flight, instead of a
   * timer per command: a call fails at most a tick after its deadline.
   */
  #watchDeadlines(): void {
    if (this.#deadlineTimer !== undefined) return;
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      const now = performance.now();
      for (const [command, deadline] of this.#inFlight) {
        if (deadline > now) continue;
        this.#inFlight.delete(command);
        command.reject(new Error("Command timed out"));
      }
      if (this.#inFlight.size > 0) this.#watchDeadlines();
    }, DEADLINE_TICK_MS);
    this.#deadlineTimer.unref();
  }

  /**
   * True when Redis (or the client, before sending) says this attempt was not executed, so that
   * sending it again cannot apply it twice: refused before sending (no connection), queued at a
   * Cluster node that never connected, or a reply that Redis gives before running a command.
   */
  #notExecuted(error: unknown, command: Command): boolean {
    if (this.#unsent.has(command)) return true;
    if (!(error instanceof Error)) return false;
    if (NOT_SENT.has(error.message)) return true;
    return error.name === "ReplyError" && NOT_EXECUTED_REPLY.test(error.message);
  }

  /** Waits for the connection until `deadline` (a performance.now() time). */
  #connected(deadline: number): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`));
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        if (this.#closed) reject(new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`));
        else resolve();
      };
      const waited = this.#everReady ? this.config.commandTimeoutMs : this.config.connectTimeoutMs;
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        const cause = this.#lastError === undefined ? "" : `: ${this.#scrub(this.#lastError.message)}`;
        reject(
          new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id}: Redis is not reachable after ${waited} ms${cause}`, {
            retryable: true,
          }),
        );
      }, Math.max(0, deadline - performance.now()));
      this.#waiters.add(wake);
    });
  }

  #full(what: string): StoreError {
    return new StoreError(
      ErrorKind.UNAVAILABLE,
      `store ${this.id} is full (max_size ${this.config.maxSize}); cannot add ${what}`,
      { retryable: true },
    );
  }

  /**
   * Client and server failures as StoreErrors: anything about reaching Redis is Unavailable,
   * retryable. The message never shows a credential, and the client's error is not attached.
   */
  #storeError(error: unknown): StoreError {
    if (error instanceof StoreError) return error;
    const message = this.#scrub(error instanceof Error ? error.message : String(error));
    const isReply = error instanceof Error && error.name === "ReplyError";
    if (isReply && WRONG_TYPE_REPLY.test(message)) {
      return new StoreError(ErrorKind.INVALID, `store ${this.id}: the key holds another type than the call reads or writes (a value, a list or a sorted set)`);
    }
    if (isReply && !TRANSIENT_REPLY.test(message)) {
      return new StoreError(ErrorKind.INTERNAL, `store ${this.id}: Redis refused a command: ${message}`);
    }
    if (this.#closed) return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`);
    return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id}: Redis: ${message}`, { retryable: true });
  }

  /** `text` with every credential of the store masked. */
  #scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join("***");
    return out;
  }
}

/** Sockets corked until the current burst of calls is over. */
const corked = new Set<{ uncork(): void }>();

/**
 * Auto-pipelining: commands sent in one burst (concurrent runs resumed by the same reply, or one
 * `Promise.all`) leave in one write instead of one system call each. The socket is corked at the
 * first command and uncorked once the burst's promise jobs have run (process.nextTick runs after
 * them). Unlike ioredis's enableAutoPipelining, no Pipeline is involved, so a command's error and
 * retry handling stay exactly those of a command sent alone.
 */
function batchWrites(stream: { cork(): void; uncork(): void; writable?: boolean } | undefined | null): void {
  if (stream == null || corked.has(stream) || stream.writable === false) return;
  stream.cork();
  corked.add(stream);
  if (corked.size === 1) process.nextTick(uncorkAll);
}

function uncorkAll(): void {
  for (const stream of corked) stream.uncork();
  corked.clear();
}

/** True when `error` is a Redis error reply starting with `code`. */
function isReplyError(error: unknown, code: string): boolean {
  return error instanceof Error && error.name === "ReplyError" && error.message.startsWith(code);
}

/** Where and how to connect, with every `*_env` variable and file read. */
interface Target {
  /** Cluster seeds, or the one server (a Sentinel setup has none: `sentinels`). */
  nodes: { host: string; port: number }[];
  db: number;
  cluster: boolean;
  sentinels: { host: string; port: number }[] | undefined;
  sentinelName: string | undefined;
  username: string | undefined;
  password: string | undefined;
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
}

/** Where a store.redis entry points, from its config and the environment; throws StoreError INVALID when it cannot (also used by `luastore check`). */
export function resolveTarget(
  config: RedisStoreConfig,
  env: Readonly<Record<string, string | undefined>>,
  baseDir: string,
): Target {
  const invalid = (message: string): StoreError => new StoreError(ErrorKind.INVALID, `store ${config.id}: ${message}`);
  const fromEnv = (name: string, field: string): string => {
    const value = env[name];
    if (value === undefined || value === "") throw invalid(`environment variable ${name} (${field}) is not set`);
    return value;
  };
  let urls: string[] = [];
  if (config.nodes !== undefined) urls = config.nodes;
  else if (config.url !== undefined) urls = [config.url];
  else if (config.urlEnv !== undefined) {
    const value = fromEnv(config.urlEnv, "url_env");
    // The value may hold a password: the message never shows it.
    if (!/^rediss?:\/\/[^/]/.test(value)) {
      throw invalid(`environment variable ${config.urlEnv} (url_env) must hold a redis:// or rediss:// URL`);
    }
    urls = [value];
  }
  const cluster = config.cluster || config.nodes !== undefined;
  const parsed = urls.map((url) => new URL(url));
  const db = parsed[0] === undefined || parsed[0].pathname.length <= 1 ? 0 : Number(parsed[0].pathname.slice(1));
  if (cluster && config.urlEnv !== undefined && db !== 0) {
    throw invalid(`environment variable ${config.urlEnv} (url_env): a Redis Cluster has only database 0: drop the /${db} path`);
  }
  const first = parsed[0];
  const username =
    config.username ?? (config.usernameEnv === undefined ? undefined : fromEnv(config.usernameEnv, "username_env")) ??
    (first?.username ? decodeURIComponent(first.username) : undefined);
  const password =
    config.password ?? (config.passwordEnv === undefined ? undefined : fromEnv(config.passwordEnv, "password_env")) ??
    (first?.password ? decodeURIComponent(first.password) : undefined);
  const read = (file: string | undefined, field: string): Buffer | undefined => {
    if (file === undefined) return undefined;
    const path = resolvePath(baseDir, file);
    try {
      return readFileSync(path);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? "unreadable";
      throw invalid(`tls.${field} ${path}: cannot read the file (${reason})`);
    }
  };
  const wantsTls = first?.protocol === "rediss:" || (config.sentinels !== undefined && config.tls.caFile !== undefined);
  const tls = wantsTls
    ? {
        ...(config.tls.caFile === undefined ? {} : { ca: read(config.tls.caFile, "ca_file") }),
        ...(config.tls.certFile === undefined ? {} : { cert: read(config.tls.certFile, "cert_file") }),
        ...(config.tls.keyFile === undefined ? {} : { key: read(config.tls.keyFile, "key_file") }),
      }
    : undefined;
  return {
    nodes: parsed.map((url) => ({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 6379) })),
    db,
    cluster,
    sentinels: config.sentinels,
    sentinelName: config.sentinelName,
    username,
    password,
    tls,
  };
}

/**
 * The client: one connection (to the server, or to the primary the sentinels name), or a Cluster
 * client seeded with the nodes. No client-side resend of a command that may have reached a server
 * (see `#call` for the retries luastore makes itself).
 */
function connect(target: Target, config: RedisStoreConfig, unsent: WeakSet<Command>, takenBy: WeakMap<Command, Redis>): Redis | Cluster {
  const options: RedisOptions = {
    connectTimeout: config.connectTimeoutMs,
    // No commandTimeout: it arms a timer per command; RedisStore times its commands itself.
    // Never queue commands while disconnected: a queued command could run long after its caller
    // was told it failed, and a retried incr would then count twice.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    // Commands in flight when the connection drops fail at once instead of waiting for a reconnect.
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    // A primary demoted by a failover answers writes with READONLY: reconnect (to the new primary,
    // with Sentinel) without resending (1, not 2).
    reconnectOnError: (error) => (error.message.startsWith("READONLY") ? 1 : false),
    connectionName: `luastore:${config.id}`,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls === undefined ? {} : { tls: target.tls }),
  };
  if (target.sentinels !== undefined) {
    return new Redis({ ...options, sentinels: target.sentinels, name: target.sentinelName!, db: target.db });
  }
  if (!target.cluster) return new Redis({ ...options, ...target.nodes[0]!, db: target.db });
  const cluster = new Cluster(target.nodes as ClusterNode[], {
    // Without it, a command for a node that is still connecting fails as "Connection is closed",
    // which cannot be told from a connection lost in flight. Queued commands are safe: see below.
    enableOfflineQueue: true,
    // No resend after "Connection is closed" or CLUSTERDOWN: the command may have run (closed), and
    // luastore retries CLUSTERDOWN itself, within command_timeout. MOVED, ASK and TRYAGAIN are
    // redirections Redis gives before running a command; the guard below keeps even those from
    // sending a command whose caller was already told it failed.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    slotsRefreshTimeout: config.connectTimeoutMs,
    redisOptions: options,
  });
  // ioredis queues commands while the Cluster or a node is connecting (ConnectionPool forces
  // enableOfflineQueue: true on each node) and hands a command to a node again after a redirection.
  // Here a node never writes a command that has already settled (its caller was answered), and a
  // command stays in `unsent` until a connected node takes it, so that one that fails while still
  // queued is known not to have been sent.
  cluster.on("+node", (node: Redis) => {
    const send = node.sendCommand.bind(node);
    node.sendCommand = (command: Command, stream?: Parameters<Redis["sendCommand"]>[1]) => {
      if (command.isSettled) return command.promise;
      takenBy.set(command, node);
      if (node.status === "ready") {
        unsent.delete(command);
        batchWrites(node.stream);
      } else {
        unsent.add(command);
      }
      return send(command, stream);
    };
  });
  return cluster;
}

/** A number as 8 big-endian bytes, so NaN, infinities and -0 reach the script unchanged. */
function float64(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeDoubleBE(value);
  return bytes;
}

/** Redis takes whole milliseconds; a fractional TTL rounds up so that it never becomes 0 (none). */

/** A Buffer over the same bytes (ioredis sends Buffers as binary, other views it would stringify). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** What a key of Redis TYPE `type` holds, in the store's words. */
function holdsOf(type: Reply): CollectionKind | "value" {
  const name = type instanceof Buffer ? type.toString("latin1") : String(type);
  return name === "list" ? "list" : name === "zset" ? "zset" : "value";
}

/** A score as ZADD and ZRANGE BYSCORE take it (JS writes the shortest string that reads back exactly). */
function scoreArg(score: number): string {
  return score === Number.POSITIVE_INFINITY ? "+inf" : score === Number.NEGATIVE_INFINITY ? "-inf" : String(score);
}

/** A score as Redis answers it ("inf", "-inf", or a number that reads back exactly). */
function parseScore(reply: Reply): number {
  const text = reply instanceof Buffer ? reply.toString("latin1") : String(reply);
  if (text === "inf" || text === "+inf") return Number.POSITIVE_INFINITY;
  if (text === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

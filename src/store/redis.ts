/**
 * `store.redis`: entries in Redis (ioredis), shared by every host that names the same store.
 *
 * Key layout, for store `app:cache` with the default key_prefix:
 *   luastore:{app:cache}:<key bytes>   a hash { v = value, ver = version, m = metadata } with Redis's own TTL (PX)
 *   luastore:{app:cache}#keys          sorted set of the keys (all scores 0): `list` order and max_size
 *   luastore:{app:cache}#expiry        sorted set of the keys with a TTL, by expiry time
 *   luastore:{app:cache}#sizes         hash key -> bytes, for stats().bytes
 *   luastore:{app:cache}#meta          hash { version = the version counter, bytes }
 * The `{store id}` hash tag keeps one store's keys in one Cluster slot, so its scripts may touch
 * them all. Every operation is one server-side Lua script (./redis-scripts.ts), atomic in Redis.
 *
 * `list` walks the `#keys` sorted set with ZRANGEBYLEX, which orders members by their bytes, so
 * pages are sorted and a walk returns every key present throughout exactly once. (SCAN, which the
 * issue names, returns keys in hash order and may repeat them; it cannot give sorted pages.)
 *
 * Time: Redis expires entries by its own clock; `ttl` and `entry().expiresAt` are read from PTTL
 * (expiresAt = this host's clock + PTTL). The store's injected clock is not used for expiry, so
 * tests run it in real time.
 *
 * Failures: commands are never queued while disconnected. A call made while the connection is
 * down waits for it to come back for at most command_timeout (connect_timeout before the first
 * connection), and a command gets command_timeout to answer; then the call fails as Unavailable,
 * retryable. The client reconnects by itself. A call that timed out may still have been applied.
 */
import { Buffer } from "node:buffer";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { quoteByteString } from "../bytes.js";
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { RedisStoreConfig } from "../registry/types.js";
import { prefixEnd } from "./prefix-range.js";
import { Outcome, SCRIPTS, type ScriptName } from "./redis-scripts.js";
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
import { checkListLimit, LIST_MAX_EXPIRED_PER_PAGE } from "./store.js";

/** Keys one sweep or clear script handles: other clients get Redis between batches. */
const BATCH = 1000;
/** Reconnection delay: grows by 100 ms per attempt up to 1 s, so a restarted Redis is found soon. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** Reply errors that mean "not now" rather than "wrong": the call is retryable. */
const TRANSIENT_REPLY = /^(OOM|BUSY|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;

export interface RedisStoreOptions {
  clock: Clock;
  /** Start the periodic sweep timer. @default true */
  sweepTimer?: boolean;
  /** Where `url_env` is looked up. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

type Arg = Buffer | string | number;
type Reply = Buffer | number | null | Reply[];
/** The scripts, as ioredis defines them on the client (`<name>Buffer` answers bulk strings as Buffers). */
type ScriptCommands = { [N in ScriptName as `${N}Buffer`]: (numberOfKeys: number, ...args: Arg[]) => Promise<Reply> };

const OUTCOMES: Record<number, PutOutcome> = {
  [Outcome.OK]: "ok",
  [Outcome.EXISTS]: "exists",
  [Outcome.MISSING]: "missing",
  [Outcome.CONFLICT]: "conflict",
};

export class RedisStore implements Store {
  readonly id: string;
  readonly kind = "store.redis" as const;
  readonly config: RedisStoreConfig;
  readonly #clock: Clock;
  readonly #client: Redis | Cluster;
  readonly #commands: ScriptCommands;
  /** `<key_prefix>{<store id>}:`: an entry's Redis key is this followed by the key bytes. */
  readonly #entryPrefix: Buffer;
  /** index, expiry, sizes, meta: the first four KEYS of every script. */
  readonly #bookkeeping: readonly [Buffer, Buffer, Buffer, Buffer];
  readonly #maxSize: string;
  /** Calls waiting for the connection; each is resolved on `ready` or rejected by its own timer. */
  readonly #waiters = new Set<() => void>();
  #everReady = false;
  #closed = false;
  #lastError: Error | undefined;
  #timer: NodeJS.Timeout | undefined;
  #hits = 0;
  #misses = 0;
  #sets = 0;
  #deletes = 0;
  #expired = 0;

  constructor(config: RedisStoreConfig, options: RedisStoreOptions) {
    this.id = config.id;
    this.config = config;
    this.#clock = options.clock;
    this.#maxSize = String(config.maxSize);
    const base = `${config.keyPrefix}{${config.id}}`;
    this.#entryPrefix = Buffer.from(`${base}:`, "utf8");
    this.#bookkeeping = [
      Buffer.from(`${base}#keys`, "utf8"),
      Buffer.from(`${base}#expiry`, "utf8"),
      Buffer.from(`${base}#sizes`, "utf8"),
      Buffer.from(`${base}#meta`, "utf8"),
    ];
    const url = this.#resolveUrl(options.env ?? process.env);
    this.#client = connect(url, config);
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
    for (const [name, lua] of Object.entries(SCRIPTS)) this.#client.defineCommand(name, { lua });
    this.#commands = this.#client as unknown as ScriptCommands;
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

  async get(key: string): Promise<Uint8Array | undefined> {
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

  async info(): Promise<StoreInfo> {
    return { size: await this.size(), maxSize: this.config.maxSize, eviction: this.config.eviction };
  }

  async size(): Promise<number> {
    await this.sweep();
    return (await this.#totals())[0];
  }

  async stats(): Promise<StoreStats> {
    const [size, bytes] = await this.#totals();
    return {
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      deletes: this.#deletes,
      expired: this.#expired,
      evicted: 0,
      size,
      bytes,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  async set(key: string, value: Uint8Array, ttlMs: number): Promise<void> {
    await this.#write("set", key, value, ttlMs);
  }

  async add(key: string, value: Uint8Array, ttlMs: number): Promise<boolean> {
    return (await this.#write("add", key, value, ttlMs)) === "ok";
  }

  async replace(key: string, value: Uint8Array, ttlMs: number): Promise<boolean> {
    return (await this.#write("replace", key, value, ttlMs)) === "ok";
  }

  async put(key: string, value: Uint8Array, options: PutOptions): Promise<PutOutcome> {
    const { ifVersion } = options;
    if (options.onlyIfAbsent && ifVersion !== undefined) {
      throw new StoreError(ErrorKind.INVALID, "put: onlyIfAbsent and ifVersion cannot be combined");
    }
    const mode = options.onlyIfAbsent ? "absent" : ifVersion !== undefined ? "version" : "put";
    return this.#write(mode, key, value, options.ttlMs, ifVersion, options.metadata);
  }

  async incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number): Promise<Uint8Array> {
    const member = Buffer.from(key, "latin1");
    const reply = (await this.#run(
      "luastoreIncr",
      [this.#entryKey(member)],
      [member, float64(by.value), by.float ? "1" : "0", float64(init.value), init.float ? "1" : "0", ttlArg(initTtlMs), this.#maxSize],
    )) as [number, Buffer, number];
    const [outcome, bytes, expired] = reply;
    this.#expired += expired;
    if (outcome === Outcome.NOT_A_NUMBER) {
      throw new StoreError(ErrorKind.INVALID, `value at key ${quoteByteString(key)} is not a number`);
    }
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    this.#sets++;
    return bytes;
  }

  async setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number): Promise<void> {
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
      [ttlArg(ttlMs), this.#maxSize, ...members, ...[...batch.values()].map(asBuffer)],
    )) as [number, number, number];
    const [outcome, newKeys, expired] = reply;
    this.#expired += expired;
    if (outcome === Outcome.FULL) throw this.#full(`${newKeys} new keys`);
    this.#sets += entries.length;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const member = Buffer.from(key, "latin1");
    const [changed, expired] = (await this.#run("luastoreExpire", [this.#entryKey(member)], [member, ttlArg(ttlMs)])) as [
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

  async clear(): Promise<void> {
    // In batches, each atomic: a concurrent writer's key is either cleared or kept whole.
    while (((await this.#run("luastoreClear", [], [BATCH])) as number) > 0);
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
  // Internals
  // -------------------------------------------------------------------------------------------

  async #write(
    mode: "set" | "add" | "replace" | "put" | "absent" | "version",
    key: string,
    value: Uint8Array,
    ttlMs: number,
    ifVersion?: string,
    metadata?: Uint8Array,
  ): Promise<PutOutcome> {
    const member = Buffer.from(key, "latin1");
    const args: Arg[] = [member, asBuffer(value), ttlArg(ttlMs), this.#maxSize, mode, ifVersion ?? ""];
    if (metadata !== undefined) args.push(asBuffer(metadata));
    const [outcome, expired] = (await this.#run("luastoreWrite", [this.#entryKey(member)], args)) as [number, number];
    this.#expired += expired;
    if (outcome === Outcome.FULL) throw this.#full("a new key");
    if (outcome === Outcome.OK) this.#sets++;
    return OUTCOMES[outcome]!;
  }

  async #probe(key: string): Promise<number> {
    const member = Buffer.from(key, "latin1");
    const [pttl, expired] = (await this.#run("luastoreProbe", [this.#entryKey(member)], [member])) as [number, number];
    this.#expired += expired;
    return pttl;
  }

  async #totals(): Promise<[number, number]> {
    return (await this.#run("luastoreTotals", [], [])) as [number, number];
  }

  #entryKey(member: Buffer): Buffer {
    return Buffer.concat([this.#entryPrefix, member]);
  }

  /** Runs one script with the bookkeeping keys, `entryKeys` and the entry prefix before `args`. */
  async #run(name: ScriptName, entryKeys: readonly Buffer[], args: readonly Arg[]): Promise<Reply> {
    if (this.#client.status !== "ready") await this.#connected();
    try {
      return await this.#commands[`${name}Buffer`](
        4 + entryKeys.length,
        ...this.#bookkeeping,
        ...entryKeys,
        this.#entryPrefix,
        ...args,
      );
    } catch (error) {
      throw this.#storeError(error);
    }
  }

  /** Waits for the connection: up to connect_timeout for the first one, command_timeout after. */
  #connected(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`));
    const timeoutMs = this.#everReady ? this.config.commandTimeoutMs : this.config.connectTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        if (this.#closed) reject(new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`));
        else resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        const cause = this.#lastError === undefined ? "" : `: ${this.#lastError.message}`;
        reject(
          new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id}: Redis is not reachable after ${timeoutMs} ms${cause}`, {
            retryable: true,
            cause: this.#lastError,
          }),
        );
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }

  #resolveUrl(env: Readonly<Record<string, string | undefined>>): string {
    const { url, urlEnv } = this.config;
    if (url !== undefined) return url;
    const value = urlEnv === undefined ? undefined : env[urlEnv];
    if (value === undefined || value === "") {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id}: environment variable ${urlEnv} (url_env) is not set`);
    }
    if (!/^rediss?:\/\/[^/]/.test(value)) {
      throw new StoreError(
        ErrorKind.INVALID,
        `store ${this.id}: environment variable ${urlEnv} (url_env) must hold a redis:// or rediss:// URL`,
      );
    }
    return value;
  }

  #full(what: string): StoreError {
    return new StoreError(
      ErrorKind.UNAVAILABLE,
      `store ${this.id} is full (max_size ${this.config.maxSize}); cannot add ${what}`,
      { retryable: true },
    );
  }

  /** Client and server failures as StoreErrors: anything about reaching Redis is Unavailable, retryable. */
  #storeError(error: unknown): StoreError {
    if (error instanceof StoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const isReply = error instanceof Error && error.name === "ReplyError";
    if (isReply && !TRANSIENT_REPLY.test(message)) {
      return new StoreError(ErrorKind.INTERNAL, `store ${this.id}: Redis refused a script: ${message}`, { cause: error });
    }
    if (this.#closed) return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`, { cause: error });
    return new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id}: Redis: ${message}`, { retryable: true, cause: error });
  }
}

/** The client for `url`: one connection, or a Cluster client seeded with that node. */
function connect(url: string, config: RedisStoreConfig): Redis | Cluster {
  const options: RedisOptions = {
    connectTimeout: config.connectTimeoutMs,
    commandTimeout: config.commandTimeoutMs,
    // Never queue commands while disconnected: a queued command could run long after its caller
    // was told it failed, and a retried incr would then count twice.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    // Commands in flight when the connection drops fail at once instead of waiting for a reconnect.
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    connectionName: `luastore:${config.id}`,
  };
  if (!config.cluster) return new Redis(url, options);
  const parsed = new URL(url);
  const { username, password } = parsed;
  return new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
    enableOfflineQueue: false,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    redisOptions: {
      ...options,
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
    },
  });
}


/** A number as 8 big-endian bytes, so NaN, infinities and -0 reach the script unchanged. */
function float64(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeDoubleBE(value);
  return bytes;
}

/** Redis takes whole milliseconds; a fractional TTL rounds up so that it never becomes 0 (none). */
function ttlArg(ttlMs: number): number {
  return ttlMs > 0 ? Math.ceil(ttlMs) : 0;
}

/** A Buffer over the same bytes (ioredis sends Buffers as binary, other views it would stringify). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

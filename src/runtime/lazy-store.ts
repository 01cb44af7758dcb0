/**
 * A registry entry's store, opened on first use. A SQLite or Redis store that cannot open (an
 * unset `url_env`, an unreadable directory) then fails only the calls that use it, with its
 * registry position, instead of the whole host; and `better-sqlite3` / `ioredis` are loaded only
 * when a registry has an entry of their kind. Memory stores cannot fail to open and are not wrapped.
 *
 * The first call's answer is a promise (the backend module is imported); from then on each call
 * goes straight to the open store. A failed open is tried again by the next call, so a fixed
 * environment or directory is picked up without a restart.
 */
import type { Clock } from "../clock.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { RedisStoreConfig, SqlStoreConfig, StoreConfig } from "../registry/types.js";
import { MemoryStore } from "../store/memory.js";
import {
  isPromise,
  atomicOf,
  collectionsOf,
  type AtomicOutcome,
  type AtomicStore,
  type AtomicWrite,
  type CollectionStore,
  type EntryRecord,
  type StaleValue,
  type ListEnd,
  type ListOptions,
  type ListPage,
  type LuaNumber,
  type MaybePromise,
  type PutOptions,
  type PutOutcome,
  type Store,
  type StoreInfo,
  type StoreStats,
  type ZsetEntry,
  type ZsetRange,
} from "../store/store.js";

export interface LazyStoreContext {
  clock: Clock;
  sweepTimers: boolean;
  /** Directory that store.sql paths and store.redis tls files resolve against. */
  baseDir: string;
  /** Where store.redis `url_env`, `username_env` and `password_env` are looked up. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** The store's counters array (see SqlStoreOptions.counters); one context per store when set. */
  counters?: Float64Array;
  /** Called once the backend is open (a Lua worker has the store thread open it too, to sweep it). */
  onOpen?: () => void;
}

/** Where an entry was declared, for messages: `registry.yaml:12:5`, or nothing for object input. */
export function entryPosition(config: StoreConfig): string {
  const { file, line, column } = config.source;
  return line > 0 ? `${file}:${line}:${column}` : file;
}

/** Opens the backend of a store.sql or store.redis entry, importing its module (and its driver) first. */
export async function openBackend(config: SqlStoreConfig | RedisStoreConfig, context: LazyStoreContext): Promise<Store> {
  if (config.kind === "store.sql") {
    const { SqlStore } = await import("../store/sql.js");
    return new SqlStore(config, {
      clock: context.clock,
      sweepTimer: context.sweepTimers,
      baseDir: context.baseDir,
      ...(context.counters !== undefined ? { counters: context.counters } : {}),
    });
  }
  const { RedisStore } = await import("../store/redis.js");
  return new RedisStore(config, {
    clock: context.clock,
    sweepTimer: context.sweepTimers,
    env: context.env ?? process.env,
    baseDir: context.baseDir,
    ...(context.counters !== undefined ? { counters: context.counters } : {}),
  });
}

/** The store for one registry entry: a MemoryStore at once, or a LazyStore for the other kinds. */
export function storeFor(config: StoreConfig, context: LazyStoreContext): Store {
  if (config.kind === "store.memory") {
    return new MemoryStore(config, { clock: context.clock, sweepTimer: context.sweepTimers, baseDir: context.baseDir });
  }
  return new LazyStore(config, context);
}

const EMPTY_STATS: StoreStats = { hits: 0, misses: 0, sets: 0, deletes: 0, expired: 0, evicted: 0, size: 0, bytes: 0 };

export class LazyStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind: StoreConfig["kind"];
  readonly config: SqlStoreConfig | RedisStoreConfig;
  readonly #context: LazyStoreContext;
  #store: Store | undefined;
  #opening: Promise<Store> | undefined;
  #closed = false;

  constructor(config: SqlStoreConfig | RedisStoreConfig, context: LazyStoreContext) {
    this.id = config.id;
    this.kind = config.kind;
    this.config = config;
    this.#context = context;
  }

  /** True once the backend is open. */
  get opened(): boolean {
    return this.#store !== undefined;
  }

  /** The open backend, opening it first when needed; rejects with the entry's position when it cannot open. */
  open(): MaybePromise<Store> {
    if (this.#store !== undefined) return this.#store;
    if (this.#closed) return Promise.reject(new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`));
    this.#opening ??= openBackend(this.config, this.#context).then(
      (store) => {
        this.#opening = undefined;
        if (this.#closed) {
          void store.close();
          throw new StoreError(ErrorKind.UNAVAILABLE, `store ${this.id} is closed`);
        }
        this.#store = store;
        this.#context.onOpen?.();
        return store;
      },
      (err: unknown) => {
        this.#opening = undefined;
        const kind = err instanceof StoreError ? err.kind : ErrorKind.UNAVAILABLE;
        const message = err instanceof Error ? err.message : String(err);
        // The backends' messages start with "store <id>: " already; say where the entry is instead.
        const reason = message.startsWith(`store ${this.id}: `) ? message.slice(`store ${this.id}: `.length) : message;
        throw new StoreError(kind, `store ${this.id} (${entryPosition(this.config)}) cannot open: ${reason}`, {
          retryable: err instanceof StoreError && err.retryable,
          cause: err,
        });
      },
    );
    return this.#opening;
  }

  #with<T>(call: (store: Store) => MaybePromise<T>): MaybePromise<T> {
    const store = this.#store;
    if (store !== undefined) return call(store);
    const opening = this.open();
    return isPromise(opening) ? opening.then(call) : call(opening);
  }

  get(key: string): MaybePromise<Uint8Array | undefined> {
    return this.#with((s) => s.get(key));
  }
  getStale(key: string): MaybePromise<Uint8Array | StaleValue | undefined> {
    return this.#with((s) => s.getStale(key));
  }
  set(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<void> {
    return this.#with((s) => s.set(key, value, ttlMs, share));
  }
  has(key: string): MaybePromise<boolean> {
    return this.#with((s) => s.has(key));
  }
  delete(key: string): MaybePromise<boolean> {
    return this.#with((s) => s.delete(key));
  }
  add(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<boolean> {
    return this.#with((s) => s.add(key, value, ttlMs, share));
  }
  replace(key: string, value: Uint8Array, ttlMs: number, share?: string): MaybePromise<boolean> {
    return this.#with((s) => s.replace(key, value, ttlMs, share));
  }
  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): MaybePromise<Uint8Array> {
    return this.#with((s) => s.incr(key, by, init, initTtlMs, share));
  }
  ttl(key: string): MaybePromise<number | undefined> {
    return this.#with((s) => s.ttl(key));
  }
  expire(key: string, ttlMs: number): MaybePromise<boolean> {
    return this.#with((s) => s.expire(key, ttlMs));
  }
  getMany(keys: readonly string[]): MaybePromise<(Uint8Array | undefined)[]> {
    return this.#with((s) => s.getMany(keys));
  }
  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): MaybePromise<void> {
    return this.#with((s) => s.setMany(entries, ttlMs, share));
  }
  list(options: ListOptions): MaybePromise<ListPage> {
    return this.#with((s) => s.list(options));
  }
  entry(key: string): MaybePromise<EntryRecord | undefined> {
    return this.#with((s) => s.entry(key));
  }
  put(key: string, value: Uint8Array, options: PutOptions): MaybePromise<PutOutcome> {
    return this.#with((s) => s.put(key, value, options));
  }
  info(share?: string): MaybePromise<StoreInfo> {
    return this.#with((s) => s.info(share));
  }
  size(): MaybePromise<number> {
    return this.#with((s) => s.size());
  }
  clear(): MaybePromise<void> {
    return this.#with((s) => s.clear());
  }
  deleteMany(keys: readonly string[]): MaybePromise<number> {
    return this.#with((s) => s.deleteMany(keys));
  }
  flush(): MaybePromise<number> {
    return this.#with((s) => s.flush());
  }
  /** Nothing to sweep in a store that was never opened. */
  sweep(): MaybePromise<number> {
    return this.#store === undefined ? 0 : this.#store.sweep();
  }
  /** Zeros for a store that was never opened: metrics do not open stores. */
  stats(): MaybePromise<StoreStats> {
    return this.#store === undefined ? { ...EMPTY_STATS } : this.#store.stats();
  }
  listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).listPush(key, end, values, share));
  }
  listPop(key: string, end: ListEnd, count: number): MaybePromise<Uint8Array[]> {
    return this.#with((s) => collectionsOf(s).listPop(key, end, count));
  }
  listLength(key: string): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).listLength(key));
  }
  listRange(key: string, start: number, stop: number): MaybePromise<Uint8Array[]> {
    return this.#with((s) => collectionsOf(s).listRange(key, start, stop));
  }
  listTrim(key: string, start: number, stop: number): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).listTrim(key, start, stop));
  }
  zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).zsetAdd(key, entries, share));
  }
  zsetIncr(key: string, member: string, by: number, share?: string): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).zsetIncr(key, member, by, share));
  }
  zsetScore(key: string, member: string): MaybePromise<number | undefined> {
    return this.#with((s) => collectionsOf(s).zsetScore(key, member));
  }
  zsetRank(key: string, member: string, reverse: boolean): MaybePromise<number | undefined> {
    return this.#with((s) => collectionsOf(s).zsetRank(key, member, reverse));
  }
  zsetRange(key: string, range: ZsetRange): MaybePromise<ZsetEntry[]> {
    return this.#with((s) => collectionsOf(s).zsetRange(key, range));
  }
  zsetRemove(key: string, members: readonly string[]): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).zsetRemove(key, members));
  }
  zsetCard(key: string): MaybePromise<number> {
    return this.#with((s) => collectionsOf(s).zsetCard(key));
  }
  atomic(tx: AtomicWrite, share?: string): MaybePromise<AtomicOutcome> {
    return this.#with((s) => atomicOf(s).atomic(tx, share));
  }
  async close(): Promise<void> {
    this.#closed = true;
    const opening = this.#opening;
    if (opening !== undefined) await opening.catch(() => {});
    await this.#store?.close();
  }
}

/**
 * `host.store(id)` of a worker-isolated host: the store lives in the store thread, so the host
 * thread gets a {@link RemoteStore} whose every method is a message to it. HostStore already
 * treats every answer as a promise, so it works unchanged on top.
 */
import { ErrorKind, StoreError } from "../../errors.js";
import type { StoreConfig } from "../../registry/types.js";
import { COLLECTION_METHODS } from "../../store/store.js";
import type {
  AtomicOutcome,
  AtomicStore,
  AtomicWrite,
  CollectionStore,
  EntryRecord,
  ListEnd,
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
} from "../../store/store.js";
import type { StoreSlot } from "../local-gateway.js";

/** The methods a RemoteStore may call; anything else is refused by the store thread. */
const METHODS: ReadonlySet<string> = new Set([
  "get",
  "getStale",
  "set",
  "has",
  "delete",
  "add",
  "replace",
  "incr",
  "ttl",
  "expire",
  "getMany",
  "setMany",
  "list",
  "entry",
  "put",
  "info",
  "size",
  "clear",
  "flush",
  "deleteMany",
  "commit",
  "destroy",
  "sweep",
  "stats",
  ...COLLECTION_METHODS,
  "atomic",
]);

/** The store thread's end: runs a RemoteStore call on the real store. */
export class RemoteStoreTarget {
  readonly #slots: ReadonlyMap<string, StoreSlot>;

  constructor(slots: ReadonlyMap<string, StoreSlot>) {
    this.#slots = slots;
  }

  async call(storeId: string, method: string, args: unknown[]): Promise<unknown> {
    const slot = this.#slots.get(storeId);
    if (slot === undefined) throw new StoreError(ErrorKind.NOT_FOUND, `no store '${storeId}' in the registry`);
    if (!METHODS.has(method)) throw new Error(`store method '${method}' cannot be called remotely`);
    const fn = (slot.store as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>)[method];
    if (fn === undefined) throw new StoreError(ErrorKind.INVALID, `store '${storeId}' has no method '${method}' on this backend`);
    return fn.apply(slot.store, args);
  }
}

export type RemoteCall = (storeId: string, method: string, args: unknown[]) => Promise<unknown>;

/** The host thread's end: a Store whose methods are answered by the store thread. */
export class RemoteStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind: StoreConfig["kind"];
  readonly config: StoreConfig;
  readonly #call: RemoteCall;

  constructor(config: StoreConfig, call: RemoteCall) {
    this.id = config.id;
    this.kind = config.kind;
    this.config = config;
    this.#call = call;
  }

  #do<T>(method: string, ...args: unknown[]): Promise<T> {
    return this.#call(this.id, method, args) as Promise<T>;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#do("get", key);
  }
  getStale(key: string): Promise<Uint8Array | StaleValue | undefined> {
    return this.#do("getStale", key);
  }
  set(key: string, value: Uint8Array, ttlMs: number): Promise<void> {
    return this.#do("set", key, value, ttlMs);
  }
  has(key: string): Promise<boolean> {
    return this.#do("has", key);
  }
  delete(key: string): Promise<boolean> {
    return this.#do("delete", key);
  }
  add(key: string, value: Uint8Array, ttlMs: number): Promise<boolean> {
    return this.#do("add", key, value, ttlMs);
  }
  replace(key: string, value: Uint8Array, ttlMs: number): Promise<boolean> {
    return this.#do("replace", key, value, ttlMs);
  }
  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number): Promise<Uint8Array> {
    return this.#do("incr", key, by, init, initTtlMs);
  }
  ttl(key: string): Promise<number | undefined> {
    return this.#do("ttl", key);
  }
  expire(key: string, ttlMs: number): Promise<boolean> {
    return this.#do("expire", key, ttlMs);
  }
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return this.#do("getMany", keys);
  }
  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number): Promise<void> {
    return this.#do("setMany", entries, ttlMs);
  }
  list(options: ListOptions): Promise<ListPage> {
    return this.#do("list", options);
  }
  entry(key: string): Promise<EntryRecord | undefined> {
    return this.#do("entry", key);
  }
  put(key: string, value: Uint8Array, options: PutOptions): Promise<PutOutcome> {
    return this.#do("put", key, value, options);
  }
  info(): Promise<StoreInfo> {
    return this.#do("info");
  }
  size(): Promise<number> {
    return this.#do("size");
  }
  clear(): Promise<void> {
    return this.#do("clear");
  }
  commit(): Promise<void> {
    return this.#do("commit");
  }
  destroy(): Promise<void> {
    return this.#do("destroy");
  }
  deleteMany(keys: readonly string[]): Promise<number> {
    return this.#do("deleteMany", keys);
  }
  flush(): Promise<number> {
    return this.#do("flush");
  }
  sweep(): Promise<number> {
    return this.#do("sweep");
  }
  stats(): Promise<StoreStats> {
    return this.#do("stats");
  }
  listPush(key: string, end: ListEnd, values: readonly Uint8Array[]): Promise<number> {
    return this.#do("listPush", key, end, values);
  }
  listPop(key: string, end: ListEnd, count: number): Promise<Uint8Array[]> {
    return this.#do("listPop", key, end, count);
  }
  listLength(key: string): Promise<number> {
    return this.#do("listLength", key);
  }
  listRange(key: string, start: number, stop: number): Promise<Uint8Array[]> {
    return this.#do("listRange", key, start, stop);
  }
  listTrim(key: string, start: number, stop: number): Promise<number> {
    return this.#do("listTrim", key, start, stop);
  }
  zsetAdd(key: string, entries: readonly ZsetEntry[]): Promise<number> {
    return this.#do("zsetAdd", key, entries);
  }
  zsetIncr(key: string, member: string, by: number): Promise<number> {
    return this.#do("zsetIncr", key, member, by);
  }
  zsetScore(key: string, member: string): Promise<number | undefined> {
    return this.#do("zsetScore", key, member);
  }
  zsetRank(key: string, member: string, reverse: boolean): Promise<number | undefined> {
    return this.#do("zsetRank", key, member, reverse);
  }
  zsetRange(key: string, range: ZsetRange): Promise<ZsetEntry[]> {
    return this.#do("zsetRange", key, range);
  }
  zsetRemove(key: string, members: readonly string[]): Promise<number> {
    return this.#do("zsetRemove", key, members);
  }
  zsetCard(key: string): Promise<number> {
    return this.#do("zsetCard", key);
  }
  atomic(tx: AtomicWrite): Promise<AtomicOutcome> {
    return this.#do("atomic", tx);
  }
  /** The store thread closes the real store when the host closes. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

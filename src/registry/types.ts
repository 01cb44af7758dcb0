/** The validated, normalized registry: what the host builds stores and pools from. */
import type { SourcePosition } from "../errors.js";

export interface PoolConfig {
  /** Handles of this entry that may be acquired at once. @default 64 */
  max: number;
}

/**
 * Fair shares (the `quota` field): every writer's keys and bytes are counted in the share named
 * by an actor field, each share is held to `maxKeys` and `maxBytes`, and each share holding
 * keys reserves `maxKeys` of the store's `maxSize` (see src/store/share-ledger.ts).
 */
export interface QuotaConfig {
  /** The actor field naming a writer's share: `actor.id` or `actor.meta.<name>`. */
  by: string;
  /** Keys one share may hold; at most `maxSize`. */
  maxKeys: number;
  /** Entry bytes (key, value, metadata) one share may hold; undefined: no byte quota. */
  maxBytes: number | undefined;
}

/** Options every store kind shares; they mean the same on every kind. */
export interface CommonStoreConfig {
  /** `namespace:name`, e.g. `app:cache`. */
  id: string;
  namespace: string;
  name: string;
  /** Live entries. @default 10000 */
  maxSize: number;
  /** Active-expiry period in milliseconds. @default 300000 (5m) */
  cleanupIntervalMs: number;
  /** Longest key in bytes. @default 1024 */
  maxKeyLength: number;
  /** Largest encoded (MessagePack) value in bytes. @default 1048576 (1 MiB) */
  maxValueSize: number;
  pool: PoolConfig;
  /**
   * How long an expired key stays readable by `get_stale` (milliseconds); undefined: not at all,
   * and `get_stale` is `get`. A stale copy counts against max_size and in bytes until it is dropped.
   */
  staleForMs?: number | undefined;
  /** Per-share quotas; undefined: none. */
  quota?: QuotaConfig | undefined;
  /** Where the entry was declared (line 0 when the registry came from objects). */
  source: SourcePosition;
}

export interface MemoryStoreConfig extends CommonStoreConfig {
  kind: "store.memory";
  /** `none`: a new key into a full store fails; `lru`: evict the least recently used. @default "none" */
  eviction: "none" | "lru";
  /**
   * Bytes of the shared-memory zone that holds the store when workers share it (src/store/zone):
   * entries, their indexes and free space. Optional here so configs built in code may leave it
   * out; the registry always fills it. @default 67108864 (64 MiB)
   */
  maxMemory?: number | undefined;
  /**
   * Keep the store in a snapshot file: loaded when the store is made, written atomically every
   * `everyMs` (undefined: only on commit and close). `path` resolves against the registry's directory.
   */
  snapshot?: { path: string; everyMs: number | undefined } | undefined;
}

export interface SqlStoreConfig extends CommonStoreConfig {
  kind: "store.sql";
  /**
   * The SQLite database file, relative to the registry file's directory (`RegistryConfig.baseDir`);
   * `":memory:"` is a private in-memory database (tests). Its directory is created when missing.
   */
  path: string;
  /** The table holding the entries (a second table `<table_name>_meta` holds counters). @default "kv" */
  tableName: string;
  /** How long a write waits for another process's transaction before failing as Unavailable. @default 5000 */
  busyTimeoutMs: number;
  /** `none`: a new key into a full store fails; `lru`: evict the least recently used (reads become writes). @default "none" */
  eviction: "none" | "lru";
}

export interface RedisStoreConfig extends CommonStoreConfig {
  kind: "store.redis";
  /**
   * `redis://[user:password@]host:port/db` or `rediss://...`. Exactly one of `url`, `urlEnv`,
   * `nodes` and `sentinels` is set.
   */
  url: string | undefined;
  /** The name of the environment variable holding the URL, read when the store is created. */
  urlEnv: string | undefined;
  /** Seed URLs of a Redis Cluster (implies `cluster`); the client tries them in order and discovers the rest. */
  nodes: string[] | undefined;
  /** Redis Sentinel: the sentinels to ask for the current primary named `sentinelName`. */
  sentinels: { host: string; port: number }[] | undefined;
  sentinelName: string | undefined;
  /** ACL user and password, literally or from environment variables (read when the store is created). */
  username: string | undefined;
  usernameEnv: string | undefined;
  password: string | undefined;
  passwordEnv: string | undefined;
  /** PEM files for `rediss://`, relative to `RegistryConfig.baseDir`: the CA to trust, a client certificate and key. */
  tls: { caFile: string | undefined; certFile: string | undefined; keyFile: string | undefined };
  /** Prepended to every Redis key of the store: `<keyPrefix>{<store id>}:<key>`. @default "luastore:" */
  keyPrefix: string;
  /** How long the first connection may take; calls made meanwhile wait for it. @default 2000 */
  connectTimeoutMs: number;
  /** How long one call may take, including waiting for a lost connection to come back. @default 1000 */
  commandTimeoutMs: number;
  /** The URL names one node of a Redis Cluster; the client discovers the others (`nodes` implies it). @default false */
  cluster: boolean;
  /**
   * Replicas that must acknowledge each write (Redis WAIT) before the call succeeds; 0: none asked
   * (Redis's asynchronous replication alone). @default 0
   */
  minReplicas: number;
  /** How long a write waits for those replicas; shorter than commandTimeoutMs. @default half of commandTimeoutMs */
  replicaTimeoutMs: number | undefined;
  /** Only `none`: LRU eviction would turn every Redis read into a write. @default "none" */
  eviction: "none";
}

/** Every store kind the registry accepts. */
export type StoreConfig = MemoryStoreConfig | SqlStoreConfig | RedisStoreConfig;
export type StoreKind = StoreConfig["kind"];

export interface RegistryConfig {
  /** Entries in declaration order; IDs are unique. */
  entries: readonly StoreConfig[];
  /** Directory that relative paths in the registry resolve against. */
  baseDir: string;
}

/** Fields every entry of a registry document accepts, as registry.yaml writes them. */
export interface CommonEntryDocument {
  name: string;
  max_size?: number;
  /** Seconds, or a string like "250ms", "30s", "5m", "1h", "1m30s". */
  cleanup_interval?: number | string;
  max_key_length?: number;
  /** Bytes, or a string like "64KiB", "1MiB". */
  max_value_size?: number | string;
  pool?: { max?: number };
  /** A duration, like cleanup_interval. */
  stale_for?: number | string;
  /** `by: actor.id` or `by: actor.meta.<name>`; sizes like max_value_size. */
  quota?: { by: string; max_keys: number; max_bytes?: number | string };
}

export interface MemoryEntryDocument extends CommonEntryDocument {
  kind: "store.memory";
  eviction?: "none" | "lru";
  /** Bytes, or a string like "64MiB", like max_value_size. */
  max_memory?: number | string;
  /** A snapshot file; `every` is a duration like cleanup_interval. */
  snapshot?: { path: string; every?: number | string };
}

export interface SqlEntryDocument extends CommonEntryDocument {
  kind: "store.sql";
  path: string;
  table_name?: string;
  /** A duration, like cleanup_interval. */
  busy_timeout?: number | string;
  eviction?: "none" | "lru";
}

export interface RedisEntryDocument extends CommonEntryDocument {
  kind: "store.redis";
  url?: string;
  url_env?: string;
  nodes?: string[];
  /** `host:port` of each sentinel. */
  sentinels?: string[];
  sentinel_name?: string;
  username?: string;
  username_env?: string;
  password?: string;
  password_env?: string;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string };
  key_prefix?: string;
  /** Durations, like cleanup_interval. */
  connect_timeout?: number | string;
  command_timeout?: number | string;
  cluster?: boolean;
  min_replicas?: number;
  /** A duration, like command_timeout. */
  replica_timeout?: number | string;
  eviction?: "none";
}

/** One entry of a registry document. */
export type RegistryEntryDocument = MemoryEntryDocument | SqlEntryDocument | RedisEntryDocument;

/**
 * One registry document as registry.yaml writes it, for callers that build the registry in code.
 * It is validated exactly like YAML; the types only help callers write it right.
 */
export interface RegistryDocument {
  version: "1.0";
  namespace: string;
  entries: readonly RegistryEntryDocument[];
}

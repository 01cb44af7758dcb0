/** The validated, normalized registry: what the host builds stores and pools from. */
import type { SourcePosition } from "../errors.js";

export interface PoolConfig {
  /** Handles of this entry that may be acquired at once. @default 64 */
  max: number;
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
  /** Where the entry was declared (line 0 when the registry came from objects). */
  source: SourcePosition;
}

export interface MemoryStoreConfig extends CommonStoreConfig {
  kind: "store.memory";
  /** `none`: a new key into a full store fails; `lru`: evict the least recently used. @default "none" */
  eviction: "none" | "lru";
}

/** Every store kind the registry accepts. Later kinds (store.sql, store.redis) join this union. */
export type StoreConfig = MemoryStoreConfig;
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
}

export interface MemoryEntryDocument extends CommonEntryDocument {
  kind: "store.memory";
  eviction?: "none" | "lru";
}

/** One entry of a registry document. Later kinds join this union with their own fields. */
export type RegistryEntryDocument = MemoryEntryDocument;

/**
 * One registry document as registry.yaml writes it, for callers that build the registry in code.
 * It is validated exactly like YAML; the types only help callers write it right.
 */
export interface RegistryDocument {
  version: "1.0";
  namespace: string;
  entries: readonly RegistryEntryDocument[];
}

/** Registry: load and validate registry.yaml into the config the host builds stores from. */
export { loadRegistry, parseRegistry, type LoadRegistryOptions } from "./load.js";
export { parseDuration, parseSize, formatDuration, formatSize, type UnitResult } from "./units.js";
export { STORE_KINDS } from "./kinds.js";
export type {
  CommonEntryDocument,
  CommonStoreConfig,
  MemoryEntryDocument,
  MemoryStoreConfig,
  PoolConfig,
  RedisEntryDocument,
  RedisStoreConfig,
  RegistryConfig,
  RegistryDocument,
  RegistryEntryDocument,
  SqlEntryDocument,
  SqlStoreConfig,
  StoreConfig,
  StoreKind,
} from "./types.js";

/** Registry: load and validate registry.yaml into the config the host builds stores from. */
export { loadRegistry, parseRegistry, type LoadRegistryOptions } from "./load.js";
export { DEFAULT_MAX_CONFIG_BYTES } from "../config/read-file.js";
export { MAX_CONFIG_DEPTH, MAX_ALIAS_EXPANSION } from "../config/yaml-source.js";
export { MAX_STORE_ID_BYTES } from "./validate.js";
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

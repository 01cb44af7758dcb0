/** Builds the store for a registry entry: the one place that maps a kind to its backend. */
import type { Clock } from "../clock.js";
import type { StoreConfig } from "../registry/types.js";
import { MemoryStore } from "./memory.js";
import { RedisStore } from "./redis.js";
import { SqlStore } from "./sql.js";
import type { Store } from "./store.js";

export interface StoreContext {
  clock: Clock;
  /** Start periodic sweep timers. @default true */
  sweepTimers?: boolean;
  /** Directory that relative paths (store.sql `path`) resolve against: `RegistryConfig.baseDir`. @default process.cwd() */
  baseDir?: string;
  /** Where store.redis `url_env`, `username_env` and `password_env` are looked up. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Builds a store synchronously. A store.sql store opens its file here (and throws StoreError
 * Unavailable when it cannot); a store.redis store connects in the background, and calls made
 * before the connection is up wait for it (up to connect_timeout).
 */
export function createStore(config: StoreConfig, context: StoreContext): Store {
  const sweepTimer = context.sweepTimers ?? true;
  switch (config.kind) {
    case "store.memory":
      return new MemoryStore(config, { clock: context.clock, sweepTimer, baseDir: context.baseDir ?? process.cwd() });
    case "store.sql":
      return new SqlStore(config, { clock: context.clock, sweepTimer, baseDir: context.baseDir ?? process.cwd() });
    case "store.redis":
      return new RedisStore(config, {
        clock: context.clock,
        sweepTimer,
        env: context.env ?? process.env,
        baseDir: context.baseDir ?? process.cwd(),
      });
  }
}

/** Builds the store for a registry entry: the one place that maps a kind to its backend. */
import type { Clock } from "../clock.js";
import type { StoreConfig } from "../registry/types.js";
import { MemoryStore } from "./memory.js";
import type { Store } from "./store.js";

export interface StoreContext {
  clock: Clock;
  /** Start periodic sweep timers. @default true */
  sweepTimers?: boolean;
}

export function createStore(config: StoreConfig, context: StoreContext): Store {
  switch (config.kind) {
    case "store.memory":
      return new MemoryStore(config, { clock: context.clock, sweepTimer: context.sweepTimers ?? true });
  }
}

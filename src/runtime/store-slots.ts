/** Stores and pools made from the registry: what the trusted side of runs works with. */
import type { Clock } from "../clock.js";
import { HandlePool, type PoolStats } from "../pool/handle-pool.js";
import type { RegistryConfig } from "../registry/types.js";
import type { MemoryStoreConfig } from "../registry/types.js";
import { attachZone } from "../store/zone/index.js";
import { storeFor } from "./lazy-store.js";
import { LocalCounters, type LocalStoreSlot } from "./local-gateway.js";
import type { StoreMetrics } from "./run-types.js";

/**
 * Builds one slot (store, pool, counters) per registry entry; SQLite and Redis stores open on
 * first use. `zones[i]`, when set, is the shared-memory zone of memory entry i (made by the
 * host): this thread's store attaches to it, and leaves sweeping to the host.
 */
export function createStoreSlots(
  registry: RegistryConfig,
  options: { clock: Clock; sweepTimers: boolean; zones?: readonly (SharedArrayBuffer | null)[] },
): Map<string, LocalStoreSlot> {
  const slots = new Map<string, LocalStoreSlot>();
  for (const [index, config] of registry.entries.entries()) {
    const zone = options.zones?.[index] ?? null;
    const store =
      zone !== null
        ? attachZone(zone, config as MemoryStoreConfig, { clock: options.clock })
        : storeFor(config, { clock: options.clock, sweepTimers: options.sweepTimers, baseDir: registry.baseDir });
    slots.set(config.id, {
      store,
      pool: new HandlePool(config.id, config.pool.max),
      config,
      counters: new LocalCounters(),
    });
  }
  return slots;
}

/** Pool statistics per registry entry. */
export function poolStats(slots: ReadonlyMap<string, LocalStoreSlot>): PoolStats[] {
  return [...slots.values()].map((s) => s.pool.stats());
}

/** Per-store counters: the store's own and the gateway's. */
export async function storeMetrics(slots: ReadonlyMap<string, LocalStoreSlot>): Promise<StoreMetrics[]> {
  const out: StoreMetrics[] = [];
  for (const [id, slot] of slots) {
    const stats = await slot.store.stats();
    out.push({ id, kind: slot.config.kind, ...stats, denied: slot.counters.denied, errors: { ...slot.counters.errors } });
  }
  return out;
}

/** Closes every store (stops their timers). */
export async function closeStoreSlots(slots: ReadonlyMap<string, LocalStoreSlot>): Promise<void> {
  for (const slot of slots.values()) await slot.store.close();
}

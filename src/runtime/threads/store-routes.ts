/** Which thread serves a registry entry's store for a Lua worker: the decision the host and its workers share. */
import type { StoreConfig } from "../../registry/types.js";

/**
 * Whether a worker opens `config`'s store itself. A store.sql file: yes, each worker its own
 * connection (WAL lets readers run beside a writer; writers keep BEGIN IMMEDIATE and wait up to
 * busy_timeout), with no sweep timer (the store thread sweeps, once for the host). A SQLite
 * `:memory:` database exists only in the connection that made it, and a memory store with a
 * quota or a snapshot (which the zone does not take yet) only in the store thread: those are
 * reached over the channel. store.redis: over the channel too. Measured, a client of its own
 * per worker was no faster (often slower): its answers are promises, so every call suspends the
 * run and goes through the worker's event loop, while over the channel the worker waits
 * synchronously and the store thread's one client pipelines every worker's commands (see the
 * README's Benchmarks).
 */
export function storeInWorker(config: StoreConfig): boolean {
  return config.kind === "store.sql" && config.path !== ":memory:";
}

/** Whether a worker's calls to this store wait on the store thread (no zone, not opened by the worker). */
export function servedByStoreThread(config: StoreConfig, zone: SharedArrayBuffer | null): boolean {
  return zone === null && !storeInWorker(config);
}

/**
 * The stores a test file runs on. By default every store of the registry, whatever its kind, is an
 * in-memory stand-in with the same limits (max_size, eviction, key and value limits, cleanup
 * interval, pool, quota), fresh for each file and on the file's virtual clock: tests never touch real
 * data, and every TTL follows `test.clock`. `--real-stores` (HarnessOptions.realStores) runs on
 * the configured backends instead.
 */
import { ManualClock, systemClock } from "../clock.js";
import type { HostOptions } from "../host.js";
import { loadRegistry } from "../registry/index.js";
import type { RegistryDocument, RegistryEntryDocument } from "../registry/types.js";

/**
 * The registry as documents whose entries are all store.memory with the original entries' ids and
 * limits. Loads (and so validates) the registry first: a registry with problems is refused here
 * with their positions, exactly as the host would refuse it.
 */
export function standInRegistry(registry: HostOptions["registry"]): RegistryDocument[] {
  const config = loadRegistry(registry);
  const documents = new Map<string, RegistryEntryDocument[]>();
  for (const entry of config.entries) {
    let entries = documents.get(entry.namespace);
    if (entries === undefined) documents.set(entry.namespace, (entries = []));
    entries.push({
      name: entry.name,
      kind: "store.memory",
      max_size: entry.maxSize,
      // store.redis has no LRU (eviction none); memory and SQLite keep theirs.
      eviction: entry.eviction,
      max_key_length: entry.maxKeyLength,
      max_value_size: entry.maxValueSize,
      cleanup_interval: `${entry.cleanupIntervalMs}ms`,
      // Stale copies then follow the file's virtual clock like every TTL.
      ...(entry.staleForMs !== undefined ? { stale_for: `${entry.staleForMs}ms` } : {}),
      pool: { max: entry.pool.max },
      // The same fair shares, so a test sees the quota production enforces.
      ...(entry.quota
        ? { quota: { by: entry.quota.by, max_keys: entry.quota.maxKeys, ...(entry.quota.maxBytes !== undefined ? { max_bytes: entry.quota.maxBytes } : {}) } }
        : {}),
    });
  }
  return [...documents].map(([namespace, entries]) => ({ version: "1.0", namespace, entries }));
}

/**
 * The clock of a file run with `--real-stores`: real time, the one clock every backend's TTLs then
 * follow (Redis keeps its own), so `time.sleep` waits for real. `test.clock.advance` and `set`
 * cannot move it and fail with that reason, rather than moving some stores' time and not others'.
 */
export class RealTestClock extends ManualClock {
  override now(): number {
    return Date.now();
  }

  override advance(): void {
    throw new RangeError("test.clock cannot move real time: with --real-stores the tests run on the real clock");
  }

  override set(): void {
    this.advance();
  }

  override sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }

  override watch(): () => void {
    return () => {};
  }
}

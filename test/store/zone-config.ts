/**
 * What the store suite's zone runs share (test/store/zone.test.ts on the host thread,
 * zone-worker.test.ts in a worker): the zone's config and the cases a zone cannot pass yet.
 */
import type { MemoryStoreConfig } from "../../src/registry/types.js";
import { commonStoreConfig, type StoreSuiteOptions, type SuiteStoreConfig } from "./store-suite.js";

const MiB = 1024 * 1024;

export function zoneConfig(config: SuiteStoreConfig = {}, maxMemory = 16 * MiB): MemoryStoreConfig {
  return { ...commonStoreConfig(config), kind: "store.memory", eviction: config.eviction ?? "none", maxMemory };
}

/** Store suite cases a zone skips, whichever thread calls it. */
export const zoneSuiteSkips: NonNullable<StoreSuiteOptions["skip"]> = [
  {
    reason: "a zone store takes no quota yet",
    tests: [
      "a share past max_keys is refused as RateLimited, not retryable; another share still writes",
      "a share past max_bytes is refused as RateLimited",
      "each share holding keys reserves max_keys: a new share past max_size / max_keys is Unavailable, retryable",
      "a tenant filling an eviction-none store neither blocks nor evicts another within its quota",
      "with lru, a share past its quota evicts its own oldest keys, never another share's",
      "setMany under a quota is whole or nothing",
      "with lru, setMany under a quota evicts the share's own oldest keys, and a batch past max_keys writes nothing",
      "a key belongs to its last writer; deletes and expiry give its room back",
      "host-side writes (no share) count in no share and keep a key's owner",
      "an atomic write past the share's quota writes nothing",
      "a push past the share's quota of bytes is refused, and pops give the bytes back",
      "a sorted set counts its key, members and 8 bytes per score in stats and quotas",
    ],
  },
  {
    reason: "one call's changes must fit the zone's undo log, which a 16 MiB zone sizes below 10 000 new keys (the call is refused whole, as Invalid)",
    tests: ["setMany and deleteMany take 10 000 keys in one call"],
  },
];

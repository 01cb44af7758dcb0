/** Shared test setup: a host over an in-memory registry and policies, and a Lua runner. */
import { ManualClock } from "../src/clock.js";
import { createHost, type Host, type HostOptions } from "../src/host.js";
import type { RunLimits } from "../src/lua/limits.js";
import type { PolicyDocument } from "../src/policy/types.js";
import type { RegistryDocument } from "../src/registry/types.js";
import type { RunResult } from "../src/runtime/run-types.js";

export const TEST_REGISTRY: RegistryDocument = {
  version: "1.0",
  namespace: "app",
  entries: [
    { name: "cache", kind: "store.memory", max_size: 100, eviction: "none", pool: { max: 4 } },
    { name: "lru", kind: "store.memory", max_size: 3, eviction: "lru" },
    { name: "small", kind: "store.memory", max_key_length: 8, max_value_size: 64 },
    { name: "tenant", kind: "store.memory" },
  ],
} as RegistryDocument;

export const TEST_POLICIES: PolicyDocument = {
  version: "1.0",
  policies: [
    {
      id: "admin-all",
      effect: "allow",
      actors: ["admin"],
      actions: ["store.get", "store.key.*", "store.info", "store.flush"],
      resources: ["app:*"],
    },
    {
      id: "tenant-open",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.get"],
      resources: ["app:tenant"],
    },
    {
      id: "tenant-own-keys",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.*"],
      resources: ["app:tenant"],
      conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
    },
    {
      id: "tenant-list-own-prefix",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.list"],
      resources: ["app:tenant"],
      conditions: [{ field: "meta.prefix", operator: "starts_with", value: "${actor.meta.tenant}:" }],
    },
    {
      id: "no-secrets",
      effect: "deny",
      actions: ["store.key.*"],
      resources: ["app:*"],
      conditions: [{ field: "meta.key", operator: "starts_with", value: "secret:" }],
    },
    {
      id: "readonly-get-has",
      effect: "allow",
      actors: ["reader"],
      actions: ["store.get", "store.key.get", "store.key.has"],
      resources: ["app:cache"],
    },
  ],
} as PolicyDocument;

export const ADMIN = { id: "admin", meta: {} };
export const READER = { id: "reader", meta: {} };
export const tenant = (name: string) => ({ id: `tenant:${name}`, meta: { tenant: name } });

export interface TestHost {
  host: Host;
  clock: ManualClock;
  /** Runs Lua as `actor` (default admin); fails the test on unexpected host exceptions only. */
  run(
    source: string,
    options?: { actor?: { id: string; meta: Record<string, string> }; limits?: Partial<RunLimits>; args?: unknown[]; onOutput?: (text: string) => void },
  ): Promise<RunResult>;
  /** Runs Lua and returns its values, throwing with the script error when it failed. */
  eval(source: string, options?: { actor?: { id: string; meta: Record<string, string> }; limits?: Partial<RunLimits> }): Promise<unknown[]>;
}

/**
 * A host over the test registry and policies with a ManualClock (sleeps advance it). Inline
 * isolation unless `overrides.isolation` says otherwise: most tests check the Lua API, not the
 * isolation, and inline hosts start at once.
 */
export function makeHost(overrides: Partial<HostOptions> = {}): TestHost {
  const clock = new ManualClock(Date.UTC(2026, 0, 1), { autoAdvance: true });
  const host = createHost({
    registry: TEST_REGISTRY,
    policies: TEST_POLICIES,
    clock,
    sweepTimers: false,
    isolation: "inline",
    ...overrides,
    // A wall-clock deadline far above what any case needs: a case about correctness must not
    // fail because a loaded 2-core machine ran it slowly. Cases about timeouts set their own.
    limits: { timeoutMs: 120_000, ...overrides.limits },
  });
  const run: TestHost["run"] = (source, options = {}) =>
    host.run(source, {
      actor: options.actor ?? ADMIN,
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.args ? { args: options.args } : {}),
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    });
  return {
    host,
    clock,
    run,
    async eval(source, options = {}) {
      const r = await run(source, options);
      if (!r.ok) throw new Error(`script failed: ${r.error?.kind}: ${r.error?.message}\n${r.error?.traceback}`);
      return r.values;
    },
  };
}

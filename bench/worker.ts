/**
 * Worker isolation against inline, measured in the same process one after the other:
 * - store get ops/s from a Lua loop (one run doing N gets on one handle);
 * - short scripts/s (acquire, set, get, delete, release), 8 runs in flight at a time.
 * Targets (issue 3): both worker/inline ratios >= 0.25. Called by bench/main.ts.
 */
import { createHost, type Host, type Isolation } from "../src/host.js";
import type { PolicyDocument } from "../src/policy/types.js";
import type { RegistryDocument } from "../src/registry/types.js";

const REGISTRY = {
  version: "1.0",
  namespace: "bench",
  entries: [{ name: "kv", kind: "store.memory", max_size: 1_000_000, eviction: "none", pool: { max: 1024 } }],
} as RegistryDocument;
const POLICIES = {
  version: "1.0",
  policies: [{ id: "bench", effect: "allow", actions: ["store.get", "store.key.*"], resources: ["bench:*"] }],
} as PolicyDocument;
const ACTOR = { id: "bench", meta: {} };
const LIMITS = { maxInstructions: 1e12, timeoutMs: 600_000, maxStoreOps: 1e12 };

const GET_LOOP = `
  local s = require("store").get("bench:kv")
  s:set("k", { n = 1 })
  local n = ...
  for i = 1, n do s:get("k") end
  s:release()`;
const SHORT = `
  local s = require("store").get("bench:kv")
  s:set("x", 1)
  local v = s:get("x")
  s:delete("x")
  s:release()
  return v`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function getOpsPerSecond(host: Host, n: number, reps: number): Promise<number> {
  const rates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const t0 = performance.now();
    const r = await host.run(GET_LOOP, { actor: ACTOR, args: [n], limits: LIMITS });
    if (!r.ok) throw new Error(`bench get loop failed: ${r.error?.kind}: ${r.error?.message}`);
    rates.push((n / (performance.now() - t0)) * 1000);
  }
  return median(rates);
}

async function shortRunsPerSecond(host: Host, runs: number, reps: number, inFlight = 8): Promise<number> {
  const rates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let started = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (started++ < runs) {
          const r = await host.run(SHORT, { actor: ACTOR });
          if (!r.ok) throw new Error(`bench short script failed: ${r.error?.kind}: ${r.error?.message}`);
        }
      }),
    );
    rates.push((runs / (performance.now() - t0)) * 1000);
  }
  return median(rates);
}

async function measure(isolation: Isolation, quick: boolean): Promise<{ gets: number; shorts: number }> {
  const host = createHost({ registry: REGISTRY, policies: POLICIES, sweepTimers: false, isolation });
  try {
    await host.ready();
    // Warm up the JIT (inline) and every worker (worker isolation).
    await getOpsPerSecond(host, 20_000, 2);
    await shortRunsPerSecond(host, 500, 1);
    const gets = await getOpsPerSecond(host, quick ? 50_000 : 200_000, quick ? 3 : 5);
    const shorts = await shortRunsPerSecond(host, quick ? 1_000 : 3_000, quick ? 3 : 5);
    return { gets, shorts };
  } finally {
    await host.close();
  }
}

/**
 * Runs the worker-isolation benchmark; returns ops/s (runs/s for short scripts) per mode and the
 * worker/inline ratios (the names with a "/"). `--quick` on the command line shortens it.
 */
export async function benchWorker(options: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = options.quick ?? process.argv.includes("--quick");
  const inline = await measure("inline", quick);
  const worker = await measure("worker", quick);
  return {
    "store get from Lua, inline": inline.gets,
    "store get from Lua, worker": worker.gets,
    "store get worker/inline": worker.gets / inline.gets,
    "short scripts per s, inline": inline.shorts,
    "short scripts per s, worker": worker.shorts,
    "short scripts worker/inline": worker.shorts / inline.shorts,
  };
}

/**
 * The host thread's memory over many worker-isolated runs (issue 3: it must stay flat). Runs
 * `runs` short scripts, 1 000 at a time on the default workers, and returns the heap after a
 * full collection (when `global.gc` is exposed, as `npm run bench` does) at the start, halfway
 * and at the end, in MiB.
 */
export async function soakWorker(runs = 100_000): Promise<Record<string, number>> {
  const host = createHost({ registry: REGISTRY, policies: POLICIES, sweepTimers: false });
  const heapMb = (): number => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed / (1 << 20);
  };
  try {
    await host.ready();
    await host.run(SHORT, { actor: ACTOR });
    const start = heapMb();
    let half = 0;
    const t0 = performance.now();
    for (let done = 0; done < runs; done += 1000) {
      const batch = await Promise.all(Array.from({ length: Math.min(1000, runs - done) }, () => host.run(SHORT, { actor: ACTOR })));
      if (batch.some((r) => !r.ok)) throw new Error("soak run failed");
      if (done + 1000 >= runs / 2 && half === 0) half = heapMb();
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      runs,
      runsPerSec: runs / seconds,
      heapStartMb: start,
      heapHalfMb: half,
      heapEndMb: heapMb(),
      rssEndMb: process.memoryUsage().rss / (1 << 20),
      poolsInUse: host.pools().reduce((n, p) => n + p.inUse, 0),
    };
  } finally {
    await host.close();
  }
}

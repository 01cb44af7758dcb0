/**
 * What only a worker can contain: runs stuck inside one library call, heap exhaustion, and
 * workers stopped in the middle of their writes. Each time the host reports the right kind,
 * replaces the worker, keeps serving, and the stores hold every acknowledged write, whole.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createHost, type Host } from "../../src/host.js";
import type { RunResult } from "../../src/runtime/run-types.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";

let host: Host | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

function workerHost(options: Partial<Parameters<typeof createHost>[0]> = {}): Host {
  host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: "worker", workers: 2, ...options });
  return host;
}

const CATASTROPHIC = `return ("a"):rep(5000):find(".-.-.-.-.-b")`;

async function timed(p: Promise<RunResult>): Promise<[RunResult, number]> {
  const t0 = performance.now();
  const r = await p;
  return [r, performance.now() - t0];
}

describe("the watchdog", () => {
  it("terminates a worker stuck in a library call past its deadline: Timeout, and a replacement serves the next runs", async () => {
    const h = workerHost({ workers: 1, watchdogGraceMs: 50 });
    await h.ready();
    // The pattern search never ends, so the watchdog is the only way out; the bound below only
    // catches a watchdog that never fires (it is 20x the deadline, for a loaded machine).
    const [r, ms] = await timed(h.run(CATASTROPHIC, { actor: ADMIN, limits: { timeoutMs: 300 } }));
    expect(r.error).toMatchObject({ kind: "Timeout", retryable: false });
    expect(r.error?.message).toMatch(/worker stopped/);
    expect(ms).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(300 * 20);
    expect((await h.run(`return 1 + 1`, { actor: ADMIN })).values).toEqual([2]);
  });

  it("keeps serving other runs while one worker is stuck", async () => {
    const h = workerHost({ workers: 2 });
    await h.ready();
    // Ordering, not time: all 20 short runs finish while the stuck one is still pending (its
    // 30 s deadline is far beyond what 20 trivial runs take on any machine).
    let stuckDone = false;
    const stuck = h.run(CATASTROPHIC, { actor: ADMIN, limits: { timeoutMs: 30_000 } }).then((r) => {
      stuckDone = true;
      return r;
    });
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => h.run(`return ${i} * 2`, { actor: ADMIN })));
    expect(stuckDone).toBe(false);
    expect(others.map((r) => r.values[0])).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    await h.close();
    expect((await stuck).error?.kind).toBe("Canceled");
  });

  it("an endless Lua loop stops itself at the deadline (Timeout) without losing its worker", async () => {
    // The watchdog's grace is far beyond the 200 ms deadline, so on a loaded machine it cannot
    // fire before the count hook (which checks the deadline every 1000 instructions).
    const h = workerHost({ workers: 1, watchdogGraceMs: 30_000 });
    const r = await h.run(`while true do end`, { actor: ADMIN, limits: { timeoutMs: 200, maxInstructions: 1e12 } });
    expect(r.error?.kind).toBe("Timeout");
    expect(r.error?.message).not.toMatch(/worker stopped/);
    expect(r.stats.instructions).toBeGreaterThan(0);
  });

  it("a table that outgrows the memory limit ends with MemoryLimit, which pcall cannot catch", async () => {
    const h = workerHost({ workers: 1, limits: { maxMemoryMb: 64 } });
    const r = await h.run(`pcall(function() local t = {} for i = 1, 1e8 do t[i] = { i } end end) return "escaped"`, {
      actor: ADMIN,
      limits: { maxInstructions: 1e12, timeoutMs: 60_000 },
    });
    expect(r.error?.kind).toBe("MemoryLimit");
    expect(r.stats.peakMemoryBytes).toBeGreaterThan(32 << 20);
    expect((await h.run(`return "next"`, { actor: ADMIN })).values).toEqual(["next"]);
  }, 90_000);

  it("strings count toward the memory limit too (ArrayBuffers are outside V8's heap limit)", async () => {
    const h = workerHost({ workers: 1, limits: { maxMemoryMb: 64 } });
    // Only the memory limit can end this run; the wall clock (60 s) is there so that it must lose
    // even on a loaded machine, where building and collecting 64 MiB of strings takes seconds.
    const r = await h.run(`local t = {} for i = 1, 1e4 do t[i] = string.rep("x", 2^20 - 64) .. i end`, {
      actor: ADMIN,
      limits: { maxInstructions: 1e12, timeoutMs: 60_000 },
    });
    expect(r.error?.kind).toBe("MemoryLimit");
  }, 90_000);

  it("a heap exhausted inside one call (compiling a huge chunk) stops the worker: MemoryLimit, and a replacement", async () => {
    const h = workerHost({ workers: 1, limits: { maxMemoryMb: 32 } });
    // As above: the 60 s wall clock must lose to the heap limit however busy the machine is.
    const r = await h.run(`local f = load(string.rep("a={1,2,3} ", 1.5e6)) return 1`, { actor: ADMIN, limits: { timeoutMs: 60_000 } });
    expect(r.error?.kind).toBe("MemoryLimit");
    expect((await h.run(`return "next"`, { actor: ADMIN })).values).toEqual(["next"]);
  }, 90_000);

  it("a worker stopped mid-way through its writes: every acknowledged write is there, whole; handles go back to their pools", async () => {
    const h = workerHost({ workers: 2, watchdogGraceMs: 20 });
    const acked: number[] = [];
    const script = `
      local store = require("store")
      local cache, tenant = store.get("app:cache"), store.get("app:tenant")
      local pad = string.rep("p", 512)
      for i = 1, 40 do
        assert(cache:set("w:" .. i, { i = i, pad = pad }))
        assert(tenant:set("w:" .. i, { i = i, pad = pad }))
        print(i)
        if i == 25 then ${CATASTROPHIC.replace("return ", "local _ = ")} end
      end`;
    // 50 writes take milliseconds; 1.5 s leaves a loaded machine room to reach the stuck call.
    const r = await h.run(script, { actor: ADMIN, limits: { timeoutMs: 1_500 }, onOutput: (line) => acked.push(Number(line)) });
    expect(r.error?.kind).toBe("Timeout");
    expect(r.stats.autoReleased).toBe(2);
    expect(acked).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    for (const id of ["app:cache", "app:tenant"]) {
      const s = h.store(id);
      for (let i = 1; i <= 40; i++) {
        const v = await s.get(`w:${i}`);
        if (i <= 25) expect(v).toEqual({ i, pad: "p".repeat(512) });
        else expect(v).toBeUndefined();
      }
    }
    expect(h.pools().map((p) => p.inUse)).toEqual([0, 0, 0, 0]);
    expect(h.pools().find((p) => p.id === "app:cache")).toMatchObject({ acquired: 1, autoReleased: 1 });
  });
});

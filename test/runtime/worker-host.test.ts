/**
 * A worker-isolated host as its users see it: the default mode, the bounded queue, many
 * concurrent runs, the host clock on the trusted side, options, close, and the CLI.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { createHost, type Host } from "../../src/host.js";
import type { AuditRecord } from "../../src/runtime/audit.js";
import { ADMIN, makeHost, TEST_POLICIES, TEST_REGISTRY, type TestHost } from "../helpers.js";

let hosts: Host[] = [];
afterEach(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  hosts = [];
});

function workerHost(options: Partial<Parameters<typeof createHost>[0]> = {}): Host {
  const host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, ...options });
  hosts.push(host);
  return host;
}

/** Moves the clock on until `p` settles (the sleep it waits for may not be registered yet). */
async function advanceUntil<T>(clock: ManualClock, ms: number, p: Promise<T>): Promise<T> {
  let settled = false;
  void p.finally(() => (settled = true));
  while (!settled) {
    clock.advance(ms);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return p;
}

function testHost(options: Partial<Parameters<typeof createHost>[0]> = {}): TestHost {
  const t = makeHost({ isolation: "worker", workers: 1, ...options });
  hosts.push(t.host);
  return t;
}

describe("worker isolation", () => {
  it("is the default", async () => {
    const host = workerHost();
    expect(host.isolation).toBe("worker");
    const r = await host.run(`return require("store").get("app:cache"):set("k", 1)`, { actor: ADMIN });
    expect(r.values).toEqual([true]);
    expect(r.stats.peakMemoryBytes).toBeGreaterThan(0);
  });

  it("queues runs when every worker is busy, and fails the overflow at once with Unavailable, retryable", async () => {
    const t = testHost({ workers: 1, maxQueue: 2 });
    await t.host.ready();
    t.clock.autoAdvance = false;
    const blocking = t.run(`require("time").sleep(10) return "first"`);
    const queued = [t.run(`return "second"`), t.run(`return "third"`)];
    const overflow = await t.run(`return "fourth"`);
    expect(overflow.error).toMatchObject({ kind: "Unavailable", retryable: true });
    expect(overflow.error?.message).toMatch(/queue full/);
    expect((await advanceUntil(t.clock, 10_000, blocking)).values).toEqual(["first"]);
    expect((await Promise.all(queued)).map((r) => r.error ?? r.values[0])).toEqual(["second", "third"]);
  });

  it("runs 1 000 concurrent scripts on 4 workers with no lost run and no leaked handle", async () => {
    const host = workerHost({ workers: 4 });
    const script = `
      local store = require("store")
      local counter = assert(store.get("app:cache"))
      local other = assert(store.get("app:tenant"))
      local n = counter:incr("runs")
      counter:release()
      return n`;
    const results = await Promise.all(Array.from({ length: 1000 }, () => host.run(script, { actor: ADMIN })));
    expect(results.filter((r) => !r.ok).map((r) => r.error)).toEqual([]);
    expect(new Set(results.map((r) => r.values[0])).size).toBe(1000);
    expect(await host.store("app:cache").get("runs")).toBe(1000);
    const pools = host.pools();
    expect(pools.every((p) => p.inUse === 0)).toBe(true);
    expect(pools.find((p) => p.id === "app:cache")).toMatchObject({ acquired: 1000, released: 1000, autoReleased: 0 });
    expect(pools.find((p) => p.id === "app:tenant")).toMatchObject({ acquired: 1000, autoReleased: 1000 });
  }, 30_000);

  it("two tenants at once see neither each other's keys nor globals", async () => {
    const host = workerHost({ workers: 2 });
    const script = (me: string, other: string): string => `
      local s = require("store").get("app:tenant")
      assert(s:set("${me}:secret", "${me}"))
      shared_global = "${me}"
      require("time").sleep(0.05)
      local theirs, err = s:get("${other}:secret")
      return shared_global, theirs, err and err:kind()`;
    const tenant = (name: string) => ({ id: `tenant:${name}`, meta: { tenant: name } });
    const [a, b] = await Promise.all([host.run(script("t1", "t2"), { actor: tenant("t1") }), host.run(script("t2", "t1"), { actor: tenant("t2") })]);
    expect(a.values).toEqual(["t1", null, "PermissionDenied"]);
    expect(b.values).toEqual(["t2", null, "PermissionDenied"]);
  });
});

describe("the host clock in worker isolation", () => {
  it("time.now reads the host's ManualClock, set between runs", async () => {
    const t = testHost();
    t.clock.set(1_700_000_000_500);
    expect(await t.eval(`return require("time").now()`)).toEqual([1_700_000_000.5]);
  });

  it("store TTLs use the host clock: a key is gone once the clock passes its TTL", async () => {
    const t = testHost();
    await t.eval(`require("store").get("app:cache"):set("ttl", "v", 60)`);
    t.clock.advance(59_000);
    expect(await t.eval(`return require("store").get("app:cache"):get("ttl")`)).toEqual(["v"]);
    t.clock.advance(2_000);
    expect(await t.eval(`return require("store").get("app:cache"):get("ttl")`)).toEqual([null]);
  });

  it("time.sleep waits on the host clock, and another run is served meanwhile", async () => {
    const t = testHost({ workers: 2 });
    t.clock.autoAdvance = false;
    const sleeper = t.run(`local time = require("time") local t0 = time.now() time.sleep(60) return time.now() - t0`);
    expect(await t.eval(`return "meanwhile"`)).toEqual(["meanwhile"]);
    const [slept] = (await advanceUntil(t.clock, 60_000, sleeper)).values as [number];
    // At least the 60 s it asked for (the clock may have moved on again before it read the time).
    expect(slept).toBeGreaterThanOrEqual(60);
  });

  it("a sleep past the deadline ends with Timeout", async () => {
    const host = workerHost({ workers: 1 });
    const r = await host.run(`require("time").sleep(10)`, { actor: ADMIN, limits: { timeoutMs: 100 } });
    expect(r.error?.kind).toBe("Timeout");
  });
});

describe("host options and lifecycle", () => {
  it.each([
    [{ isolation: "thread" }, /isolation must be "worker" or "inline"/],
    [{ workers: 0 }, /workers must be an integer >= 1/],
    [{ maxQueue: -1 }, /maxQueue must be an integer >= 0/],
    [{ watchdogGraceMs: 1.5 }, /watchdogGraceMs must be an integer/],
    [{ limits: { maxMemoryMb: 8 } }, /maxMemoryMb/],
  ])("refuses bad options: %j", (options, message) => {
    expect(() => createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, ...(options as object) })).toThrow(message);
  });

  it("refuses per-run JS modules (they cannot cross into a worker)", async () => {
    const host = workerHost({ workers: 1 });
    await expect(host.run(`return 1`, { actor: ADMIN, modules: new Map() })).rejects.toMatchObject({ code: "OPTIONS_INVALID" });
  });

  it("forwards audit records from the store thread", async () => {
    const records: AuditRecord[] = [];
    const host = workerHost({ workers: 1, audit: { onDecision: (r) => records.push(r) } });
    await host.run(`require("store").get("app:cache"):get("k")`, { actor: ADMIN });
    await host.metrics();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(records.map((r) => r.action)).toEqual(["store.get", "store.key.get"]);
  });

  it("close() ends runs in progress with Canceled, then refuses new runs", async () => {
    const host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, workers: 1, clock: new ManualClock(0) });
    const sleeping = host.run(`require("time").sleep(100)`, { actor: ADMIN, limits: { timeoutMs: 60_000 } });
    const queued = host.run(`return 1`, { actor: ADMIN });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await host.close();
    expect((await sleeping).error?.kind).toBe("Canceled");
    expect((await queued).error?.kind).toBe("Canceled");
    await expect(host.run(`return 1`, { actor: ADMIN })).rejects.toMatchObject({ code: "HOST_CLOSED" });
  });

  it("luastore run --isolation worker runs the script and exits promptly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "luastore-worker-cli-"));
    const file = join(dir, "hello.lua");
    writeFileSync(file, `local s = require("store").get("app:cache") s:set("k", 41) print(s:incr("k"))`);
    // A worker that kept the process alive would hang here: execFile kills it after 15 s and fails.
    const { stdout } = await promisify(execFile)(process.execPath, ["bin/luastore.js", "run", file, "--isolation", "worker", "--max-memory", "64"], {
      timeout: 15_000,
    });
    expect(stdout).toBe("42\n");
  });
});

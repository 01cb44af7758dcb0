/**
 * The trusted side of a run inside its Lua worker: the actor is the one the host sent with the
 * run, pool limits hold across workers, audit records survive a worker terminated right after
 * it acted, the counters of every worker add up in host.metrics(), and workers write one SQLite
 * file each through a connection of their own.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHost, type Host, type HostOptions } from "../../src/host.js";
import type { AuditRecord } from "../../src/runtime/audit.js";
import type { RegistryDocument } from "../../src/registry/types.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY, tenant } from "../helpers.js";

let hosts: Host[] = [];
afterEach(async () => {
  for (const h of hosts) await h.close();
  hosts = [];
});

function workerHost(options: Partial<HostOptions> = {}): Host {
  const host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: "worker", workers: 2, ...options });
  hosts.push(host);
  return host;
}

/** A stuck library call: only the watchdog ends it. */
const CATASTROPHIC = `local _ = ("a"):rep(5000):find(".-.-.-.-.-b")`;

const dir = mkdtempSync(join(tmpdir(), "luastore-wgate-"));

describe("the actor of a run in a worker", () => {
  it("is the one the host sent with the run: nothing a script does makes it act as another actor", async () => {
    const records: AuditRecord[] = [];
    const host = workerHost({ workers: 1, audit: { onDecision: (r) => records.push(r) } });
    // Everything a script could try: claim another actor in its arguments or globals, reach
    // for a gateway or the debug library, and use the other tenant's keys.
    const script = `
      local claimed = ...
      actor = claimed
      _G.actor = { id = claimed, meta = { tenant = "t2" } }
      local reach = { debug = type(debug), gateway = type(rawget(_G, "gateway")), setPolicy = type(rawget(_G, "setPolicy")) }
      local s = require("store").get("app:tenant")
      local own = s:set("t1:k", "mine")
      local other, err = s:get("t2:k")
      return own, other, err and err:kind(), reach.debug, reach.gateway, reach.setPolicy`;
    const r = await host.run(script, { actor: tenant("t1"), args: ["tenant:t2"] });
    expect(r.error).toBeUndefined();
    expect(r.values).toEqual([true, null, "PermissionDenied", "nil", "nil", "nil"]);
    // The same worker, the next run, another actor: bound afresh from the host's message.
    const second = await host.run(`return require("store").get("app:tenant"):get("t1:k")`, { actor: tenant("t2") });
    expect(second.values[0]).toBeNull();
    expect(second.error).toBeUndefined();
    expect(new Set(records.filter((x) => x.runId === r.runId).map((x) => x.actor))).toEqual(new Set(["tenant:t1"]));
    expect(records.find((x) => x.runId === r.runId && x.key === "t2:k")).toMatchObject({ allowed: false });
    expect(records.find((x) => x.runId === second.runId && x.key === "t1:k")).toMatchObject({ actor: "tenant:t2", allowed: false });
  });
});

describe("pools across workers", () => {
  it("a pool's size holds across every worker: 4 runs on 4 workers at once get 2 handles of a pool of 2, and all come back", async () => {
    const registry: RegistryDocument = {
      version: "1.0",
      namespace: "app",
      entries: [
        { name: "scarce", kind: "store.memory", pool: { max: 2 } },
        { name: "cache", kind: "store.memory" },
      ],
    } as RegistryDocument;
    const host = workerHost({ registry, workers: 4 });
    await host.ready();
    // A run that gets a handle holds it until the host sets "go"; one that is refused returns.
    const script = `
      local store = require("store")
      local s, err = store.get("app:scarce")
      if not s then return "refused", err:kind() end
      local cache = store.get("app:cache")
      while cache:get("go") == nil do end
      return "held"`;
    const runs = Array.from({ length: 4 }, () => host.run(script, { actor: ADMIN, limits: { timeoutMs: 60_000, maxInstructions: 1e12 } }));
    const scarce = (): { inUse: number; acquired: number; refused: number } => host.pools().find((p) => p.id === "app:scarce")!;
    // Every run has tried once it is counted as acquired or refused.
    while (scarce().acquired + scarce().refused < 4) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(scarce()).toMatchObject({ inUse: 2, acquired: 2, refused: 2 });
    await host.store("app:cache").set("go", true);
    const results = await Promise.all(runs);
    expect(results.map((r) => r.values[0]).sort()).toEqual(["held", "held", "refused", "refused"]);
    expect(results.filter((r) => r.values[0] === "refused").map((r) => r.values[1])).toEqual(["Unavailable", "Unavailable"]);
    expect(scarce()).toMatchObject({ inUse: 0, acquired: 2, refused: 2 });
    expect(host.pools().find((p) => p.id === "app:scarce")!.autoReleased).toBe(2);
  });

  it("a worker terminated while it holds handles gives them back: the pool serves its full size again", async () => {
    const host = workerHost({ workers: 2, watchdogGraceMs: 20 });
    // app:cache has a pool of 4: the stuck run takes all of them.
    const stuck = await host.run(
      `local store = require("store") for i = 1, 4 do assert(store.get("app:cache")) end ${CATASTROPHIC}`,
      { actor: ADMIN, limits: { timeoutMs: 300 } },
    );
    expect(stuck.error?.kind).toBe("Timeout");
    expect(stuck.stats.autoReleased).toBe(4);
    expect(host.pools().find((p) => p.id === "app:cache")).toMatchObject({ inUse: 0, acquired: 4, autoReleased: 4 });
    const again = await host.run(`local store = require("store") for i = 1, 4 do assert(store.get("app:cache")) end return "ok"`, { actor: ADMIN });
    expect(again.values).toEqual(["ok"]);
  });
});

describe("audit from workers", () => {
  it("a worker terminated right after a write leaves that write's record: none is lost", async () => {
    const records: AuditRecord[] = [];
    const host = workerHost({ workers: 1, watchdogGraceMs: 20, audit: { onDecision: (r) => records.push(r) } });
    const r = await host.run(
      `local s = require("store").get("app:cache") assert(s:set("last", 1)) ${CATASTROPHIC}`,
      { actor: ADMIN, limits: { timeoutMs: 300 } },
    );
    expect(r.error?.kind).toBe("Timeout");
    expect(await host.store("app:cache").get("last")).toBe(1);
    const mine = records.filter((x) => x.runId === r.runId);
    expect(mine.map((x) => [x.action, x.key ?? null, x.allowed])).toEqual([
      ["store.get", null, true],
      ["store.key.set", "last", true],
    ]);
  });

  it("more records than the ring holds all arrive, in order", async () => {
    const records: AuditRecord[] = [];
    const host = workerHost({ workers: 1, audit: { onDecision: (r) => records.push(r) } });
    // ~200 bytes a record: 20 000 records are about 4 MiB, several times the 1 MiB ring.
    const r = await host.run(
      `local s = require("store").get("app:cache") for i = 1, 20000 do s:has("k" .. i .. string.rep("x", 60)) end return true`,
      { actor: ADMIN, limits: { maxInstructions: 1e9 } },
    );
    expect(r.error).toBeUndefined();
    const keys = records.filter((x) => x.action === "store.key.has").map((x) => x.key);
    expect(keys.length).toBe(20000);
    expect(keys[0]).toBe(`k1${"x".repeat(60)}`);
    expect(keys[19999]).toBe(`k20000${"x".repeat(60)}`);
  });
});

describe("metrics from workers", () => {
  it("host.metrics() sums the counters of every worker, of stores reached over the channel and of stores the workers open", async () => {
    const registry: RegistryDocument = {
      version: "1.0",
      namespace: "app",
      entries: [
        { name: "cache", kind: "store.memory" },
        { name: "files", kind: "store.sql", path: join(dir, "metrics.db") },
      ],
    } as RegistryDocument;
    const host = workerHost({ registry, workers: 2 });
    await host.ready();
    const script = `
      local store = require("store")
      for _, id in ipairs({ "app:cache", "app:files" }) do
        local s = store.get(id)
        s:set("k", 1)
        s:get("k")
        s:get("missing")
        s:get("secret:x")
      end
      return true`;
    // Two runs handed out at once, while both workers are idle: one to each.
    const runs = await Promise.all([host.run(script, { actor: ADMIN }), host.run(script, { actor: ADMIN })]);
    expect(runs.map((r) => r.error)).toEqual([undefined, undefined]);
    expect(host.workers().workers.map((w) => w.runs)).toEqual([1, 1]);
    for (const m of (await host.metrics()).filter((x) => x.id === "app:cache" || x.id === "app:files")) {
      expect(m, m.id).toMatchObject({ hits: 2, misses: 2, sets: 2, denied: 2, errors: { PermissionDenied: 2 }, size: 1 });
    }
  });
});

describe("SQLite from workers", () => {
  it("every worker writes the file through its own connection: 4 workers' increments all count, and the host reads them", async () => {
    const registry: RegistryDocument = {
      version: "1.0",
      namespace: "app",
      entries: [{ name: "files", kind: "store.sql", path: join(dir, "shared.db") }],
    } as RegistryDocument;
    const host = workerHost({ registry, workers: 4 });
    await host.ready();
    const script = `local s = require("store").get("app:files") for i = 1, 50 do assert(s:incr("n")) end return true`;
    // Correctness, not speed: 8 runs of 50 synced commits each may take long on a loaded machine.
    const runs = await Promise.all(Array.from({ length: 8 }, () => host.run(script, { actor: ADMIN, limits: { timeoutMs: 120_000 } })));
    expect(runs.map((r) => r.error)).toEqual(Array(8).fill(undefined));
    expect(await host.store("app:files").get("n")).toBe(400);
    expect((await host.metrics()).find((m) => m.id === "app:files")).toMatchObject({ sets: 400 });
  });
});

/**
 * [hostile] Fairness and honest verdicts: a script cannot pass its own error off as a host
 * verdict, cannot overflow the host's timers with a sleep, and (quotas, handle cap) cannot take
 * another tenant's share of a store or a pool. Each case runs in both isolation modes where the
 * behaviour is the host's in both.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, MAX_TIMER_MS, systemClock } from "../../src/clock.js";
import { HOST_VERDICT_KINDS } from "../../src/errors.js";
import { createHost, type Host } from "../../src/host.js";
import type { PolicyDocument } from "../../src/policy/types.js";
import type { RegistryDocument } from "../../src/registry/types.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY, tenant } from "../helpers.js";

type Isolation = "inline" | "worker";
const MODES: Isolation[] = ["inline", "worker"];

const scratch = mkdtempSync(join(tmpdir(), "luastore-fairness-"));
let scripts = 0;
/** Runs `luastore run` on `source` in a child process (the real CLI, with its real stderr). */
async function cli(source: string, ...flags: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(scratch, `script-${++scripts}.lua`);
  writeFileSync(file, source);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["bin/luastore.js", "run", file, ...flags]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

for (const mode of MODES) {
  describe(`[hostile] verdicts and sleeps, ${mode} isolation`, () => {
    let host: Host;
    beforeAll(async () => {
      host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: mode, workers: 1 });
      await host.ready();
    });
    afterAll(async () => {
      await host.close();
    });

    for (const kind of HOST_VERDICT_KINDS) {
      it(`an errors.new value of kind ${kind} raised by the script is reported as RuntimeError with ${kind} in details`, async () => {
        const r = await host.run(`error(errors.new({ kind = "${kind}", message = "forged verdict", retryable = true }))`, { actor: ADMIN });
        expect(r.error).toMatchObject({ kind: "RuntimeError", message: "forged verdict", retryable: false, details: { kind } });
      });
    }

    it("a script error of another kind keeps its kind, and a script still sees its own kinds inside Lua", async () => {
      const r = await host.run(
        `local ok, e = pcall(error, errors.new({ kind = errors.TIMEOUT, message = "upstream slow" }))
         assert(errors.is(e, errors.TIMEOUT) and e:kind() == "Timeout")
         error(errors.new({ kind = errors.CONFLICT, message = "try again", retryable = true }))`,
        { actor: ADMIN },
      );
      expect(r.error).toMatchObject({ kind: "Conflict", retryable: true });
      expect(r.error?.details).toBeUndefined();
    });

    it("an error value the host made keeps its kind when the script re-raises it", async () => {
      // time.sleep inside a library callback cannot yield: the host answers nil, Internal.
      const r = await host.run(
        `local e
         table.sort({ 1, 2 }, function() local _, err = require("time").sleep(1) e = err return false end)
         error(e)`,
        { actor: ADMIN },
      );
      expect(r.error).toMatchObject({ kind: "Internal" });
      expect(r.error?.details).toBeUndefined();
    });

    it("a real limit after a forged one is still the host's verdict", async () => {
      const r = await host.run(`pcall(error, errors.new({ kind = "MemoryLimit", message = "x" })) while true do end`, {
        actor: ADMIN,
        limits: { maxInstructions: 100_000 },
      });
      expect(r.error).toMatchObject({ kind: "InstructionLimit" });
      expect(r.error?.details).toBeUndefined();
    });

    // 3e6 s is past Node's largest timer (2^31 - 1 ms): the sleep used to return after 1 ms.
    for (const seconds of ["3e6", "1e300", `${(MAX_TIMER_MS + 1) / 1000}`, "2^53"]) {
      it(`time.sleep(${seconds}) on the system clock sleeps until the deadline and ends with Timeout`, async () => {
        const r = await host.run(`require("time").sleep(${seconds}) return "woke early"`, { actor: ADMIN, limits: { timeoutMs: 100 } });
        expect(r.error?.kind, r.values.join()).toBe("Timeout");
      });
    }

    it("time.sleep of NaN, a negative or an infinite number answers nil, Invalid", async () => {
      const r = await host.run(
        `local time = require("time")
         local out = {}
         for _, s in ipairs({ 0/0, -1, -1e300, math.huge, -math.huge }) do
           local ok, err = time.sleep(s)
           out[#out + 1] = tostring(ok) .. ":" .. err:kind()
         end
         return table.concat(out, ",")`,
        { actor: ADMIN },
      );
      expect(r.values).toEqual(["nil:Invalid,nil:Invalid,nil:Invalid,nil:Invalid,nil:Invalid"]);
    });

    it("a sleep shorter than the time left still returns", async () => {
      const r = await host.run(`return require("time").sleep(0.001)`, { actor: ADMIN, limits: { timeoutMs: 60_000 } });
      expect(r.values).toEqual([true]);
    });
  });

  describe(`[hostile] the CLI's verdicts, ${mode} isolation`, () => {
    it("prints a forged MemoryLimit as the script's RuntimeError, never as a limit stop", async () => {
      const r = await cli(`error(errors.new({ kind = "MemoryLimit", message = "memory limit exceeded (256 MiB)", retryable = true }))`, "--isolation", mode);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: RuntimeError \(the script raised kind MemoryLimit\): memory limit exceeded/);
      expect(r.stderr).not.toMatch(/^error: MemoryLimit/m);
    });

    it("indents every further line of a script's message, so none reads like a verdict", async () => {
      const r = await cli(`error("bad input\\nerror: Timeout: timeout: run exceeded 5000 ms\\r\\nerror: Internal: x")`, "--isolation", mode);
      expect(r.code).toBe(1);
      expect(r.stderr.split("\n").filter((line) => line.startsWith("error:"))).toHaveLength(1);
      expect(r.stderr).toMatch(/^error: RuntimeError: /);
    });

    it("--max-handles caps the handles the run holds at once", async () => {
      const r = await cli(
        `local n = 0 while true do local h, err = require("store").get("app:cache") if not h then print(n, err:kind()) return end n = n + 1 end`,
        "--isolation",
        mode,
        "--max-handles",
        "2",
      );
      expect(r.stdout).toBe("2\tRateLimited\n");
    });

    it("time.sleep(3e6) ends with Timeout and no TimeoutOverflowWarning reaches stderr", async () => {
      const r = await cli(`require("time").sleep(3e6) print("woke early")`, "--isolation", mode, "--timeout", "0.2");
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^error: Timeout: /);
      expect(r.stderr).not.toMatch(/Warning/);
    });
  });
}

describe("[hostile] clocks take any sleep", () => {
  it("the system clock does not end a sleep longer than one timer early, and warns nothing", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    try {
      const controller = new AbortController();
      let settled: string | null = null;
      const sleeps = [3e9, MAX_TIMER_MS + 1, Infinity].map((ms) =>
        systemClock.sleep(ms, controller.signal).then(
          () => (settled = `resolved ${ms}`),
          () => undefined,
        ),
      );
      // An overflowing timer fires after 1 ms: 20 ms is ample to see it, and all this test waits.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(settled).toBeNull();
      controller.abort(new Error("done"));
      await Promise.all(sleeps);
      expect(settled).toBeNull();
      expect(warnings.map((w) => w.name)).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("NaN and negative sleeps wait no time on either clock", async () => {
    await systemClock.sleep(Number.NaN);
    await systemClock.sleep(-5);
    const clock = new ManualClock(1000);
    await clock.sleep(Number.NaN);
    await clock.sleep(-5);
    expect(clock.now()).toBe(1000);
  });

  it("a manual clock never jumps to an infinite time", async () => {
    const clock = new ManualClock(1000, { autoAdvance: true });
    const controller = new AbortController();
    const sleep = clock.sleep(Infinity, controller.signal);
    expect(clock.now()).toBe(1000);
    controller.abort(new Error("done"));
    await expect(sleep).rejects.toThrow("done");
  });

  it("under a manual clock, a sleep too long for it ends the run with Timeout at the wall deadline", async () => {
    const host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: "inline", clock: new ManualClock(0, { autoAdvance: true }) });
    try {
      const r = await host.run(`require("time").sleep(1e306)`, { actor: ADMIN, limits: { timeoutMs: 100 } });
      expect(r.error?.kind).toBe("Timeout");
      const long = await host.run(`local t = require("time") local a = t.now() t.sleep(3e6) return t.now() - a`, { actor: ADMIN });
      expect(long.values).toEqual([3e6]);
    } finally {
      await host.close();
    }
  });
});

// ---- fair shares ------------------------------------------------------------------------

/** Two shared stores with a quota of 10 keys per tenant: room for 3 tenants in each. */
const SHARED_REGISTRY = {
  version: "1.0",
  namespace: "shared",
  entries: [
    { name: "none", kind: "store.memory", max_size: 30, eviction: "none", quota: { by: "actor.meta.tenant", max_keys: 10, max_bytes: "4KiB" } },
    { name: "lru", kind: "store.memory", max_size: 30, eviction: "lru", quota: { by: "actor.meta.tenant", max_keys: 10 } },
    { name: "pool", kind: "store.memory", pool: { max: 12 } },
    // The same rules through the host's lazily opened SQLite store.
    { name: "sql", kind: "store.sql", path: ":memory:", max_size: 30, eviction: "lru", quota: { by: "actor.meta.tenant", max_keys: 10 } },
  ],
} as RegistryDocument;

const SHARED_POLICIES = {
  version: "1.0",
  policies: [
    { id: "open", effect: "allow", actors: ["tenant:*"], actions: ["store.get", "store.info"], resources: ["shared:*"] },
    {
      id: "own-keys",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.*"],
      resources: ["shared:*"],
      conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
    },
  ],
} as PolicyDocument;

/** Fills `store` as `who` until a write fails; answers how many writes succeeded and the failure's kind. */
const FILL = (store: string, who: string, n: number) => `
  local s = assert(require("store").get("${store}"))
  for i = 1, ${n} do
    local ok, err = s:set("${who}:" .. i, string.rep("x", 10))
    if not ok then return i - 1, err:kind(), err:retryable() end
  end
  return ${n}`;

for (const mode of MODES) {
  describe(`[hostile] fair shares, ${mode} isolation`, () => {
    let host: Host;
    beforeAll(async () => {
      host = createHost({ registry: SHARED_REGISTRY, policies: SHARED_POLICIES, sweepTimers: false, isolation: mode, workers: 2 });
      await host.ready();
    });
    afterAll(async () => {
      await host.close();
    });

    it("a tenant filling an eviction-none store is stopped at its quota (RateLimited) and never blocks another within its own", async () => {
      await host.store("shared:none").clear();
      const before = await host.run(`local s = require("store").get("shared:none") return s:set("globex:secret", "canary")`, { actor: tenant("globex") });
      expect(before.values).toEqual([true]);
      const attack = await host.run(FILL("shared:none", "acme", 1000), { actor: tenant("acme") });
      expect(attack.values).toEqual([10, "RateLimited", false]);
      const victim = await host.run(FILL("shared:none", "globex", 9), { actor: tenant("globex") });
      expect(victim.values).toEqual([9]);
      expect(await host.store("shared:none").get("globex:secret")).toBe("canary");
    });

    it("a tenant filling an LRU store evicts only its own keys, never another tenant's", async () => {
      await host.store("shared:lru").clear();
      await host.run(`local s = require("store").get("shared:lru") for i = 1, 10 do assert(s:set("globex:" .. i, i)) end`, { actor: tenant("globex") });
      const attack = await host.run(FILL("shared:lru", "acme", 500), { actor: tenant("acme") });
      expect(attack.values).toEqual([500]);
      const victim = await host.run(
        `local s = require("store").get("shared:lru") local n = 0 for i = 1, 10 do if s:get("globex:" .. i) == i then n = n + 1 end end return n`,
        { actor: tenant("globex") },
      );
      expect(victim.values).toEqual([10]);
      const metrics = (await host.metrics()).find((m) => m.id === "shared:lru")!;
      expect(metrics.shares).toEqual({ acme: { keys: 10, bytes: expect.any(Number) }, globex: { keys: 10, bytes: expect.any(Number) } });
      expect(metrics.evicted).toBe(490);
    });

    it("a tenant filling a shared SQLite store through the host evicts only its own keys, and info() shows its share", async () => {
      await host.run(`local s = require("store").get("shared:sql") for i = 1, 10 do assert(s:set("globex:" .. i, i)) end`, { actor: tenant("globex") });
      const attack = await host.run(FILL("shared:sql", "acme", 40), { actor: tenant("acme") });
      expect(attack.values).toEqual([40]);
      const victim = await host.run(
        `local s = require("store").get("shared:sql") local n = 0 for i = 1, 10 do if s:get("globex:" .. i) == i then n = n + 1 end end
         return n, s:info().quota.keys`,
        { actor: tenant("globex") },
      );
      expect(victim.values).toEqual([10, 10]);
      const metrics = (await host.metrics()).find((m) => m.id === "shared:sql")!;
      expect(metrics.shares).toMatchObject({ acme: { keys: 10 }, globex: { keys: 10 } });
    });

    it("a value past the share's max_bytes is refused as RateLimited", async () => {
      await host.store("shared:none").clear();
      const r = await host.run(`local s = require("store").get("shared:none") local ok, err = s:set("acme:big", string.rep("x", 5000)) return ok, err:kind()`, {
        actor: tenant("acme"),
      });
      expect(r.values).toEqual([null, "RateLimited"]);
    });

    it("info() reports the caller's own share and nobody else's", async () => {
      await host.store("shared:none").clear();
      await host.run(FILL("shared:none", "globex", 7), { actor: tenant("globex") });
      const r = await host.run(
        `local s = require("store").get("shared:none") assert(s:set("acme:1", "x")) local q = s:info().quota
         return q.by, q.share, q.keys, q.bytes, q.max_keys, q.max_bytes`,
        { actor: tenant("acme") },
      );
      expect(r.values).toEqual(["actor.meta.tenant", "acme", 1, 8, 10, 4096]);
    });

    it("a fourth tenant finds the store's room reserved by three: Unavailable, retryable, until one leaves", async () => {
      await host.store("shared:none").clear();
      for (const t of ["t1", "t2", "t3"]) await host.run(FILL("shared:none", t, 1), { actor: tenant(t) });
      const fourth = await host.run(FILL("shared:none", "t4", 1), { actor: tenant("t4") });
      expect(fourth.values).toEqual([0, "Unavailable", true]);
      await host.run(`require("store").get("shared:none"):delete("t1:1")`, { actor: tenant("t1") });
      expect((await host.run(FILL("shared:none", "t4", 1), { actor: tenant("t4") })).values).toEqual([1]);
    });

    it("one run holds at most maxHandles handles (RateLimited), so it cannot hold a whole pool", async () => {
      const hog = host.run(
        `local held = {}
         for i = 1, 20 do
           local h, err = require("store").get("shared:pool")
           if not h then return #held, err:kind(), err:retryable() end
           held[#held + 1] = h
         end`,
        { actor: tenant("acme") },
      );
      expect((await hog).values).toEqual([8, "RateLimited", false]);
      const limited = await host.run(
        `local n = 0 while require("store").get("shared:pool") do n = n + 1 end return n`,
        { actor: tenant("acme"), limits: { maxHandles: 3 } },
      );
      expect(limited.values).toEqual([3]);
    });

    it("while one run holds its maximum of handles, another run still gets the rest of the pool", async () => {
      await host.store("shared:lru").clear();
      const hog = host.run(
        `local held = {} for i = 1, 8 do held[i] = assert(require("store").get("shared:pool")) end
         local flags = assert(require("store").get("shared:lru"))
         assert(flags:set("acme:holding", true))
         while not flags:get("acme:done") do require("time").sleep(0.01) end
         return #held`,
        { actor: tenant("acme"), limits: { maxHandles: 9 } },
      );
      // The hog holds its 8 handles (and one of another store for its flags) until told it is done.
      while ((await host.store("shared:lru").get("acme:holding")) !== true) await new Promise((r) => setTimeout(r, 10));
      const other = await host.run(
        `local n = 0 while true do local h, err = require("store").get("shared:pool") if not h then return n, err:kind() end n = n + 1 end`,
        { actor: tenant("globex") },
      );
      expect(other.values).toEqual([4, "Unavailable"]);
      await host.store("shared:lru").set("acme:done", true);
      expect((await hog).values).toEqual([8]);
    });
  });
}

/**
 * [hostile] Nothing a script sends can stall the trusted side: policy regexes run on RE2 (linear
 * in the input whatever the pattern), and store ids, keys, `list` prefixes and cursors are
 * bounded before any policy work. The red team's worst patterns, each of which stalled the store
 * thread for minutes under the backtracking engine, must simply complete here; no assertion is
 * on time (a stall would show as the test's own timeout or as the other tenant's run timing out).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../../src/host.js";
import { compilePolicies } from "../../src/policy/index.js";
import type { PolicyDocument } from "../../src/policy/types.js";
import type { RegistryDocument } from "../../src/registry/types.js";
import { AUDIT_FIELD_MAX_BYTES, type AuditRecord } from "../../src/runtime/audit.js";
import { MAX_STORE_ID_BYTES } from "../../src/registry/validate.js";
import { systemClock } from "../../src/clock.js";
import { loadRegistry } from "../../src/registry/index.js";
import { OpFailure } from "../../src/lua/gateway.js";
import { LocalGateway } from "../../src/runtime/local-gateway.js";
import { closeStoreSlots, createStoreSlots } from "../../src/runtime/store-slots.js";
import { tenant } from "../helpers.js";

/** The red team's patterns: polynomial (three `.*`) and the long chain of `a*`. */
const WORST_PREFIX = "^[a-z]+:.*:.*[0-9]$";
const WORST_KEY = "^a*a*a*a*a*a*b$";
const MAX_KEY = 65_535;

const REGISTRY = {
  version: "1.0",
  namespace: "app",
  entries: [
    { name: "wide", kind: "store.memory", max_key_length: MAX_KEY },
    { name: "tenant", kind: "store.memory" },
  ],
} as RegistryDocument;

const POLICIES = {
  version: "1.0",
  policies: [
    { id: "open", effect: "allow", actors: ["tenant:*"], actions: ["store.get"], resources: ["app:*"] },
    {
      id: "worst-list",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.list"],
      resources: ["app:wide"],
      conditions: [{ field: "meta.prefix", operator: "matches", value: WORST_PREFIX }],
    },
    {
      id: "worst-key",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.get"],
      resources: ["app:wide"],
      conditions: [{ field: "meta.key", operator: "matches", value: WORST_KEY }],
    },
    {
      id: "flags",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.get", "store.key.set"],
      resources: ["app:wide"],
      conditions: [{ field: "meta.key", operator: "in", value: ["stop", "started"] }],
    },
    {
      id: "own-keys",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.*"],
      resources: ["app:tenant"],
      conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
    },
  ],
} as PolicyDocument;

describe("[hostile] worst-case regexes against the policy engine itself", () => {
  const engine = compilePolicies(POLICIES);
  const actor = { id: "tenant:t1", meta: { tenant: "t1" } };

  it(`${WORST_PREFIX} against a 150 KB and a 1 MiB prefix completes, and still matches what it should`, () => {
    for (const size of [150_000, 1 << 20]) {
      const prefix = `a:${":".repeat(size)}x`;
      expect(engine.decide(actor, "store.key.list", "app:wide", { prefix }).allowed).toBe(false);
      expect(engine.decide(actor, "store.key.list", "app:wide", { prefix: `a:${":".repeat(size)}7` }).allowed).toBe(true);
    }
  });

  it(`${WORST_KEY} against 150 bytes and 1 MiB of a completes, and still matches what it should`, () => {
    for (const size of [150, 1 << 20]) {
      expect(engine.decide(actor, "store.key.get", "app:wide", { key: "a".repeat(size) }).allowed).toBe(false);
      expect(engine.decide(actor, "store.key.get", "app:wide", { key: `${"a".repeat(size)}b` }).allowed).toBe(true);
    }
  });
});

describe("[hostile] the trusted side bounds what reaches it, whoever sends it", () => {
  it("the gateway (behind both the Lua module and the store thread) refuses over-long ids, keys, prefixes and cursors before policy", async () => {
    const slots = createStoreSlots(loadRegistry(REGISTRY), { clock: systemClock, sweepTimers: false });
    const decisions: AuditRecord[] = [];
    const gateway = new LocalGateway(slots, compilePolicies(POLICIES).bind(tenant("t1")), { runId: "r", audit: (r) => decisions.push(r) });
    const kind = (r: unknown) => (r instanceof OpFailure ? r.kind : "ok");
    expect(kind(gateway.acquire("x".repeat(MAX_STORE_ID_BYTES + 1)))).toBe("Invalid");
    const info = gateway.acquire("app:tenant");
    expect(kind(info)).toBe("ok");
    const handle = (info as { handle: number }).handle;
    expect(decisions).toHaveLength(1);
    const long = "t1:".padEnd(1025, "x");
    expect(kind(gateway.get(handle, long))).toBe("Invalid");
    expect(kind(gateway.set(handle, long, new Uint8Array([0xc0]), 0))).toBe("Invalid");
    expect(kind(gateway.checkMany(handle, "store.key.set", ["t1:a", long]))).toBe("Invalid");
    expect(kind(gateway.list(handle, { prefix: long, limit: 10 }))).toBe("Invalid");
    expect(kind(gateway.list(handle, { prefix: "t1:", after: long, limit: 10 }))).toBe("Invalid");
    // Only t1:a (checked before the long key of the same batch) reached the policy engine.
    expect(decisions.map((d) => d.key ?? d.action)).toEqual(["store.get", "t1:a"]);
    // At exactly max_key_length the key is fine.
    expect(kind(gateway.get(handle, long.slice(0, 1024)))).toBe("ok");
    await closeStoreSlots(slots);
  });
});

for (const isolation of ["inline", "worker"] as const) {
  describe(`[hostile] ${isolation}: script input is bounded before policy work`, () => {
    let host: Host;
    const audit: AuditRecord[] = [];
    beforeAll(async () => {
      host = createHost({
        registry: REGISTRY,
        policies: POLICIES,
        isolation,
        workers: 2,
        sweepTimers: false,
        audit: { onDecision: (r) => audit.push(r) },
        limits: { timeoutMs: 60_000, maxInstructions: 1e12, maxStoreOps: 1e9, maxStringBytes: 4 << 20 },
      });
      await host.ready;
    });
    afterAll(async () => {
      await host.close();
    });

    /** Audit records arrive from the store thread in batches: wait for the probe's one. */
    async function auditAfter(run: () => Promise<unknown>): Promise<AuditRecord[]> {
      const from = audit.length;
      await run();
      await host.run(`require("store").get("app:tenant")`, { actor: tenant("probe") });
      for (let i = 0; i < 200 && !audit.slice(from).some((r) => r.actor === "tenant:probe"); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return audit.slice(from).filter((r) => r.actor !== "tenant:probe");
    }

    it("the worst patterns on max_key_length inputs complete (denied), and matching ones are allowed", async () => {
      const r = await host.run(
        `local s = require("store").get("app:wide")
         local p, perr = s:list{ prefix = "a:" .. string.rep(":", ${MAX_KEY - 3}) .. "x" }
         local k, kerr = s:get(string.rep("a", ${MAX_KEY}))
         local ok, okerr = s:get(string.rep("a", ${MAX_KEY - 1}) .. "b")
         local page = assert(s:list{ prefix = "a:" .. string.rep(":", ${MAX_KEY - 3}) .. "7" })
         return perr:kind(), kerr:kind(), ok, okerr, #page.keys`,
        { actor: tenant("t1") },
      );
      expect(r.error).toBeUndefined();
      expect(r.values).toEqual(["PermissionDenied", "PermissionDenied", null, null, 0]);
    });

    it("a prefix, cursor or key over max_key_length and an over-long store id are Invalid, and no policy is consulted", async () => {
      let values: unknown[] = [];
      const records = await auditAfter(async () => {
        const r = await host.run(
          `local store = require("store")
           local _, iderr = store.get(string.rep("x", ${MAX_STORE_ID_BYTES + 1}))
           local s = store.get("app:wide")
           local _, perr = s:list{ prefix = string.rep(":", 150000) }
           local _, aerr = s:list{ prefix = "a", after = string.rep("a", ${MAX_KEY + 1}) }
           local _, kerr = s:get(string.rep("a", 150000))
           local t = store.get("app:tenant"):namespace("t1")
           local _, nerr = t:list{ prefix = string.rep("p", 1022) }
           return iderr:kind(), perr:kind(), aerr:kind(), kerr:kind(), nerr:kind()`,
          { actor: tenant("t1") },
        );
        values = r.values;
      });
      expect(values).toEqual(["Invalid", "Invalid", "Invalid", "Invalid", "Invalid"]);
      // Only the two store.get calls that named real stores reached the policy engine.
      expect(records.map((r) => [r.action, r.resource])).toEqual([
        ["store.get", "app:wide"],
        ["store.get", "app:tenant"],
      ]);
    });

    it("an audit line carries at most AUDIT_FIELD_MAX_BYTES of a prefix, with a marker saying how much was cut", async () => {
      const records = await auditAfter(() =>
        host.run(`require("store").get("app:wide"):list{ prefix = "a:" .. string.rep("\\xc3\\xa9", 30000) }`, { actor: tenant("t1") }),
      );
      const list = records.find((r) => r.action === "store.key.list")!;
      expect(list.prefix!.length).toBeLessThan(AUDIT_FIELD_MAX_BYTES + 32);
      // Cut on a character boundary: "a:" then whole é's, never half of one.
      const kept = (AUDIT_FIELD_MAX_BYTES - 2) >> 1;
      expect(list.prefix).toBe(`a:${"é".repeat(kept)}…[+${60_002 - 2 - kept * 2} bytes]`);
      expect(JSON.stringify(list).length).toBeLessThan(4 * AUDIT_FIELD_MAX_BYTES);
    });

    it.skipIf(isolation === "inline")(
      "the store thread keeps answering another tenant while one evaluates worst-case patterns on max-length input",
      async () => {
        const wide = host.store("app:wide");
        // The attacker loops on the worst calls until the test says stop, which it does only after
        // the other tenant's run has finished: the attacker is busy for the whole of that run.
        let attackerDone = false;
        const attacker = host
          .run(
            `local s = require("store").get("app:wide")
             local prefix = "a:" .. string.rep(":", ${MAX_KEY - 3}) .. "x"
             local key = string.rep("a", ${MAX_KEY})
             local n = 0
             assert(s:set("started", true))
             while not s:get("stop") do
               s:list{ prefix = prefix }
               s:get(key)
               n = n + 1
             end
             return n`,
            { actor: tenant("evil") },
          )
          .finally(() => {
            attackerDone = true;
          });
        while ((await wide.get("started")) !== true) await new Promise((resolve) => setTimeout(resolve, 5));

        const victim = await host.run(
          `local s = require("store").get("app:tenant")
           for i = 1, 50 do assert(s:set("t2:k" .. i, i)) end
           local sum = 0
           for i = 1, 50 do sum = sum + s:get("t2:k" .. i) end
           return sum`,
          { actor: tenant("t2") },
        );
        expect(victim.error).toBeUndefined();
        expect(victim.values).toEqual([1275]);
        expect(attackerDone).toBe(false);

        await wide.set("stop", true);
        const result = await attacker;
        expect(result.error).toBeUndefined();
        expect(result.values[0]).toBeGreaterThan(0);
      },
    );
  });
}

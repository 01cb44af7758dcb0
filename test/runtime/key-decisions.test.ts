/**
 * A handle keeps "allowed for every key" when no policy that could match its store and action
 * reads the key (the hot get and set then skip the per-key decision). These tests prove the
 * shortcut is exactly as strict as deciding every call: in both isolation modes, with a run that
 * repeats allowed calls before the ones that must be refused.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/runtime/audit.js";
import type { PolicyDocument } from "../../src/policy/types.js";
import { makeHost, tenant, type TestHost } from "../helpers.js";

const POLICIES: PolicyDocument = {
  version: "1.0",
  policies: [
    { id: "open", effect: "allow", actions: ["store.get"], resources: ["app:*"] },
    // Constant for bob: every key of app:cache, get and set alike.
    { id: "bob-cache", effect: "allow", actors: ["bob"], actions: ["store.key.*"], resources: ["app:cache"] },
    // Constant for the reader, but for get only.
    { id: "reader-get", effect: "allow", actors: ["reader"], actions: ["store.key.get"], resources: ["app:cache"] },
    // Key-dependent for tenants.
    {
      id: "tenant-own-keys",
      effect: "allow",
      actors: ["tenant:*"],
      actions: ["store.key.*"],
      resources: ["app:tenant"],
      conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
    },
    // Bob's any-key allow on app:lru sits beside a deny that reads the key.
    { id: "bob-lru", effect: "allow", actors: ["bob"], actions: ["store.key.*"], resources: ["app:lru"] },
    {
      id: "no-secrets",
      effect: "deny",
      actions: ["store.key.*"],
      resources: ["app:lru"],
      conditions: [{ field: "meta.key", operator: "starts_with", value: "secret:" }],
    },
  ],
} as PolicyDocument;

const BOB = { id: "bob", meta: {} };
const READER = { id: "reader", meta: {} };

/** Each call's outcome: "ok" or the error kind. */
const OUTCOMES = `
  local function outcome(v, err) if err then return err:kind() end return "ok" end
  local out = {}
  local function note(...) out[#out + 1] = outcome(...) end`;

for (const isolation of ["inline", "worker"] as const) {
  describe(`decisions for every key (${isolation})`, () => {
    let t: TestHost;
    afterEach(async () => {
      await t?.host.close();
    });
    const setup = (): TestHost => (t = makeHost({ policies: POLICIES, isolation, ...(isolation === "worker" ? { workers: 1 } : {}) }));

    it("a key-dependent policy is evaluated for every get and set of one handle, after allowed calls too", async () => {
      setup();
      const values = await t.eval(
        `${OUTCOMES}
         local s = assert(require("store").get("app:tenant"))
         for i = 1, 3 do
           note(s:set("t1:k" .. i, i)); note(s:get("t1:k" .. i))
           note(s:set("t2:k" .. i, i)); note(s:get("t2:k" .. i))
         end
         return table.concat(out, " ")`,
        { actor: tenant("t1") },
      );
      expect(values).toEqual([Array.from({ length: 3 }, () => "ok ok PermissionDenied PermissionDenied").join(" ")]);
    });

    it("an allow for every key of one action allows no other action on the same handle", async () => {
      setup();
      const values = await t.eval(
        `${OUTCOMES}
         local s = assert(require("store").get("app:cache"))
         for i = 1, 3 do note(s:get("k")) end
         note(s:set("k", 1)); note(s:add("k", 1)); note(s:delete("k"))
         return table.concat(out, " ")`,
        { actor: READER },
      );
      expect(values).toEqual(["ok ok ok PermissionDenied PermissionDenied PermissionDenied"]);
    });

    it("a deny that reads the key is checked per key beside an allow that does not", async () => {
      setup();
      const values = await t.eval(
        `${OUTCOMES}
         local s = assert(require("store").get("app:lru"))
         note(s:set("a", 1)); note(s:get("a")); note(s:set("secret:x", 1)); note(s:get("secret:x")); note(s:get("b"))
         return table.concat(out, " ")`,
        { actor: BOB },
      );
      expect(values).toEqual(["ok ok PermissionDenied PermissionDenied ok"]);
    });

    it("an actor allowed every key of one store is refused on a store its policies do not name", async () => {
      setup();
      const values = await t.eval(
        `${OUTCOMES}
         local c = assert(require("store").get("app:cache"))
         local other = assert(require("store").get("app:small"))
         note(c:set("k", 1)); note(other:set("k", 1)); note(c:get("k")); note(other:get("k"))
         return table.concat(out, " ")`,
        { actor: BOB },
      );
      expect(values).toEqual(["ok PermissionDenied ok PermissionDenied"]);
    });
  });
}

describe("decisions for every key, audited", () => {
  let t: TestHost;
  afterEach(async () => {
    await t?.host.close();
  });

  it("with auditing on, every get and set is decided and recorded, even when no policy reads the key", async () => {
    const records: AuditRecord[] = [];
    t = makeHost({ policies: POLICIES, audit: { onDecision: (r) => records.push(r) } });
    await t.eval(`local s = assert(require("store").get("app:cache")); for i = 1, 3 do s:set("k", i); s:get("k") end`, { actor: BOB });
    expect(records.filter((r) => r.action.startsWith("store.key.")).map((r) => [r.action, r.key, r.allowed])).toEqual(
      Array.from({ length: 3 }, () => [
        ["store.key.set", "k", true],
        ["store.key.get", "k", true],
      ]).flat(),
    );
  });
});

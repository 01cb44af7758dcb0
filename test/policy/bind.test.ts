import { describe, expect, test } from "vitest";
import { byteStringFromText } from "../../src/bytes.js";
import { parsePolicies } from "../../src/policy/index.js";
import type { Actor, RequestMeta } from "../../src/policy/index.js";

const POLICIES = `
version: "1.0"
policies:
  - id: tenant-keys
    effect: allow
    actors: ["tenant:*"]
    actions: ["store.key.*"]
    resources: ["app:cache", "app:sessions"]
    conditions:
      - { field: meta.key, operator: starts_with, value: "\${actor.meta.tenant}:" }
  - id: tenant-list
    effect: allow
    actors: ["tenant:*"]
    actions: [store.key.list]
    resources: ["app:*"]
    conditions:
      - { field: meta.prefix, operator: starts_with, value: "\${actor.meta.tenant}:" }
  - id: readers
    effect: allow
    actions: [store.get, store.info]
    resources: ["*"]
  - id: admins
    effect: allow
    actors: ["admin:*"]
    actions: ["*"]
    resources: ["*"]
  - id: no-secrets
    effect: deny
    actions: ["store.key.*"]
    resources: ["*"]
    conditions:
      - { field: meta.key, operator: contains, value: ":secret:" }
  - id: frozen-store
    effect: deny
    actions: [store.key.set, store.key.delete]
    resources: ["app:frozen"]
  - id: own-home
    effect: allow
    actions: ["store.key.*"]
    resources: ["home:*"]
    conditions:
      - { field: resource, operator: eq, value: "home:\${actor.id}" }
      - { field: actor.meta.level, operator: gte, value: 2 }
`;

const ACTORS: Actor[] = [
  { id: "tenant:t1", meta: { tenant: "t1", level: 2 } },
  { id: "tenant:t10", meta: { tenant: "t10", level: 1 } },
  { id: "tenant:anon", meta: {} },
  { id: "admin:root", meta: { level: 9 } },
  { id: byteStringFromText("tenant:é"), meta: { tenant: byteStringFromText("é") } },
];
const ACTIONS = ["store.get", "store.info", "store.key.get", "store.key.set", "store.key.has", "store.key.delete", "store.key.list", "store.keyring"];
const RESOURCES = ["app:cache", "app:sessions", "app:frozen", "home:tenant:t1", "home:admin:root", "*", "app:*"];
const METAS: (RequestMeta | undefined)[] = [
  undefined,
  {},
  { key: "t1:a" },
  { key: "t10:a" },
  { key: "t1:secret:x" },
  { key: "t1:\x00\xff" },
  { key: byteStringFromText("é:x") },
  { prefix: "t1:" },
  { prefix: "t10:" },
];

describe("bind", () => {
  const engine = parsePolicies([{ file: "policies.yaml", text: POLICIES }]);

  test("bind(actor).decide returns what decide and explain return, for every combination", () => {
    let allowed = 0;
    for (const actor of ACTORS) {
      const bound = engine.bind(actor);
      for (let pass = 0; pass < 2; pass++) {
        for (const action of ACTIONS) {
          for (const resource of RESOURCES) {
            for (const meta of METAS) {
              const expected = engine.decide(actor, action, resource, meta);
              const explained = engine.explain(actor, action, resource, meta);
              expect(bound.decide(action, resource, meta), `${actor.id} ${action} ${resource} ${JSON.stringify(meta)}`).toEqual(expected);
              expect({ allowed: explained.allowed, policyIds: explained.policyIds }).toEqual(expected);
              if (expected.allowed) allowed += 1;
            }
          }
        }
      }
    }
    // The combinations exercise both outcomes, not only the default deny.
    expect(allowed).toBeGreaterThan(100);
  });

  test("a binding keeps the actor as it was at bind time", () => {
    const actor = { id: "tenant:t1", meta: { tenant: "t1" } as Record<string, string> };
    const bound = engine.bind(actor);
    actor.meta.tenant = "t2";
    expect(bound.decide("store.key.get", "app:cache", { key: "t1:a" }).allowed).toBe(true);
    expect(bound.decide("store.key.set", "app:cache", { key: "t2:a" }).allowed).toBe(false);
    expect(bound.actor.meta.tenant).toBe("t1");
  });

  test("a tenant without tenant metadata is confined to nothing", () => {
    const bound = engine.bind({ id: "tenant:anon", meta: {} });
    expect(bound.decide("store.key.get", "app:cache", { key: ":a" })).toEqual({ allowed: false, policyIds: [] });
    expect(bound.decide("store.key.list", "app:cache", { prefix: ":" })).toEqual({ allowed: false, policyIds: [] });
  });

  test("a binding answers requests for resources it has never seen", () => {
    const bound = engine.bind(ACTORS[0]!);
    for (let i = 0; i < 3000; i++) {
      expect(bound.decide("store.key.get", `gen:${i}`, { key: "t1:a" }).allowed).toBe(false);
    }
    expect(bound.decide("store.key.get", "app:cache", { key: "t1:a" }).allowed).toBe(true);
  });
});

describe("explain", () => {
  const engine = parsePolicies([{ file: "policies.yaml", text: POLICIES }]);

  test("lists the policies indexed under the action, in file order, with verdicts", () => {
    const explanation = engine.explain(ACTORS[1]!, "store.key.get", "app:cache", { key: "t1:secret:x" });
    expect(explanation.allowed).toBe(false);
    expect(explanation.policyIds).toEqual(["no-secrets"]);
    expect(explanation.considered.map(({ id, matched }) => ({ id, matched }))).toEqual([
      { id: "tenant-keys", matched: false },
      { id: "admins", matched: false },
      { id: "no-secrets", matched: true },
      { id: "own-home", matched: false },
    ]);
  });

  test("says which part failed", () => {
    const reasons = Object.fromEntries(
      engine.explain(ACTORS[1]!, "store.key.get", "app:cache", { key: "t1:a" }).considered.map((t) => [t.id, t.reason]),
    );
    expect(reasons["tenant-keys"]).toContain("condition 1");
    expect(reasons["tenant-keys"]).toContain('"t1:a"');
    expect(reasons["admins"]).toContain('actor "tenant:t10"');
    expect(reasons["own-home"]).toContain('resource "app:cache"');
    expect(reasons["no-secrets"]).toContain("condition 1");
  });

  test("a template on missing actor metadata is explained as not holding for the actor", () => {
    const trace = engine.explain(ACTORS[2]!, "store.key.get", "app:cache", { key: ":a" }).considered.find((t) => t.id === "tenant-keys");
    expect(trace?.matched).toBe(false);
    expect(trace?.reason).toContain("for this actor");
  });

  test("an action no policy names considers nothing and is the default deny", () => {
    expect(engine.explain(ACTORS[0]!, "store.keyring", "app:cache")).toEqual({ allowed: false, policyIds: [], considered: [
      { id: "admins", effect: "allow", matched: false, reason: 'actor "tenant:t1" matches none of ["admin:*"]' },
    ] });
  });
});

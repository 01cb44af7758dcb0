import { describe, expect, test } from "vitest";
import { byteStringFromText } from "../../src/bytes.js";
import { compilePolicies, parsePolicies } from "../../src/policy/index.js";
import type { Actor, MetaValue, PolicyCondition, PolicyRule, RequestMeta } from "../../src/policy/index.js";

/** One row: the policies, the request, and the decision expected for it. */
interface DecisionCase {
  name: string;
  policies: PolicyRule[];
  actor?: Actor;
  action?: string;
  resource?: string;
  key?: string;
  prefix?: string;
  allowed: boolean;
  policyIds: string[];
}

const TENANT_1: Actor = { id: "tenant:t1", meta: { tenant: "t1", level: 3, admin: false, role: "editor" } };
const NO_TENANT: Actor = { id: "tenant:anon", meta: {} };

/** An allow policy for store.key.get on app:cache, with the given overrides. */
function allow(id: string, overrides: Partial<PolicyRule> = {}): PolicyRule {
  return { id, effect: "allow", actions: ["store.key.get"], resources: ["app:cache"], ...overrides };
}
function deny(id: string, overrides: Partial<PolicyRule> = {}): PolicyRule {
  return { ...allow(id, overrides), effect: "deny" };
}
/** An allow policy with one condition. */
function when(field: string, operator: string, value?: MetaValue | MetaValue[], extra: Partial<PolicyCondition> = {}): PolicyRule {
  const condition: PolicyCondition = { field, operator, ...extra };
  if (value !== undefined) condition.value = value;
  return allow("p", { conditions: [condition] });
}

/** An operator case: one condition, one key, allowed or default-denied. */
function op(
  name: string,
  condition: [field: string, operator: string, value?: MetaValue | MetaValue[]],
  request: Partial<DecisionCase>,
  allowed: boolean,
): DecisionCase {
  return { name, policies: [when(...condition)], ...request, allowed, policyIds: allowed ? ["p"] : [] };
}

const cases: DecisionCase[] = [
  // ---- patterns -------------------------------------------------------------------------
  { name: "store.key.* matches store.key.set", policies: [allow("p", { actions: ["store.key.*"] })], action: "store.key.set", allowed: true, policyIds: ["p"] },
  { name: "store.key.* does not match store.keyring", policies: [allow("p", { actions: ["store.key.*"] })], action: "store.keyring", allowed: false, policyIds: [] },
  { name: "store.key.* does not match store.key itself", policies: [allow("p", { actions: ["store.key.*"] })], action: "store.key", allowed: false, policyIds: [] },
  { name: "a * in the middle matches any run", policies: [allow("p", { actions: ["store.*.get"] })], action: "store.key.get", allowed: true, policyIds: ["p"] },
  { name: "a * in the middle still anchors both ends", policies: [allow("p", { actions: ["store.*.get"] })], action: "store.key.set", allowed: false, policyIds: [] },
  { name: "several * segments match left to right", policies: [allow("p", { resources: ["a*b*c"] })], resource: "axxbyyc", allowed: true, policyIds: ["p"] },
  { name: "several * segments need every segment in order", policies: [allow("p", { resources: ["a*b*c"] })], resource: "axxcyyb", allowed: false, policyIds: [] },
  { name: "segments may not overlap the prefix and suffix", policies: [allow("p", { resources: ["ab*b*ba"] })], resource: "abba", allowed: false, policyIds: [] },
  { name: "a suffix pattern matches by suffix", policies: [allow("p", { resources: ["*:cache"] })], resource: "other:cache", allowed: true, policyIds: ["p"] },
  { name: "a prefix-and-suffix pattern needs room for both", policies: [allow("p", { resources: ["app*app"] })], resource: "app", allowed: false, policyIds: [] },
  { name: "a lone * matches every resource", policies: [allow("p", { resources: ["*"] })], resource: "anything:at-all", allowed: true, policyIds: ["p"] },
  { name: "a requested resource * is not a pattern", policies: [allow("p", { resources: ["app:cache"] })], resource: "*", allowed: false, policyIds: [] },
  { name: "a requested resource app:* is not a pattern", policies: [allow("p", { resources: ["app:cache"] })], resource: "app:*", allowed: false, policyIds: [] },
  { name: "a requested resource app:* matches a pattern that matches that text", policies: [allow("p", { resources: ["app:*"] })], resource: "app:*", allowed: true, policyIds: ["p"] },
  { name: "a requested action store.key.* is not a pattern", policies: [allow("p", { actions: ["store.key.get"] })], action: "store.key.*", allowed: false, policyIds: [] },
  { name: "an actor pattern that does not match excludes the policy", policies: [allow("p", { actors: ["admin:*"] })], allowed: false, policyIds: [] },
  { name: "an actor pattern that matches includes the policy", policies: [allow("p", { actors: ["admin:*", "tenant:*"] })], allowed: true, policyIds: ["p"] },

  // ---- combining -------------------------------------------------------------------------
  { name: "no matching policy is the default deny", policies: [allow("p", { resources: ["app:other"] })], allowed: false, policyIds: [] },
  { name: "a matching deny wins over a matching allow", policies: [allow("a"), deny("d")], allowed: false, policyIds: ["d"] },
  { name: "a deny listed first still wins", policies: [deny("d"), allow("a")], allowed: false, policyIds: ["d"] },
  { name: "every matching deny is reported, in file order", policies: [deny("d1"), allow("a"), deny("d2", { actions: ["store.*"] })], allowed: false, policyIds: ["d1", "d2"] },
  { name: "every matching allow is reported, in file order", policies: [allow("a2", { resources: ["app:*"] }), allow("a1")], allowed: true, policyIds: ["a2", "a1"] },
  {
    name: "a deny whose condition fails does not block an allow",
    policies: [allow("a"), deny("d", { conditions: [{ field: "meta.key", operator: "starts_with", value: "secret:" }] })],
    key: "public:x",
    allowed: true,
    policyIds: ["a"],
  },

  // ---- operators -------------------------------------------------------------------------
  op("eq on a string holds", ["meta.key", "eq", "t1:a"], { key: "t1:a" }, true),
  op("eq on a string fails for another string", ["meta.key", "eq", "t1:a"], { key: "t1:ab" }, false),
  op("eq on a number holds", ["actor.meta.level", "eq", 3], {}, true),
  op("eq does not coerce a numeric string", ["actor.meta.level", "eq", "3"], {}, false),
  op("eq on a boolean holds", ["actor.meta.admin", "eq", false], {}, true),
  op("eq on a missing field fails", ["meta.key", "eq", "x"], {}, false),
  op("ne holds for a different value", ["actor.meta.role", "ne", "guest"], {}, true),
  op("ne fails for the same value", ["actor.meta.role", "ne", "editor"], {}, false),
  op("ne fails on a missing field", ["meta.key", "ne", "x"], {}, false),
  op("in holds for a listed value", ["meta.key", "in", ["a", "b"]], { key: "b" }, true),
  op("in fails for an unlisted value", ["meta.key", "in", ["a", "b"]], { key: "c" }, false),
  op("in compares numbers strictly", ["actor.meta.level", "in", ["3", 4]], {}, false),
  op("nin holds for an unlisted value", ["meta.key", "nin", ["a", "b"]], { key: "c" }, true),
  op("nin fails for a listed value", ["meta.key", "nin", ["a", "b"]], { key: "a" }, false),
  op("nin fails on a missing field", ["meta.key", "nin", ["a"]], {}, false),
  op("starts_with holds", ["meta.key", "starts_with", "t1:"], { key: "t1:x" }, true),
  op("starts_with confines t1: away from t10:x", ["meta.key", "starts_with", "t1:"], { key: "t10:x" }, false),
  op("ends_with holds", ["resource", "ends_with", ":cache"], {}, true),
  op("ends_with fails", ["meta.key", "ends_with", ".json"], { key: "a.jsonx" }, false),
  op("contains holds", ["meta.key", "contains", ":secret:"], { key: "t1:secret:x" }, true),
  op("contains fails", ["meta.key", "contains", ":secret:"], { key: "t1:secrets" }, false),
  op("starts_with on a number field fails", ["actor.meta.level", "starts_with", "3"], {}, false),
  op("matches holds", ["meta.key", "matches", "^t[0-9]+:[a-z]+$"], { key: "t12:abc" }, true),
  op("matches fails", ["meta.key", "matches", "^t[0-9]+:[a-z]+$"], { key: "t12:ABC" }, false),
  op("matches searches unless anchored", ["meta.key", "matches", "secret"], { key: "a:secret:b" }, true),
  op("matches on a missing field fails", ["meta.prefix", "matches", "."], { key: "k" }, false),
  op("exists holds when the key is given", ["meta.key", "exists"], { key: "" }, true),
  op("exists fails when the key is missing", ["meta.key", "exists"], {}, false),
  op("nexists holds when the key is missing", ["meta.key", "nexists"], {}, true),
  op("nexists fails when the key is given", ["meta.key", "nexists"], { key: "k" }, false),
  op("nexists holds for missing actor meta", ["actor.meta.quota", "nexists"], {}, true),
  op("lt holds", ["actor.meta.level", "lt", 4], {}, true),
  op("lt fails on equal", ["actor.meta.level", "lt", 3], {}, false),
  op("lte holds on equal", ["actor.meta.level", "lte", 3], {}, true),
  op("gt holds", ["actor.meta.level", "gt", 2.5], {}, true),
  op("gt fails", ["actor.meta.level", "gt", 3], {}, false),
  op("gte holds on equal", ["actor.meta.level", "gte", 3], {}, true),
  op("gte fails below", ["actor.meta.level", "gte", 3.5], {}, false),
  op("lt does not parse numeric strings", ["actor.meta.level", "lt", 10], { actor: { id: "tenant:x", meta: { level: "3" } } }, false),
  op("lt on missing actor meta fails", ["actor.meta.level", "lt", 10], { actor: NO_TENANT }, false),
  op("a field equal to the action", ["action", "eq", "store.key.get"], {}, true),
  op("actor.id is a field", ["actor.id", "starts_with", "tenant:"], {}, true),

  // ---- templates and value_from ------------------------------------------------------------
  op("a template resolves actor meta", ["meta.key", "starts_with", "${actor.meta.tenant}:"], { key: "t1:x" }, true),
  op("a template confines t1: away from t10:", ["meta.key", "starts_with", "${actor.meta.tenant}:"], { key: "t10:x" }, false),
  op("a template on missing actor meta never matches", ["meta.key", "starts_with", "${actor.meta.tenant}:"], { actor: NO_TENANT, key: ":x" }, false),
  op("a template on missing actor meta fails even ne", ["meta.key", "ne", "${actor.meta.tenant}"], { actor: NO_TENANT, key: "x" }, false),
  op("a template can use actor.id", ["meta.key", "starts_with", "home/${actor.id}/"], { key: "home/tenant:t1/a" }, true),
  op("a whole-value template keeps the actor value's type", ["actor.meta.level", "eq", "${actor.meta.level}"], {}, true),
  op("a number inside a template is written in decimal", ["meta.key", "eq", "L${actor.meta.level}"], { key: "L3" }, true),
  op("$${ writes a literal ${", ["meta.key", "eq", "$${actor.id}"], { key: "${actor.id}" }, true),
  op("templates work inside in lists", ["meta.key", "in", ["${actor.meta.tenant}:a", "shared"]], { key: "t1:a" }, true),
  op("a list with an unresolvable template fails", ["meta.key", "nin", ["${actor.meta.tenant}:a"]], { actor: NO_TENANT, key: "zzz" }, false),
  op("actor meta from Object.prototype does not exist", ["actor.meta.constructor", "exists"], {}, false),
  op("actor meta named __proto__ is ordinary", ["actor.meta.__proto__", "eq", "x"], { actor: { id: "a", meta: JSON.parse('{"__proto__":"x"}') as Actor["meta"] } }, true),
  {
    name: "value_from compares with another field",
    policies: [allow("p", { resources: ["*"], conditions: [{ field: "resource", operator: "eq", value_from: "actor.meta.home" }] })],
    actor: { id: "u", meta: { home: "app:home" } },
    resource: "app:home",
    allowed: true,
    policyIds: ["p"],
  },
  {
    name: "value_from fails for another value",
    policies: [allow("p", { resources: ["*"], conditions: [{ field: "resource", operator: "eq", value_from: "actor.meta.home" }] })],
    actor: { id: "u", meta: { home: "app:home" } },
    resource: "app:cache",
    allowed: false,
    policyIds: [],
  },
  {
    name: "value_from a missing actor field fails",
    policies: [allow("p", { conditions: [{ field: "meta.key", operator: "ne", value_from: "actor.meta.home" }] })],
    key: "x",
    allowed: false,
    policyIds: [],
  },
  {
    name: "value_from a request field is read per request",
    policies: [allow("p", { actions: ["store.key.list"], conditions: [{ field: "actor.meta.tenant", operator: "eq", value_from: "meta.prefix" }] })],
    action: "store.key.list",
    prefix: "t1",
    allowed: true,
    policyIds: ["p"],
  },
  {
    name: "value_from a missing request field fails",
    policies: [allow("p", { conditions: [{ field: "meta.key", operator: "ne", value_from: "meta.prefix" }] })],
    key: "x",
    allowed: false,
    policyIds: [],
  },

  // ---- byte strings ----------------------------------------------------------------------
  op("a key with invalid UTF-8 and NUL bytes matches its prefix", ["meta.key", "starts_with", "t1:"], { key: "t1:\x00\xff\xfe" }, true),
  op("a NUL byte is not skipped", ["meta.key", "starts_with", "t1:"], { key: "t1\x00:x" }, false),
  op("a NUL byte in a literal compares exactly", ["meta.key", "eq", "a\u0000b"], { key: "a\x00b" }, true),
  op("a non-ASCII literal matches its UTF-8 bytes", ["meta.key", "starts_with", "café:"], { key: byteStringFromText("café:x") }, true),
  op("a non-ASCII literal does not match its latin1 byte", ["meta.key", "starts_with", "café:"], { key: "caf\xe9:x" }, false),
  op("a non-ASCII in-list item matches its UTF-8 bytes", ["meta.key", "in", ["ключ"]], { key: byteStringFromText("ключ") }, true),
  op("a regex with a non-ASCII literal matches bytes", ["meta.key", "matches", "^(?:é)+$"], { key: byteStringFromText("éé") }, true),
  op("a regex . matches one byte", ["meta.key", "matches", "^a.b$"], { key: "a\xffb" }, true),
  op("a regex \\xff matches byte 0xff", ["meta.key", "matches", "^\\xff"], { key: "\xff\x00" }, true),
  op("two keys differing in one invalid byte stay different", ["meta.key", "eq", "\u00ff"], { key: "\xff" }, false),
  op("a template over a byte-string actor value stays byte-exact", ["meta.key", "starts_with", "${actor.meta.tenant}/"], { actor: { id: "t", meta: { tenant: "\xff\x00" } }, key: "\xff\x00/k" }, true),
  {
    name: "a non-ASCII resource pattern matches the UTF-8 resource",
    policies: [allow("p", { resources: ["données:*"] })],
    resource: byteStringFromText("données:cache"),
    allowed: true,
    policyIds: ["p"],
  },
  {
    name: "a non-ASCII actor pattern matches the UTF-8 actor id",
    policies: [allow("p", { actors: ["équipe:*"] })],
    actor: { id: byteStringFromText("équipe:1"), meta: {} },
    allowed: true,
    policyIds: ["p"],
  },
];

function requestOf(row: DecisionCase): { actor: Actor; action: string; resource: string; meta: RequestMeta } {
  const meta: RequestMeta = {};
  if (row.key !== undefined) meta.key = row.key;
  if (row.prefix !== undefined) meta.prefix = row.prefix;
  return { actor: row.actor ?? TENANT_1, action: row.action ?? "store.key.get", resource: row.resource ?? "app:cache", meta };
}

describe("decisions", () => {
  test.each(cases)("$name", (row) => {
    const engine = compilePolicies({ version: "1.0", policies: row.policies });
    const { actor, action, resource, meta } = requestOf(row);
    const expected = { allowed: row.allowed, policyIds: row.policyIds };
    expect(engine.decide(actor, action, resource, meta)).toEqual(expected);
    expect(engine.bind(actor).decide(action, resource, meta)).toEqual(expected);
    const explained = engine.explain(actor, action, resource, meta);
    expect({ allowed: explained.allowed, policyIds: explained.policyIds }).toEqual(expected);
  });
});

describe("decision objects", () => {
  const engine = compilePolicies({
    version: "1.0",
    policies: [allow("a1"), allow("a2", { actions: ["store.key.*"] }), deny("d", { actions: ["store.key.set"] })],
  });

  test("a single matching policy returns the same frozen Decision every time", () => {
    const bound = engine.bind(TENANT_1);
    const first = bound.decide("store.key.set", "app:cache");
    expect(first).toEqual({ allowed: false, policyIds: ["d"] });
    expect(bound.decide("store.key.set", "app:cache")).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.policyIds)).toBe(true);
  });

  test("the default deny is one shared frozen Decision", () => {
    const bound = engine.bind(TENANT_1);
    const a = bound.decide("store.info", "app:cache");
    const b = bound.decide("store.key.get", "app:other");
    expect(a).toBe(b);
    expect(a).toEqual({ allowed: false, policyIds: [] });
    expect(Object.isFrozen(a)).toBe(true);
  });

  test("several matching policies are all listed", () => {
    expect(engine.bind(TENANT_1).decide("store.key.get", "app:cache")).toEqual({ allowed: true, policyIds: ["a1", "a2"] });
  });
});

describe("policies from YAML text", () => {
  test("a non-ASCII literal written in a YAML file is compared as UTF-8 bytes", () => {
    const engine = parsePolicies([
      {
        file: "utf8.yaml",
        text: [
          'version: "1.0"',
          "policies:",
          "  - id: cafe",
          "    effect: allow",
          "    actions: [store.key.get]",
          "    resources: [app:cache]",
          "    conditions:",
          "      - { field: meta.key, operator: starts_with, value: 'café/' }",
        ].join("\n"),
      },
    ]);
    expect(engine.decide(TENANT_1, "store.key.get", "app:cache", { key: byteStringFromText("café/x") }).allowed).toBe(true);
    expect(engine.decide(TENANT_1, "store.key.get", "app:cache", { key: "caf\xe9/x" }).allowed).toBe(false);
  });
});

/** `s:get_stale` from Lua: its answers, its policy action and its argument check, inline and from workers. */
import { afterEach, describe, expect, it } from "vitest";
import type { HostOptions } from "../../src/host.js";
import type { PolicyDocument } from "../../src/policy/types.js";
import type { RegistryDocument } from "../../src/registry/types.js";
import { ADMIN, makeHost, tenant, TEST_POLICIES, TEST_REGISTRY, type TestHost } from "../helpers.js";

const REGISTRY: RegistryDocument = {
  ...TEST_REGISTRY,
  entries: [
    ...TEST_REGISTRY.entries,
    { name: "stale", kind: "store.memory", stale_for: "10s" },
    { name: "stale-lru", kind: "store.memory", stale_for: "10s", eviction: "lru", max_size: 10 },
  ],
} as RegistryDocument;

/** The test policies, plus an actor that may only `has` on app:stale and one that may only get. */
const POLICIES: PolicyDocument = {
  ...TEST_POLICIES,
  policies: [
    ...TEST_POLICIES.policies,
    { id: "peek-has", effect: "allow", actors: ["peeker"], actions: ["store.get", "store.key.has"], resources: ["app:stale"] },
    { id: "read-get", effect: "allow", actors: ["getter"], actions: ["store.get", "store.key.get"], resources: ["app:stale"] },
  ],
} as PolicyDocument;

let t: TestHost | undefined;
afterEach(async () => {
  await t?.host.close();
  t = undefined;
});
const setup = (overrides: Partial<HostOptions> = {}): TestHost => (t = makeHost({ registry: REGISTRY, policies: POLICIES, ...overrides }));

function on(store: string, body: string, actor: { id: string; meta: Record<string, string> } = ADMIN): Promise<unknown[]> {
  return t!.eval(`local s = assert(require("store").get("${store}")); ${body}`, { actor });
}

describe.each(["inline", "worker"] as const)("s:get_stale (%s)", (isolation) => {
  const open = () => setup(isolation === "worker" ? { isolation: "worker", workers: 1 } : {});

  it("answers value, false while the key lives; value, true within stale_for of its expiry; nil after", async () => {
    const h = open();
    expect(await on("app:stale", `s:set("k", { n = 1 }, 2); local v, stale = s:get_stale("k"); return v.n, stale`)).toEqual([1, false]);
    h.clock.advance(2000);
    expect(await on("app:stale", `local v, stale = s:get_stale("k"); return s:get("k"), s:has("k"), v.n, stale`)).toEqual([null, false, 1, true]);
    h.clock.advance(9999);
    expect(await on("app:stale", `local v, stale = s:get_stale("k"); return v.n, stale`)).toEqual([1, true]);
    h.clock.advance(1);
    expect(await on("app:stale", `return s:get_stale("k")`)).toEqual([null]);
  });

  it("a set over the stale copy answers the new value, live", async () => {
    const h = open();
    await on("app:stale", `s:set("k", "old", 1)`);
    h.clock.advance(1000);
    expect(await on("app:stale", `s:set("k", "new"); return s:get_stale("k")`)).toEqual(["new", false]);
  });

  it("without stale_for it is get: value, false while live, nil once expired", async () => {
    const h = open();
    expect(await on("app:cache", `s:set("k", "v", 1); return s:get_stale("k")`)).toEqual(["v", false]);
    h.clock.advance(1000);
    expect(await on("app:cache", `return s:get_stale("k")`)).toEqual([null]);
  });
});

describe("s:get_stale", () => {
  it("is checked as store.key.get: denied to an actor that may only `has`, allowed to one that may get", async () => {
    setup();
    await on("app:stale", `s:set("k", "v")`);
    expect(await on("app:stale", `local v, err = s:get_stale("k"); return v, err:kind(), s:has("k")`, { id: "peeker", meta: {} })).toEqual([
      null,
      "PermissionDenied",
      true,
    ]);
    expect(await on("app:stale", `return s:get_stale("k")`, { id: "getter", meta: {} })).toEqual(["v", false]);
  });

  it("is denied on another tenant's key, stale or not, before the store is asked", async () => {
    const h = setup();
    await on("app:tenant", `s:set("t2:k", "v", 1)`, tenant("t2"));
    h.clock.advance(1000);
    expect(await on("app:tenant", `local v, err = s:get_stale("t2:k"); return v, err:kind()`, tenant("t1"))).toEqual([null, "PermissionDenied"]);
  });

  it("refuses a second argument as Invalid, too many arguments", async () => {
    setup();
    expect(await on("app:stale", `local v, err = s:get_stale("k", true); return v, err:kind(), err:message()`)).toEqual([
      null,
      "Invalid",
      "too many arguments: s:get_stale(key) takes 1, got 2",
    ]);
  });

  it("refuses a key that is not a string as Invalid", async () => {
    setup();
    expect(await on("app:stale", `local v, err = s:get_stale(5); return v, err:kind()`)).toEqual([null, "Invalid"]);
  });

  it("a stale read does not make the key recently used: under lru the stale copy is evicted first", async () => {
    const h = setup();
    await on("app:stale-lru", `s:set("old", 1, 1); for i = 1, 9 do s:set("k" .. i, i) end`);
    h.clock.advance(1000);
    // A live read of old would move it last; a stale one leaves it the least recently used.
    expect(await on("app:stale-lru", `local v, stale = s:get_stale("old"); s:set("k10", 10); return v, stale, s:get_stale("old"), s:get("k1")`)).toEqual([
      1,
      true,
      null,
      1,
    ]);
  });
});

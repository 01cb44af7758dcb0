/** The full store API (issue 5) through real scripts: atomic ops, TTL control, listing, versions, metadata, namespaces, metrics, audit. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/runtime/audit.js";
import { ADMIN, makeHost, READER, tenant, type TestHost } from "../helpers.js";

let t: TestHost;
afterEach(async () => {
  await t?.host.close();
});
const setup = () => (t = makeHost());
async function withCache(body: string, actor = ADMIN): Promise<unknown[]> {
  return t.eval(`local store = require("store"); local s = assert(store.get("app:cache")); ${body}`, { actor });
}

describe("add and replace", () => {
  it("add writes only when the key is absent", async () => {
    setup();
    expect(await withCache(`return s:add("k", 1), s:add("k", 2), s:get("k")`)).toEqual([true, false, 1]);
  });

  it("add succeeds again once the key expired (a lock with a TTL)", async () => {
    setup();
    expect(await withCache(`return s:add("lock", "a", 5), s:add("lock", "b", 5)`)).toEqual([true, false]);
    t.clock.advance(5000);
    expect(await withCache(`return s:add("lock", "b", 5), s:get("lock")`)).toEqual([true, "b"]);
  });

  it("replace writes only when the key exists", async () => {
    setup();
    expect(await withCache(`local a = s:replace("k", 1); s:set("k", 0); return a, s:replace("k", 2), s:get("k")`)).toEqual([
      false,
      true,
      2,
    ]);
  });

  it("add and replace validate values and TTLs like set", async () => {
    setup();
    expect(await withCache(`local _, e1 = s:add("k", function() end); local _, e2 = s:replace("k", 1, -1); return e1:kind(), e2:kind()`)).toEqual([
      "Invalid",
      "Invalid",
    ]);
  });
});

describe("incr", () => {
  it("counts from 0 by 1 by default and returns the new number", async () => {
    setup();
    expect(await withCache(`return s:incr("n"), s:incr("n"), s:incr("n", 5), s:incr("n", -10), math.type(s:get("n"))`)).toEqual([
      1, 2, 7, -3, "integer",
    ]);
  });

  it("a float increment gives a float", async () => {
    setup();
    expect(await withCache(`local v = s:incr("n", 0.5); return v, math.type(v), math.type(s:incr("m", 1.0))`)).toEqual([
      0.5,
      "float",
      "float",
    ]);
  });

  it("a missing key starts from init", async () => {
    setup();
    expect(await withCache(`return s:incr("n", 1, 100)`)).toEqual([101]);
  });

  it("init_ttl applies only when the key is created; an existing key keeps its TTL", async () => {
    setup();
    await withCache(`s:incr("n", 1, 0, 10)`);
    t.clock.advance(6000);
    expect(await withCache(`return s:incr("n", 1, 0, 100), s:ttl("n")`)).toEqual([2, 4]);
    t.clock.advance(4000);
    expect(await withCache(`return s:get("n"), s:incr("n", 1, 0, 10)`)).toEqual([null, 1]);
  });

  it("incr keeps a TTL set by set", async () => {
    setup();
    await withCache(`s:set("n", 5, 3); s:incr("n")`);
    t.clock.advance(3000);
    expect(await withCache(`return s:get("n")`)).toEqual([null]);
  });

  it("results that do not fit 32-bit integers come back as floats, never wrapped", async () => {
    setup();
    const [v, type] = await withCache(`s:set("n", 2147483647); local v = s:incr("n"); return v, math.type(v)`);
    expect([v, type]).toEqual([2147483648, "float"]);
  });

  it("a non-number value or argument is Invalid", async () => {
    setup();
    expect(await withCache(`s:set("s", "text"); local _, e1 = s:incr("s"); local _, e2 = s:incr("n", "1"); local _, e3 = s:incr("n", 1, 0, -1)
      return e1:kind(), e2:kind(), e3:kind(), s:get("s")`)).toEqual(["Invalid", "Invalid", "Invalid", "text"]);
  });

  it("many concurrent runs incrementing one counter end with the exact total", async () => {
    setup();
    await Promise.all(Array.from({ length: 50 }, () => withCache(`for i = 1, 20 do assert(s:incr("hits")) end`)));
    expect(await withCache(`return s:get("hits")`)).toEqual([1000]);
  });
});

describe("ttl and expire", () => {
  it("ttl returns seconds left, 0 for no expiry and nil when missing", async () => {
    setup();
    await withCache(`s:set("a", 1, 10); s:set("b", 1)`);
    t.clock.advance(2500);
    expect(await withCache(`return s:ttl("a"), s:ttl("b"), s:ttl("c")`)).toEqual([7.5, 0, null]);
  });

  it("expire sets a TTL, returns false on a missing key, and 0 persists", async () => {
    setup();
    expect(await withCache(`s:set("a", 1); s:set("b", 1, 1); return s:expire("a", 2), s:expire("missing", 2), s:expire("b", 0)`)).toEqual([
      true,
      false,
      true,
    ]);
    t.clock.advance(2000);
    expect(await withCache(`return s:get("a"), s:get("b"), s:ttl("b")`)).toEqual([null, 1, 0]);
  });

  it("expire needs a valid TTL", async () => {
    setup();
    expect(await withCache(`s:set("a", 1); local _, e1 = s:expire("a"); local _, e2 = s:expire("a", -1); return e1:kind(), e2:kind()`)).toEqual([
      "Invalid",
      "Invalid",
    ]);
  });
});

describe("get_many and set_many", () => {
  it("get_many returns present keys only", async () => {
    setup();
    const [r] = await withCache(`s:set("a", 1); s:set("c", { 3 }); return s:get_many({ "a", "b", "c" })`);
    expect(r).toEqual({ a: 1, c: [3] });
  });

  it("set_many writes every entry with an optional TTL", async () => {
    setup();
    expect(await withCache(`return s:set_many({ a = 1, b = "two" }, 1), s:get("a"), s:get("b")`)).toEqual([true, 1, "two"]);
    t.clock.advance(1000);
    expect(await withCache(`return s:has("a"), s:has("b")`)).toEqual([false, false]);
  });

  it("set_many is all-or-nothing: one bad value writes nothing", async () => {
    setup();
    const [kind, msg, a] = await withCache(`local _, err = s:set_many({ a = 1, b = function() end }); return err:kind(), err:message(), s:has("a")`);
    expect([kind, a]).toEqual(["Invalid", false]);
    expect(msg).toMatch(/functions cannot be stored/);
  });

  it("set_many into a full store writes nothing and is Unavailable", async () => {
    setup(); // max 100
    const values = await withCache(`
      for i = 1, 99 do s:set("k" .. i, i) end
      local _, err = s:set_many({ x = 1, y = 2 })
      return err:kind(), s:has("x"), s:has("y")`);
    expect(values).toEqual(["Unavailable", false, false]);
  });

  it("one denied key fails the whole multi-key call before anything is written", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant")
       s:set("t1:a", 1)
       local r1, e1 = s:get_many({ "t1:a", "t2:a" })
       local r2, e2 = s:set_many({ ["t1:b"] = 1, ["t2:b"] = 2 })
       return r1, e1:kind(), r2, e2:kind(), s:has("t1:b")`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual([null, "PermissionDenied", null, "PermissionDenied", false]);
  });

  it("bad keys in a batch are Invalid", async () => {
    setup();
    expect(await withCache(`local _, e1 = s:get_many({ "a", 5 }); local _, e2 = s:get_many("a"); return e1:kind(), e1:message(), e2:kind()`)).toEqual([
      "Invalid",
      "keys[2] must be a string, got number",
      "Invalid",
    ]);
  });
});

describe("list", () => {
  it("lists keys in byte order with prefix, limit and cursor", async () => {
    setup();
    const [page1, page2] = await withCache(`
      for _, k in ipairs({ "u:b", "u:a", "u:\\xff", "u:\\0", "v:a", "u:c" }) do s:set(k, 1) end
      local p1 = s:list({ prefix = "u:", limit = 3 })
      local p2 = s:list({ prefix = "u:", after = p1.cursor, limit = 3 })
      return p1, p2`);
    expect(page1).toEqual({ keys: ["u:\0", "u:a", "u:b"], cursor: "u:b", has_more: true });
    expect(page2).toMatchObject({ has_more: false });
    expect((page2 as { keys: unknown[] }).keys.length).toBe(2);
  });

  it("defaults to 100 keys and refuses limits outside 1..1000", async () => {
    setup();
    const values = await withCache(`
      for i = 1, 100 do s:set(string.format("k%03d", i), i) end
      local p = s:list()
      local _, e1 = s:list({ limit = 0 }); local _, e2 = s:list({ limit = 1001 }); local _, e3 = s:list({ limit = 1.5 })
      return #p.keys, p.has_more, e1:kind(), e2:kind(), e3:kind()`);
    expect(values).toEqual([100, false, "Invalid", "Invalid", "Invalid"]);
  });

  it("a walk with inserts and deletes returns a key present for the whole walk exactly once", async () => {
    setup();
    const [seen] = await withCache(`
      for i = 1, 60 do s:set(string.format("k%02d", i), i) end
      local seen, after = {}, nil
      local round = 0
      repeat
        local p = s:list({ after = after, limit = 7 })
        for _, k in ipairs(p.keys) do seen[#seen + 1] = k end
        round = round + 1
        s:delete(string.format("k%02d", 60 - round))          -- delete ahead of the cursor
        s:set(string.format("k%02d.5", round), 0)             -- insert behind and ahead
        after = p.cursor
      until not p.has_more
      return seen`);
    const keys = seen as string[];
    const stable = Array.from({ length: 40 }, (_, i) => `k${String(i + 1).padStart(2, "0")}`);
    for (const k of stable) expect(keys.filter((x) => x === k)).toHaveLength(1);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("expired keys are not listed", async () => {
    setup();
    await withCache(`s:set("a", 1, 1); s:set("b", 1)`);
    t.clock.advance(1000);
    expect(await withCache(`return s:list().keys`)).toEqual([["b"]]);
  });

  it("a policy can confine listing to the tenant's prefix; an empty prefix is checked as such", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant")
       s:set("t1:a", 1)
       local ok = s:list({ prefix = "t1:" })
       local _, e1 = s:list({ prefix = "t10:" })
       local _, e2 = s:list()
       return ok.keys[1], e1:kind(), e2:kind()`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual(["t1:a", "PermissionDenied", "PermissionDenied"]);
  });
});

describe("entry, put and versions", () => {
  it("entry returns key, value, version, expires_at and metadata; nil when missing", async () => {
    setup();
    t.clock.set(1_000_000);
    const [e, missing] = await withCache(`
      s:put("k", { n = 1 }, { ttl = 10, metadata = { owner = "ada" } })
      return s:entry("k"), s:entry("nope")`);
    expect(e).toMatchObject({ key: "k", value: { n: 1 }, expires_at: 1010, metadata: { owner: "ada" } });
    expect(typeof (e as { version: unknown }).version).toBe("string");
    expect(missing).toBeNull();
  });

  it("the version changes on every write", async () => {
    setup();
    const [v1, v2, v3, v4] = await withCache(`
      s:set("k", 1); local v1 = s:entry("k").version
      s:set("k", 1); local v2 = s:entry("k").version
      s:incr("k"); local v3 = s:entry("k").version
      s:delete("k"); s:set("k", 1); local v4 = s:entry("k").version
      return v1, v2, v3, v4`);
    expect(new Set([v1, v2, v3, v4]).size).toBe(4);
  });

  it("put with if_version is compare-and-set: a stale version is a retryable Conflict", async () => {
    setup();
    const values = await withCache(`
      s:set("k", 1)
      local v = s:entry("k").version
      local ok = s:put("k", 2, { if_version = v })
      local _, err = s:put("k", 3, { if_version = v })
      return ok, err:kind(), err:retryable(), s:get("k")`);
    expect(values).toEqual([true, "Conflict", true, 2]);
  });

  it("put only_if_absent fails with AlreadyExists; if_version on a missing key is NotFound", async () => {
    setup();
    const values = await withCache(`
      local a = s:put("k", 1, { only_if_absent = true })
      local _, e1 = s:put("k", 2, { only_if_absent = true })
      local _, e2 = s:put("missing", 1, { if_version = "x" })
      return a, e1:kind(), e2:kind(), s:get("k")`);
    expect(values).toEqual([true, "AlreadyExists", "NotFound", 1]);
  });

  it("only_if_absent with if_version is Invalid; metadata over 1 KiB is Invalid", async () => {
    setup();
    const values = await withCache(`
      local _, e1 = s:put("k", 1, { only_if_absent = true, if_version = "x" })
      local _, e2 = s:put("k", 1, { metadata = { blob = string.rep("x", 2000) } })
      local _, e3 = s:put("k", 1, { metadata = "text" })
      return e1:kind(), e2:kind(), e3:kind(), s:has("k")`);
    expect(values).toEqual(["Invalid", "Invalid", "Invalid", false]);
  });

  it("list returns metadata of keys that have it", async () => {
    setup();
    const [page] = await withCache(`s:put("a", 1, { metadata = { tag = "x" } }); s:set("b", 2); return s:list()`);
    expect(page).toMatchObject({ keys: ["a", "b"], metadata: { a: { tag: "x" } } });
  });
});

describe("namespaces", () => {
  it("scopes keys to prefix..':', nests, and returns relative keys", async () => {
    setup();
    const values = await withCache(`
      local t1 = s:namespace("t1")
      local users = t1:namespace("users")
      users:set("ada", 1)
      local page = t1:list()
      return s:get("t1:users:ada"), users:get("ada"), page.keys[1], users:entry("ada").key, (next(users:get_many({ "ada" })))`);
    expect(values).toEqual([1, 1, "users:ada", "ada", "ada"]);
  });

  it("isolates tenants: t1 never sees t10's keys", async () => {
    setup();
    const values = await withCache(`
      local t1, t10 = s:namespace("t1"), s:namespace("t10")
      t10:set("x", "t10's")
      return t1:get("x"), t1:get("0:x"), #t1:list().keys, t10:get("x")`);
    expect(values).toEqual([null, null, 0, "t10's"]);
  });

  it("policies see the full key", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant")
       local mine, other = s:namespace("t1"), s:namespace("t2")
       local ok = mine:set("k", 1)
       local _, err = other:set("k", 1)
       return ok, err:kind()`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual([true, "PermissionDenied"]);
  });

  it("a namespace view shares its handle: releasing either releases both", async () => {
    setup();
    expect(await withCache(`local ns = s:namespace("a"); ns:release(); local _, err = s:get("k"); return err:message()`)).toEqual([
      "store released",
    ]);
  });
});

describe("info", () => {
  it("returns id, kind, size, max_size and eviction", async () => {
    setup();
    const [i] = await withCache(`s:set("a", 1); return s:info()`);
    expect(i).toEqual({ id: "app:cache", kind: "store.memory", size: 1, bytes: 2, max_size: 100, eviction: "none" });
  });

  it("is checked as store.info", async () => {
    setup();
    expect(await withCache(`local _, err = s:info(); return err:kind()`, READER)).toEqual(["PermissionDenied"]);
  });
});

describe("policy denials for each action", () => {
  it.each([
    ["add", `s:add("t2:k", 1)`],
    ["replace", `s:replace("t2:k", 1)`],
    ["incr", `s:incr("t2:k")`],
    ["ttl", `s:ttl("t2:k")`],
    ["expire", `s:expire("t2:k", 1)`],
    ["entry", `s:entry("t2:k")`],
    ["put", `s:put("t2:k", 1)`],
    ["get_many", `s:get_many({ "t2:k" })`],
    ["set_many", `s:set_many({ ["t2:k"] = 1 })`],
    ["list", `s:list({ prefix = "t2:" })`],
    ["info", `s:info()`],
  ])("%s on another tenant's keys is PermissionDenied", async (_m, call) => {
    setup();
    const values = await t.eval(`local s = require("store").get("app:tenant"); local v, err = ${call}; return v, err:kind()`, {
      actor: tenant("t1"),
    });
    expect(values).toEqual([null, "PermissionDenied"]);
  });
});

describe("observability", () => {
  it("host.metrics() counts hits, misses, sets, deletes, expired, evicted, denied, errors by kind, size and bytes", async () => {
    setup();
    await withCache(`s:set("a", 1, 1); s:get("a"); s:get("b"); s:delete("a"); s:set("c", 1, 1); s:get(5); s:set("secret:x", 1)`);
    t.clock.advance(1000);
    await withCache(`s:get("c")`);
    await t.eval(`local s = require("store").get("app:lru"); for i = 1, 5 do s:set("k" .. i, i) end`);
    const metrics = await t.host.metrics();
    const cache = metrics.find((m) => m.id === "app:cache")!;
    expect(cache).toMatchObject({ hits: 1, misses: 2, sets: 2, deletes: 1, expired: 1, denied: 1, size: 0 });
    expect(cache.errors).toEqual({ Invalid: 1, PermissionDenied: 1 });
    expect(metrics.find((m) => m.id === "app:lru")).toMatchObject({ evicted: 2, size: 3 });
    expect(metrics.find((m) => m.id === "app:lru")!.bytes).toBeGreaterThan(0);
  });

  it("the audit trail records every decision as JSON lines with the run id", async () => {
    const records: AuditRecord[] = [];
    const dir = mkdtempSync(join(tmpdir(), "luastore-audit-"));
    const file = join(dir, "audit.jsonl");
    t = makeHost({ audit: { file, onDecision: (r) => records.push(r) } });
    const r = await t.run(`local s = require("store").get("app:cache"); s:set("k", 1); s:get("secret:x")`);
    await t.host.close();
    expect(records.map((x) => [x.action, x.resource, x.key, x.allowed])).toEqual([
      ["store.get", "app:cache", undefined, true],
      ["store.key.set", "app:cache", "k", true],
      ["store.key.get", "app:cache", "secret:x", false],
    ]);
    expect(records[2]).toMatchObject({ actor: "admin", runId: r.runId, policyIds: ["no-secrets"] });
    const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as AuditRecord);
    expect(lines).toEqual(records);
  });
});

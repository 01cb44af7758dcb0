/** Issue 13's operator-facing methods through real scripts: argument strictness, flush, absolute expiry, bulk, bytes. */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { encodeValue } from "../../src/codec/msgpack.js";
import { METHOD_PARAMS } from "../../src/lua/modules/store.js";
import { ADMIN, makeHost, type TestHost } from "../helpers.js";

let t: TestHost;
afterEach(async () => {
  await t?.host.close();
});
const setup = () => (t = makeHost());
async function withCache(body: string, actor = ADMIN): Promise<unknown[]> {
  return t.eval(`local store = require("store"); local s = assert(store.get("app:cache")); ${body}`, { actor });
}

describe("argument strictness", () => {
  it("every handle method has its parameter list, and only those methods", () => {
    const source = readFileSync("src/lua/modules/store.ts", "utf8");
    const block = /const methods: Record<string, JSFunction> = \{([^}]*)\}/.exec(source)![1]!;
    const methods = [...block.matchAll(/^\s+([a-z_]+)(?::|,)/gm)].map((m) => m[1]!).sort();
    expect(Object.keys(METHOD_PARAMS).sort()).toEqual(methods);
  });

  it("a call with one argument too many answers Invalid and writes nothing", async () => {
    setup();
    const values = await withCache(`
      local ok, err = s:set("k", "v", 0, 199)
      return ok, err:kind(), err:message(), s:get("k")`);
    expect(values).toEqual([null, "Invalid", "too many arguments: s:set(key, value, ttl) takes 3, got 4", null]);
  });

  it.each(Object.entries(METHOD_PARAMS))("s:%s refuses one argument more than it takes", async (name, params) => {
    setup();
    const args = [...params.map(() => "nil"), "1"].join(", ");
    const values = await withCache(`local v, err = s:${name}(${args}); return v, err:kind()`);
    expect(values).toEqual([null, "Invalid"]);
  });

  it("a trailing nil counts as an argument", async () => {
    setup();
    expect(await withCache(`local v, err = s:get("k", nil); return v, err:kind()`)).toEqual([null, "Invalid"]);
  });

  it("exactly as many arguments as a method takes are accepted", async () => {
    setup();
    expect(await withCache(`return s:set("k", 1, 10), s:incr("k", 1, 0, 5), s:get("k")`)).toEqual([true, 2, 2]);
  });

  it("a released handle given too many arguments still says it is released", async () => {
    setup();
    expect(await withCache(`s:release(); local v, err = s:get("k", 1); return err:message()`)).toEqual(["store released"]);
  });

  it("numeric strings are not numbers: incr, ttl and init refuse \"32\" as Invalid", async () => {
    setup();
    const values = await withCache(`
      local a, e1 = s:incr("n", "32")
      local b, e2 = s:set("k", 1, "10")
      local c, e3 = s:incr("n", 1, "5")
      return a, e1:kind(), e1:message(), b, e2:kind(), c, e3:kind(), s:get("n"), s:get("k")`);
    expect(values).toEqual([null, "Invalid", "by must be a number, got string", null, "Invalid", null, "Invalid", null, null]);
  });
});

describe("flush", () => {
  it("removes every key and answers how many live keys it removed", async () => {
    setup();
    const values = await withCache(`
      s:set("a", 1); s:set("b", 2); s:set("c", 3, 1)
      return s:flush(), s:get("a"), s:info().size, s:flush()`);
    expect(values).toEqual([3, null, 0, 0]);
  });

  it("is checked as store.flush: an actor allowed every key action is still denied", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant"); s:set("t1:k", 1)
       local n, err = s:flush(); return n, err:kind(), s:get("t1:k")`,
      { actor: { id: "tenant:t1", meta: { tenant: "t1" } } },
    );
    expect(values).toEqual([null, "PermissionDenied", 1]);
  });

  it("is the handle's alone: a namespace view refuses it and removes nothing", async () => {
    setup();
    const values = await withCache(`
      s:set("x", 1); local v = s:namespace("t1"); v:set("k", 1)
      local n, err = v:flush(); return n, err:kind(), s:info().size`);
    expect(values).toEqual([null, "Invalid", 2]);
  });

  it("host.store(id).flush() removes every key without a policy", async () => {
    setup();
    await withCache(`s:set("a", 1); s:set("b", 2)`);
    expect(await t.host.store("app:cache").flush()).toBe(2);
    expect(await t.host.store("app:cache").size()).toBe(0);
  });
});

describe("info bytes", () => {
  it("s:info() tells the bytes held, and no free_bytes on a memory store", async () => {
    setup();
    const [before, after] = await withCache(`local a = s:info(); s:set("key", "value"); return a, s:info()`);
    expect(before).toMatchObject({ size: 0, bytes: 0 });
    expect(after).toMatchObject({ size: 1, bytes: 3 + 6 });
    expect(after).not.toHaveProperty("free_bytes");
  });
});

describe("bulk: set_many and delete_many", () => {
  const big = { registry: { version: "1.0", namespace: "app", entries: [{ name: "bulk", kind: "store.memory", max_size: 20_000 }] } };
  const bulkHost = (overrides = {}) =>
    (t = makeHost({
      ...big,
      policies: {
        version: "1.0",
        policies: [
          { id: "all", effect: "allow", actors: ["admin"], actions: ["store.get", "store.key.*", "store.info"], resources: ["app:*"] },
          { id: "no-keep", effect: "deny", actions: ["store.key.delete"], resources: ["app:*"], conditions: [{ field: "meta.key", operator: "starts_with", value: "keep:" }] },
        ],
      },
      ...overrides,
    } as never));
  const fill = `local s = require("store").get("app:bulk")
    local t = {} for i = 1, 10000 do t["k" .. i] = i end
    assert(s:set_many(t))`;

  it("set_many and delete_many take 10 000 keys; 10 001 are Invalid and change nothing", async () => {
    bulkHost();
    const values = await t.eval(`${fill}
      local over = {} for i = 1, 10001 do over["o" .. i] = i end
      local ok, e1 = s:set_many(over)
      local keys = {} for i = 1, 10000 do keys[i] = "k" .. i end
      local n = s:delete_many(keys)
      keys[10001] = "x"
      local m, e2 = s:delete_many(keys)
      return ok, e1:kind(), n, s:info().size, m, e2:kind()`);
    expect(values).toEqual([null, "Invalid", 10_000, 0, null, "Invalid"]);
  });

  it("delete_many answers how many live keys it deleted", async () => {
    setup();
    expect(await withCache(`s:set("a", 1); s:set("b", 2); return s:delete_many({ "a", "b", "nope" }), s:get("a"), s:get("b")`)).toEqual([2, null, null]);
  });

  it("one denied key fails the whole delete_many and deletes nothing", async () => {
    bulkHost();
    const values = await t.eval(`local s = require("store").get("app:bulk")
      s:set("a", 1); s:set("keep:b", 2)
      local n, err = s:delete_many({ "a", "keep:b" })
      return n, err:kind(), s:get("a"), s:get("keep:b")`);
    expect(values).toEqual([null, "PermissionDenied", 1, 2]);
  });

  it("a bad key in delete_many is Invalid", async () => {
    setup();
    expect(await withCache(`local n, err = s:delete_many({ "a", 42 }); return n, err:kind(), err:message()`)).toEqual([
      null,
      "Invalid",
      "keys[2] must be a string, got number",
    ]);
  });

  it("delete_many of 10 000 keys crosses the worker channel", async () => {
    bulkHost({ isolation: "worker", workers: 1 });
    const values = await t.eval(`${fill}
      local keys = {} for i = 1, 10000 do keys[i] = "k" .. i end
      return s:delete_many(keys), s:info().size`);
    expect(values).toEqual([10_000, 0]);
  });

  it("a bulk call over maxCallBytes is Invalid before it reaches the store", async () => {
    bulkHost();
    const r = await t.run(`${fill}
      local keys = {} for i = 1, 10000 do keys[i] = "a-much-longer-key:" .. i end
      local n, err = s:delete_many(keys)
      return n, err:kind(), s:info().size`, { limits: { maxCallBytes: 100_000 } });
    expect(r.values).toEqual([null, "Invalid", 10_000]);
  });
});

describe("absolute expiry: expires_at", () => {
  // makeHost's ManualClock starts at 2026-01-01T00:00:00Z and only sleeps move it.
  const NOW = Date.UTC(2026, 0, 1) / 1000;

  it("put { expires_at } expires the key at that time, and entry tells it back", async () => {
    setup();
    const values = await withCache(`
      local time = require("time")
      assert(s:put("k", "v", { expires_at = ${NOW} + 10.5 }))
      local e = s:entry("k")
      time.sleep(10.4)
      local before = s:get("k")
      time.sleep(0.1)
      return e.expires_at, s:ttl("k") == nil, before, s:get("k")`);
    expect(values).toEqual([NOW + 10.5, true, "v", null]);
  });

  it("set_many { expires_at } gives every key that expiry; { ttl } works as a plain ttl", async () => {
    setup();
    const values = await withCache(`
      assert(s:set_many({ a = 1, b = 2 }, { expires_at = ${NOW} + 60 }))
      assert(s:set_many({ c = 3 }, { ttl = 5 }))
      return s:entry("a").expires_at, s:entry("b").expires_at, s:ttl("c")`);
    expect(values).toEqual([NOW + 60, NOW + 60, 5]);
  });

  it("expire_at sets an absolute expiry on an existing key; false on a missing one", async () => {
    setup();
    const values = await withCache(`
      s:set("k", 1)
      return s:expire_at("k", ${NOW} + 100), s:ttl("k"), s:expire_at("missing", ${NOW} + 100)`);
    expect(values).toEqual([true, 100, false]);
  });

  it("a time that is not in the future is refused as Invalid and changes nothing", async () => {
    setup();
    const values = await withCache(`
      s:set("k", 1, 50)
      local a, e1 = s:expire_at("k", ${NOW})
      local b, e2 = s:put("k", 2, { expires_at = ${NOW} - 1 })
      local c, e3 = s:set_many({ k = 3 }, { expires_at = 0 })
      return a, e1:kind(), e1:message(), b, e2:kind(), c, e3:kind(), s:get("k"), s:ttl("k")`);
    expect(values).toEqual([null, "Invalid", `expires_at ${NOW} is not in the future (now ${NOW})`, null, "Invalid", null, "Invalid", 1, 50]);
  });

  it("ttl together with expires_at is Invalid; expires_at must be a number", async () => {
    setup();
    const values = await withCache(`
      local a, e1 = s:put("k", 1, { ttl = 5, expires_at = ${NOW} + 5 })
      local b, e2 = s:set_many({ k = 1 }, { ttl = 5, expires_at = ${NOW} + 5 })
      local c, e3 = s:expire_at("k", "soon")
      local d, e4 = s:expire_at("k")
      return e1:message(), e2:message(), e3:message(), e4:kind()`);
    expect(values).toEqual([
      "ttl and expires_at cannot be combined",
      "ttl and expires_at cannot be combined",
      "expires_at must be a number of seconds since the epoch, got string",
      "Invalid",
    ]);
  });

  it("expire_at is checked as store.key.set: another tenant's key is PermissionDenied before the time is looked at", async () => {
    setup();
    const values = await t.eval(`local s = require("store").get("app:tenant"); local v, err = s:expire_at("t2:k", 0); return v, err:kind()`, {
      actor: { id: "tenant:t1", meta: { tenant: "t1" } },
    });
    expect(values).toEqual([null, "PermissionDenied"]);
  });
});

// Redis with fewer keys: this file shares its server with real-time TTL cases, which a 10 000-key
// script would stall (test/store/redis-bulk.test.ts takes 10 000 on a server of its own).
describe.each([
  { kind: "store.memory", n: 10_000, extra: {} },
  { kind: "store.sql", n: 10_000, extra: { path: ":memory:" } },
  ...(process.env.LUASTORE_REDIS_URL
    ? [{ kind: "store.redis", n: 200, extra: { url: process.env.LUASTORE_REDIS_URL, key_prefix: `luastore-test:${process.pid}:ops:${Date.now().toString(36)}:` } }]
    : []),
])("through scripts on $kind", ({ kind, n, extra }) => {
  const host = () =>
    (t = makeHost({
      registry: { version: "1.0", namespace: "app", entries: [{ name: "b", kind, max_size: 20_000, ...extra }] },
      policies: {
        version: "1.0",
        policies: [{ id: "all", effect: "allow", actors: ["admin"], actions: ["store.get", "store.key.*", "store.info", "store.flush"], resources: ["app:*"] }],
      },
    } as never));
  const NOW = Date.UTC(2026, 0, 1) / 1000;

  it("flush, delete_many, expire_at, put { expires_at } and info bytes", async () => {
    host();
    const [flushed, deleted, expireAt, ttl, putTtl, bytes, size] = await t.eval(`
      local s = assert(require("store").get("app:b"))
      s:flush()
      local t = {} for i = 1, ${n} do t["k" .. i] = i end
      assert(s:set_many(t))
      local keys = {} for i = 1, ${n - 10} do keys[i] = "k" .. i end
      local deleted = s:delete_many(keys)
      local ok = s:expire_at("k${n}", ${NOW} + 100)
      local ttl = s:ttl("k${n}")
      assert(s:put("p", "v", { expires_at = ${NOW} + 50 }))
      local putTtl = s:ttl("p")
      local info = s:info()
      return s:flush(), deleted, ok, ttl, putTtl, info.bytes, info.size`);
    expect([flushed, deleted, expireAt]).toEqual([11, n - 10, true]);
    expect(ttl).toBeGreaterThan(99);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(putTtl).toBeGreaterThan(49);
    expect(putTtl).toBeLessThanOrEqual(50);
    expect(size).toBe(11);
    // The 10 keys left with their values, and "p" = "v".
    let left = 1 + encodeValue("v").length;
    for (let i = n - 9; i <= n; i++) left += `k${i}`.length + encodeValue(i).length;
    expect(bytes).toBe(left);
  });
});

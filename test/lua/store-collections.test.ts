/** Lists, sorted sets and multi-key transactions through real scripts, in both isolation modes where it matters. */
import { afterEach, describe, expect, it } from "vitest";
import { ADMIN, makeHost, READER, tenant, TEST_REGISTRY, type TestHost } from "../helpers.js";

let t: TestHost;
afterEach(async () => {
  await t?.host.close();
});
const setup = (overrides: Parameters<typeof makeHost>[0] = {}) => (t = makeHost(overrides));
/**
 * Worker isolation: a memory store with a quota stays in the store thread (its calls cross the
 * channel); one without is a shared-memory zone that the worker changes itself.
 */
const inWorkers = () =>
  setup({
    isolation: "worker",
    workers: 1,
    registry: { ...TEST_REGISTRY, entries: [...TEST_REGISTRY.entries, { name: "cache", kind: "store.memory", quota: { by: "actor.id", max_keys: 50 } }].slice(1) } as never,
  });

async function withCache(body: string, actor = ADMIN): Promise<unknown[]> {
  return t.eval(`local store = require("store"); local s = assert(store.get("app:cache")); ${body}`, { actor });
}

describe("lists", () => {
  it("lists and sorted sets live in the shared-memory zone a worker maps, and the host sees them", async () => {
    setup({ isolation: "worker", workers: 1 });
    const as = (body: string, actor: typeof ADMIN = tenant("t1")) => t.eval(`local s = require("store").get("app:tenant"); ${body}`, { actor });
    expect(
      await as(`s:rpush("t1:q", 1, "two", { 3 }); local a = s:lpop("t1:q"); local n = s:ltrim("t1:q", 1, 1)
        local _, e = s:get("t1:q"); local _, denied = s:rpush("t2:q", 1)
        s:zadd("t1:z", "a", 1, "b", 2); local sc = s:zincr("t1:z", "a", 5)
        return a, n, s:lrange("t1:q", 1, -1), s:llen("t1:q"), e:kind(), denied:kind(),
          sc, s:zrange("t1:z", {}, { with_scores = true }), s:zrank("t1:z", "a"), s:zcard("t1:z"), s:zscore("t1:z", "b")`),
    ).toEqual([1, 1, ["two"], 1, "Invalid", "PermissionDenied", 6, [{ member: "b", score: 2 }, { member: "a", score: 6 }], 2, 2, 2]);
    // A second run (another acquisition of the handle) and the host thread read the same zone.
    expect(await as(`return s:lrange("t1:q", 1, -1), s:zrange("t1:z", { min = 3 })`)).toEqual([["two"], ["a"]]);
    const host = t.host.store("app:tenant");
    expect(await host.has("t1:q")).toBe(true);
    await expect(host.get("t1:z")).rejects.toMatchObject({ kind: "Invalid" });
  });

  it("pushes answer the new length; lrange counts from 1 and from -1 at the end", async () => {
    setup();
    expect(
      await withCache(`
        local a = s:rpush("q", "b", "c")
        local b = s:lpush("q", "a")
        return a, b, s:lrange("q", 1, -1), s:lrange("q", 2, 2), s:lrange("q", -2, -1), s:lrange("q"), s:llen("q")`),
    ).toEqual([2, 3, ["a", "b", "c"], ["b"], ["b", "c"], ["a", "b", "c"], 3]);
  });

  it("elements keep their Lua types, tables included", async () => {
    setup();
    expect(
      await withCache(`s:rpush("q", 1, 2.5, true, { x = 1 }, "s"); local r = s:lrange("q", 1, -1)
        return math.type(r[1]), math.type(r[2]), r[3], r[4].x, r[5]`),
    ).toEqual(["integer", "float", true, 1, "s"]);
  });

  it("lpop and rpop without a count answer one value or nil; with a count an array", async () => {
    setup();
    expect(
      await withCache(`s:rpush("q", 1, 2, 3, 4)
        local a = s:lpop("q"); local b = s:rpop("q", 2); local c = s:rpop("q", 5); local d = s:lpop("q"); local e = s:lpop("q", 3)
        return a, b, c, d, #e, s:llen("q")`),
    ).toEqual([1, [4, 3], [2], null, 0, 0]);
  });

  it("ltrim keeps a range; a list emptied by a pop or a trim is gone", async () => {
    setup();
    expect(
      await withCache(`s:rpush("q", 1, 2, 3, 4, 5)
        local n = s:ltrim("q", 2, -2); local r = s:lrange("q", 1, -1)
        s:ltrim("q", 5, 6)
        return n, r, s:has("q")`),
    ).toEqual([3, [2, 3, 4], false]);
  });

  it("a list key read as a value, or a value pushed to, is Invalid; set replaces a list", async () => {
    setup();
    expect(
      await withCache(`s:rpush("q", 1); s:set("v", 1)
        local _, e1 = s:get("q"); local _, e2 = s:lpush("v", 2); local _, e3 = s:llen("v")
        s:set("q", "now a value")
        return e1:kind(), e2:kind(), e3:kind(), s:get("q")`),
    ).toEqual(["Invalid", "Invalid", "Invalid", "now a value"]);
  });

  it("bad arguments are Invalid: no value, nil, index 0, a count out of range", async () => {
    setup();
    expect(
      await withCache(`
        local _, a = s:lpush("q"); local _, b = s:rpush("q", 1, nil); local _, c = s:lrange("q", 0, 1)
        local _, d = s:ltrim("q", 1); local _, e = s:lpop("q", 0); local _, f = s:rpop("q", 1.5); local _, g = s:lrange("q", 1, "x")
        return a:kind(), b:kind(), c:kind(), d:kind(), e:kind(), f:kind(), g:kind(), s:has("q")`),
    ).toEqual(["Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", false]);
  });

  it("a push of more values than a call may carry is refused whole", async () => {
    setup();
    expect(
      await withCache(`local t = {}; for i = 1, 1001 do t[i] = i end
        local _, err = s:rpush("q", table.unpack(t)); return err:kind(), s:has("q")`),
    ).toEqual(["Invalid", false]);
  });

  it("reads are checked as store.key.get, writes as store.key.set", async () => {
    setup();
    await withCache(`s:rpush("q", 1, 2)`);
    expect(
      await withCache(
        `local n = s:llen("q"); local r = s:lrange("q", 1, -1)
         local _, a = s:rpush("q", 3); local _, b = s:lpop("q"); local _, c = s:ltrim("q", 1, 1)
         return n, r, a:kind(), b:kind(), c:kind()`,
        READER,
      ),
    ).toEqual([2, [1, 2], "PermissionDenied", "PermissionDenied", "PermissionDenied"]);
    expect(await withCache(`return s:lrange("q", 1, -1)`)).toEqual([[1, 2]]);
  });

  it.each([
    ["lpush", `s:lpush("t2:k", 1)`],
    ["rpush", `s:rpush("t2:k", 1)`],
    ["lpop", `s:lpop("t2:k")`],
    ["rpop", `s:rpop("t2:k", 2)`],
    ["llen", `s:llen("t2:k")`],
    ["lrange", `s:lrange("t2:k", 1, -1)`],
    ["ltrim", `s:ltrim("t2:k", 1, 2)`],
  ])("%s on another tenant's key is PermissionDenied", async (_m, call) => {
    setup();
    const values = await t.eval(`local s = require("store").get("app:tenant"); local v, err = ${call}; return v, err:kind()`, {
      actor: tenant("t1"),
    });
    expect(values).toEqual([null, "PermissionDenied"]);
  });

  it("a denied push is refused before its values are looked at", async () => {
    setup();
    const values = await t.eval(`local s = require("store").get("app:tenant"); local _, err = s:rpush("t2:k", function() end); return err:kind()`, {
      actor: tenant("t1"),
    });
    expect(values).toEqual(["PermissionDenied"]);
  });

  it("works the same in a worker", async () => {
    inWorkers();
    expect(
      await withCache(`s:rpush("q", 1, "two", { 3 }); local a = s:lpop("q"); local n = s:ltrim("q", 1, 1)
        local _, e = s:get("q")
        return a, n, s:lrange("q", 1, -1), s:llen("q"), e:kind()`),
    ).toEqual([1, 1, ["two"], 1, "Invalid"]);
  });
});

describe("sorted sets", () => {
  it("zadd answers new members; zscore, zrank (1-based), zcard read them", async () => {
    setup();
    expect(
      await withCache(`
        local a = s:zadd("board", "ann", 10, "bob", 20, "cy", 15)
        local b = s:zadd("board", "ann", 30)
        local sc = s:zscore("board", "ann")
        return a, b, sc, math.type(sc), s:zrank("board", "cy"), s:zrank("board", "ann", { rev = true }), s:zrank("board", "zed"), s:zscore("board", "zed"), s:zcard("board")`),
    ).toEqual([3, 0, 30, "float", 1, 1, null, null, 3]);
  });

  it("zrange by rank counts from 1 (and -1 at the end); by score takes min and max; rev, limit and with_scores", async () => {
    setup();
    expect(
      await withCache(`
        s:zadd("b", "a", 1, "b", 2, "c", 3, "d", 4, "e", 5)
        local top = s:zrange("b", { start = 1, stop = 3 }, { rev = true })
        local last = s:zrange("b", { start = -2, stop = -1 })
        local all = s:zrange("b", {})
        local mid = s:zrange("b", { min = 2, max = 4 }, { limit = 2 })
        local scored = s:zrange("b", { min = 4 }, { with_scores = true })
        local low = s:zrange("b", { max = 1.5 })
        return top, last, all, mid, scored, low`),
    ).toEqual([["e", "d", "c"], ["d", "e"], ["a", "b", "c", "d", "e"], ["b", "c"], [{ member: "d", score: 4 }, { member: "e", score: 5 }], ["a"]]);
  });

  it("zincr adds to a score; zrem removes members; math.huge is a score", async () => {
    setup();
    expect(
      await withCache(`
        local a = s:zincr("b", "x", 1.5); local b = s:zincr("b", "x", 2)
        s:zadd("b", "top", math.huge, "bottom", -math.huge)
        local order = s:zrange("b", {})
        local removed = s:zrem("b", "x", "nobody")
        local r2 = s:zrem("b", "top", "bottom")
        return a, b, order, removed, r2, s:has("b")`),
    ).toEqual([1.5, 3.5, ["bottom", "x", "top"], 1, 2, false]);
  });

  it("bad arguments are Invalid: odd pairs, NaN, non-string members, both range forms, index 0", async () => {
    setup();
    expect(
      await withCache(`
        local _, a = s:zadd("b", "m"); local _, b = s:zadd("b", "m", 0/0); local _, c = s:zadd("b", 1, 2)
        local _, d = s:zrange("b", { start = 1, min = 2 }); local _, e = s:zrange("b", { start = 0 })
        local _, f = s:zrange("b"); local _, g = s:zincr("b", "m", "1"); local _, h = s:zrange("b", {}, { limit = -1 })
        local _, i = s:zrank("b", "m", true)
        return a:kind(), b:kind(), c:kind(), d:kind(), e:kind(), f:kind(), g:kind(), h:kind(), i:kind(), s:has("b")`),
    ).toEqual(["Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", false]);
  });

  it("a sorted set read as a value is Invalid, and a value used as a sorted set", async () => {
    setup();
    expect(
      await withCache(`s:zadd("z", "a", 1); s:set("v", 1)
        local _, e1 = s:get("z"); local _, e2 = s:zadd("v", "a", 1); local _, e3 = s:lpush("z", 1)
        return e1:kind(), e2:kind(), e3:kind()`),
    ).toEqual(["Invalid", "Invalid", "Invalid"]);
  });

  it("reads are checked as store.key.get, writes as store.key.set", async () => {
    setup();
    await withCache(`s:zadd("z", "a", 1)`);
    expect(
      await withCache(
        `local sc = s:zscore("z", "a"); local rk = s:zrank("z", "a"); local r = s:zrange("z", {}); local n = s:zcard("z")
         local _, a = s:zadd("z", "b", 2); local _, b = s:zincr("z", "a", 1); local _, c = s:zrem("z", "a")
         return sc, rk, r, n, a:kind(), b:kind(), c:kind()`,
        READER,
      ),
    ).toEqual([1, 1, ["a"], 1, "PermissionDenied", "PermissionDenied", "PermissionDenied"]);
  });

  it.each([
    ["zadd", `s:zadd("t2:k", "m", 1)`],
    ["zincr", `s:zincr("t2:k", "m", 1)`],
    ["zscore", `s:zscore("t2:k", "m")`],
    ["zrank", `s:zrank("t2:k", "m")`],
    ["zrange", `s:zrange("t2:k", {})`],
    ["zrem", `s:zrem("t2:k", "m")`],
    ["zcard", `s:zcard("t2:k")`],
  ])("%s on another tenant's key is PermissionDenied", async (_m, call) => {
    setup();
    const values = await t.eval(`local s = require("store").get("app:tenant"); local v, err = ${call}; return v, err:kind()`, {
      actor: tenant("t1"),
    });
    expect(values).toEqual([null, "PermissionDenied"]);
  });

  it("works the same in a worker", async () => {
    inWorkers();
    expect(
      await withCache(`s:zadd("z", "a", 1, "b", 2); local sc = s:zincr("z", "a", 5)
        return sc, s:zrange("z", {}, { with_scores = true }), s:zrank("z", "a"), s:zcard("z")`),
    ).toEqual([6, [{ member: "b", score: 2 }, { member: "a", score: 6 }], 2, 2]);
  });
});

describe("atomic", () => {
  it("applies checks, set, delete, incr and ttl together and answers the new numbers", async () => {
    setup();
    expect(
      await withCache(`s:set("old", 1); s:set("n", 10)
        local v = s:entry("n").version
        local r = s:atomic({ checks = { n = v, fresh = false }, set = { a = "x", b = { 1, 2 } }, delete = { "old" }, incr = { n = 5, m = 1.5 }, ttl = 60 })
        return r.n, r.m, s:get("a"), s:get("b"), s:has("old"), s:get("n"), s:ttl("a"), s:ttl("n")`),
    ).toEqual([15, 1.5, "x", [1, 2], false, 15, 60, 0]);
  });

  it("a failed check answers CONFLICT, retryable, whose details name the key, and writes nothing", async () => {
    setup();
    expect(
      await withCache(`s:set("taken", 1)
        local ok, err = s:atomic({ checks = { taken = false }, set = { a = 1 } })
        return ok, err:kind(), err:retryable(), err:details().key, s:has("a")`),
    ).toEqual([null, "Conflict", true, "taken", false]);
  });

  it("a namespace view checks and names its keys relative to its prefix", async () => {
    setup();
    expect(
      await withCache(`local ns = s:namespace("app"); ns:set("k", 1)
        local r = ns:atomic({ incr = { k = 1 } })
        local _, err = ns:atomic({ checks = { k = false } })
        return r.k, s:get("app:k"), err:details().key`),
    ).toEqual([2, 2, "k"]);
  });

  it("bad transactions are Invalid: a key in two parts, an unknown field, a bad check, too many keys", async () => {
    setup();
    expect(
      await withCache(`
        local _, a = s:atomic({ set = { k = 1 }, delete = { "k" } })
        local _, b = s:atomic({ sets = { k = 1 } })
        local _, c = s:atomic({ checks = { k = true } })
        local many = {}; for i = 1, 1001 do many[i] = "k" .. i end
        local _, d = s:atomic({ delete = many })
        local _, e = s:atomic({ set = { k = function() end } })
        local _, f = s:atomic({ incr = { k = "1" } })
        local _, g = s:atomic("x")
        return a:kind(), b:kind(), c:kind(), d:kind(), e:kind(), f:kind(), g:kind(), s:has("k")`),
    ).toEqual(["Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", "Invalid", false]);
  });

  it("every key is policy-checked before anything is applied: checks as get, set and incr as set, delete as delete", async () => {
    setup();
    const as = (body: string) =>
      t.eval(`local s = require("store").get("app:tenant"); ${body}`, { actor: tenant("t1") });
    expect(
      await as(`
        local _, a = s:atomic({ set = { ["t1:a"] = 1, ["t2:b"] = 1 } })
        local _, b = s:atomic({ set = { ["t1:a"] = 1 }, checks = { ["t2:x"] = false } })
        local _, c = s:atomic({ set = { ["t1:a"] = 1 }, delete = { "t2:x" } })
        local _, d = s:atomic({ set = { ["t1:a"] = 1 }, incr = { ["t2:n"] = 1 } })
        return a:kind(), b:kind(), c:kind(), d:kind(), s:has("t1:a")`),
    ).toEqual(["PermissionDenied", "PermissionDenied", "PermissionDenied", "PermissionDenied", false]);
    await withCache(`s:set("r", 1)`);
    expect(
      await withCache(
        `local v = s:entry("r").version
         local ok = s:atomic({ checks = { r = v } }); local _, err = s:atomic({ checks = { r = v }, set = { r = 2 } })
         return ok ~= nil, err:kind(), s:get("r")`,
        READER,
      ),
    ).toEqual([true, "PermissionDenied", 1]);
  });

  it("a denied transaction answers PermissionDenied even when one of its values is bad", async () => {
    setup();
    const values = await t.eval(`local s = require("store").get("app:tenant"); local _, err = s:atomic({ set = { ["t2:k"] = function() end } }); return err:kind()`, {
      actor: tenant("t1"),
    });
    expect(values).toEqual(["PermissionDenied"]);
  });

  it("works the same in a worker on the shared-memory zone, policy-checked there", async () => {
    setup({ isolation: "worker", workers: 1 });
    const as = (body: string, actor: typeof ADMIN = tenant("t1")) =>
      t.eval(`local s = require("store").get("app:tenant"); ${body}`, { actor });
    expect(
      await as(`s:set("t1:n", 1)
        local r = s:atomic({ set = { ["t1:a"] = 1 }, incr = { ["t1:n"] = 2 }, ttl = 60 })
        local _, err = s:atomic({ checks = { ["t1:a"] = false }, delete = { "t1:n" } })
        local _, denied = s:atomic({ set = { ["t1:b"] = 1 }, delete = { "t2:x" } })
        return r["t1:n"], s:get("t1:a"), s:ttl("t1:a"), err:kind(), err:details().key, s:get("t1:n"), denied:kind(), s:has("t1:b")`),
    ).toEqual([3, 1, 60, "Conflict", "t1:a", 3, "PermissionDenied", false]);
  });

  it("works the same in a worker", async () => {
    inWorkers();
    expect(
      await withCache(`s:set("n", 1)
        local r = s:atomic({ set = { a = 1 }, incr = { n = 2 } })
        local _, err = s:atomic({ checks = { a = false }, delete = { "n" } })
        return r.n, s:get("a"), err:kind(), err:details().key, s:get("n")`),
    ).toEqual([3, 1, "Conflict", "a", 3]);
  });
});

describe("values read from inside a table argument", () => {
  it("set_many and atomic store each table value, not a string that sits below the call on the stack", async () => {
    setup();
    expect(
      await withCache(`local decoy = "decoy"
        s:set_many({ a = "x" }); local r = s:atomic({ set = { b = "y" } })
        return s:get("a"), s:get("b"), decoy`),
    ).toEqual(["x", "y", "decoy"]);
  });
});

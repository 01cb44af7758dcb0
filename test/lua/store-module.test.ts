/** Every row of the Lua store API and every error it documents, through real scripts. */
import { afterEach, describe, expect, it } from "vitest";
import { ADMIN, makeHost, READER, tenant, type TestHost } from "../helpers.js";

let t: TestHost;
afterEach(async () => {
  await t?.host.close();
});
const setup = () => (t = makeHost());

/** Runs a snippet with `s` bound to an app:cache handle; returns its values. */
async function withCache(body: string, actor = ADMIN): Promise<unknown[]> {
  return t.eval(`local store = require("store"); local s = assert(store.get("app:cache")); ${body}`, { actor });
}

describe("store.get(id)", () => {
  it("returns a Store handle for an allowed, existing id", async () => {
    setup();
    expect(await t.eval(`local s = require("store").get("app:cache"); return type(s), tostring(s)`)).toEqual([
      "userdata",
      'store "app:cache"',
    ]);
  });

  it.each([
    ["an empty id", `""`, "store id must not be empty"],
    ["a number id", `42`, "store id must be a string, got number"],
    ["a nil id", `nil`, "store id must be a string, got nil"],
    ["a table id", `{}`, "store id must be a string, got table"],
  ])("refuses %s as Invalid", async (_name, arg, message) => {
    setup();
    expect(await t.eval(`local s, err = require("store").get(${arg}); return s, err:kind(), err:message()`)).toEqual([
      null,
      "Invalid",
      message,
    ]);
  });

  it("answers NotFound for an id the actor may open but that does not exist", async () => {
    setup();
    const [s, kind] = await t.eval(`local s, err = require("store").get("app:nope"); return s, err:kind()`);
    expect([s, kind]).toEqual([null, "NotFound"]);
  });

  it("answers PermissionDenied when policy refuses store.get, without revealing whether the store exists", async () => {
    setup();
    const values = await t.eval(
      `local store = require("store")
       local a, e1 = store.get("app:cache"); local b, e2 = store.get("app:nope")
       return a, e1:kind(), b, e2:kind()`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual([null, "PermissionDenied", null, "PermissionDenied"]);
  });

  it("answers Unavailable, retryable, when the pool is exhausted, and a release frees a slot", async () => {
    setup(); // app:cache has pool.max 4
    const values = await t.eval(`
      local store = require("store")
      local hs = {}
      for i = 1, 4 do hs[i] = assert(store.get("app:cache")) end
      local s, err = store.get("app:cache")
      hs[1]:release()
      local again = store.get("app:cache")
      return s, err:kind(), err:retryable(), again ~= nil`);
    expect(values).toEqual([null, "Unavailable", true, true]);
  });
});

describe("handle methods", () => {
  it("set returns true and get returns the value", async () => {
    setup();
    expect(await withCache(`return s:set("k", "v"), s:get("k")`)).toEqual([true, "v"]);
  });

  it("short string values written again and again, in turns over more values and keys than any cache holds, each read back as written", async () => {
    // The same Lua string encodes to one shared array; a key read again pushes a remembered string.
    setup();
    const [log] = await withCache(`
      local values, log = { "a", "bb", "", "dddd", "eeeee", "ffffff" }, {}
      for round = 1, 3 do
        for i = 1, 6 do s:set("k" .. i, values[(i + round) % 6 + 1]) end
        s:set("k1", values[round])
        for i = 1, 6 do log[#log + 1] = s:get("k" .. i) .. "," .. s:get("k" .. i) end
      end
      return table.concat(log, "|")`);
    const values = ["a", "bb", "", "dddd", "eeeee", "ffffff"];
    const expected: string[] = [];
    for (let round = 1; round <= 3; round++) {
      for (let i = 1; i <= 6; i++) {
        const v = i === 1 ? values[round - 1]! : values[(i + round) % 6]!;
        expected.push(`${v},${v}`);
      }
    }
    expect(log).toBe(expected.join("|"));
  });

  it("get returns nil for a missing key", async () => {
    setup();
    expect(await withCache(`return s:get("missing")`)).toEqual([null]);
  });

  it("has answers true/false", async () => {
    setup();
    expect(await withCache(`s:set("k", 1); return s:has("k"), s:has("other")`)).toEqual([true, false]);
  });

  it("delete answers true when the key existed and false when not", async () => {
    setup();
    expect(await withCache(`s:set("k", 1); return s:delete("k"), s:delete("k"), s:has("k")`)).toEqual([
      true,
      false,
      false,
    ]);
  });

  it("release returns true and is idempotent", async () => {
    setup();
    expect(await withCache(`return s:release(), s:release()`)).toEqual([true, true]);
  });

  it.each(["get", "has", "delete", "set"])("%s on a released handle is Invalid 'store released'", async (method) => {
    setup();
    const args = method === "set" ? `"k", 1` : `"k"`;
    expect(await withCache(`s:release(); local v, err = s:${method}(${args}); return v, err:kind(), err:message()`)).toEqual([
      null,
      "Invalid",
      "store released",
    ]);
  });

  it("calling a method without a store raises the usual bad argument error", async () => {
    setup();
    const [ok, msg] = await withCache(`return pcall(function() return s.get("k") end)`);
    expect(ok).toBe(false);
    expect(msg).toMatch(/bad argument #1 to 'get' \(store expected, got string\)/);
    const [ok2, msg2] = await withCache(`return pcall(function() return s.get({}, "k") end)`);
    expect(ok2).toBe(false);
    expect(msg2).toMatch(/store expected, got table/);
  });
});

describe("keys", () => {
  it.each([
    ["a number", `42`, "key must be a string, got number"],
    ["nil", `nil`, "key must be a string, got nil"],
    ["a table", `{}`, "key must be a string, got table"],
    ["an empty string", `""`, "key must not be empty"],
  ])("%s is not a key (Invalid)", async (_n, key, message) => {
    setup();
    expect(await withCache(`local v, err = s:get(${key}); return v, err:kind(), err:message()`)).toEqual([
      null,
      "Invalid",
      message,
    ]);
  });

  it("a key longer than max_key_length is Invalid; exactly max_key_length is fine", async () => {
    setup(); // app:small has max_key_length 8
    const values = await t.eval(`
      local s = require("store").get("app:small")
      local ok = s:set("12345678", 1)
      local v, err = s:set("123456789", 1)
      return ok, v, err:kind(), err:message()`);
    expect(values).toEqual([true, null, "Invalid", "key is 9 bytes, longer than max_key_length 8"]);
  });

  it("keys are bytes: NUL, invalid UTF-8 and near-identical keys stay distinct", async () => {
    setup();
    const values = await withCache(`
      s:set("a\\0b", 1); s:set("a\\0c", 2); s:set("\\xff", 3); s:set("\\xfe", 4)
      return s:get("a\\0b"), s:get("a\\0c"), s:get("\\xff"), s:get("\\xfe"), s:get("a")`);
    expect(values).toEqual([1, 2, 3, 4, null]);
  });
});

describe("check order: released, key, policy, value and TTL", () => {
  it("a released handle wins over a bad key", async () => {
    setup();
    expect(await withCache(`s:release(); local _, err = s:get(42); return err:message()`)).toEqual(["store released"]);
  });

  it("a bad key wins over a policy denial", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant"); local _, err = s:get(42); return err:kind()`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual(["Invalid"]);
  });

  it("a policy denial wins over a bad value or TTL", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant")
       local _, e1 = s:set("other:k", function() end)
       local _, e2 = s:set("other:k", 1, -5)
       return e1:kind(), e2:kind()`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual(["PermissionDenied", "PermissionDenied"]);
  });

  it("an allowed key with a bad value is Invalid", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant"); local _, err = s:set("t1:k", function() end); return err:kind()`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual(["Invalid"]);
  });
});

describe("policy on key operations", () => {
  it("a tenant reads and writes its own prefix and is denied others, for every action", async () => {
    setup();
    const values = await t.eval(
      `local s = require("store").get("app:tenant")
       local out = { s:set("t1:a", 1), s:get("t1:a"), s:has("t1:a"), s:delete("t1:a") }
       for _, call in ipairs({
         function() return s:get("t10:a") end, function() return s:set("t10:a", 1) end,
         function() return s:has("t2:a") end, function() return s:delete("t2:a") end }) do
         local v, err = call()
         out[#out + 1] = err:kind()
       end
       return table.unpack(out)`,
      { actor: tenant("t1") },
    );
    expect(values).toEqual([true, 1, true, true, "PermissionDenied", "PermissionDenied", "PermissionDenied", "PermissionDenied"]);
  });

  it("a deny policy wins over an allow (secret: keys even for admin)", async () => {
    setup();
    expect(await withCache(`local v, err = s:set("secret:x", 1); return v, err:kind()`)).toEqual([null, "PermissionDenied"]);
  });

  it("a reader may get and has but not set or delete", async () => {
    setup();
    const values = await withCache(
      `local a = s:get("k"); local b = s:has("k"); local _, e1 = s:set("k", 1); local _, e2 = s:delete("k")
       return a, b, e1:kind(), e2:kind()`,
      READER,
    );
    expect(values).toEqual([null, false, "PermissionDenied", "PermissionDenied"]);
  });

  it("a denied call returns nil, err and never raises", async () => {
    setup();
    const values = await withCache(`local ok, v, err = pcall(s.set, s, "secret:k", 1); return ok, v, err:kind()`);
    expect(values).toEqual([true, null, "PermissionDenied"]);
  });
});

describe("TTL", () => {
  it("an expired key is invisible at once", async () => {
    setup();
    await withCache(`s:set("k", "v", 1.5)`);
    t.clock.advance(1499);
    expect(await withCache(`return s:get("k"), s:has("k")`)).toEqual(["v", true]);
    t.clock.advance(1);
    expect(await withCache(`return s:get("k"), s:has("k"), s:delete("k")`)).toEqual([null, false, false]);
  });

  it("ttl nil or 0 means no expiry", async () => {
    setup();
    await withCache(`s:set("a", 1, nil); s:set("b", 1, 0)`);
    t.clock.advance(365 * 24 * 3600 * 1000);
    expect(await withCache(`return s:get("a"), s:get("b")`)).toEqual([1, 1]);
  });

  it("a set without TTL removes an earlier TTL", async () => {
    setup();
    await withCache(`s:set("k", 1, 10); s:set("k", 2)`);
    t.clock.advance(20_000);
    expect(await withCache(`return s:get("k")`)).toEqual([2]);
  });

  it("TTL has millisecond precision", async () => {
    setup();
    await withCache(`s:set("k", 1, 0.25)`);
    t.clock.advance(249);
    expect(await withCache(`return s:has("k")`)).toEqual([true]);
    t.clock.advance(1);
    expect(await withCache(`return s:has("k")`)).toEqual([false]);
  });

  it.each([
    ["negative", `-1`, /ttl must be a finite number >= 0/],
    ["NaN", `0/0`, /ttl must be a finite number >= 0/],
    ["infinite", `math.huge`, /ttl must be a finite number >= 0/],
    ["a string", `"10"`, /ttl must be a number of seconds, got string/],
    ["a table", `{}`, /ttl must be a number of seconds, got table/],
  ])("a %s TTL is Invalid and nothing is written", async (_n, ttl, message) => {
    setup();
    const [v, kind, msg, has] = await withCache(`local v, err = s:set("k", 1, ${ttl}); return v, err:kind(), err:message(), s:has("k")`);
    expect([v, kind, has]).toEqual([null, "Invalid", false]);
    expect(msg).toMatch(message);
  });
});

describe("values", () => {
  it("round-trips booleans, integers, floats and binary strings with their Lua types", async () => {
    setup();
    const values = await withCache(`
      local vals = { true, false, 0, -1, 2147483647, -2147483648, 1.0, -0.5, 1e300, "a\\0b\\xff", "" }
      local out = {}
      for i, v in ipairs(vals) do
        s:set("k" .. i, v)
        local got = s:get("k" .. i)
        out[#out + 1] = (got == v and math.type(got) == math.type(v)) and "ok" or ("bad " .. i)
      end
      return table.concat(out, ",")`);
    expect(values).toEqual([Array(11).fill("ok").join(",")]);
  });

  it("tables: arrays stay arrays, map keys keep their number or string type", async () => {
    setup();
    const values = await withCache(`
      s:set("t", { 10, 20, 30, nested = { deep = { [1.5] = "f", ["1"] = "s", [1] = "i" } } })
      local t = s:get("t")
      return #t, t[3], t.nested.deep[1.5], t.nested.deep["1"], t.nested.deep[1], math.type(t[1])`);
    expect(values).toEqual([3, 30, "f", "s", "i", "integer"]);
  });

  it("the stored value is a snapshot and every get returns a fresh table", async () => {
    setup();
    const values = await withCache(`
      local t = { n = 1 }
      s:set("t", t)
      t.n = 2
      local a, b = s:get("t"), s:get("t")
      a.n = 3
      return s:get("t").n, a ~= b`);
    expect(values).toEqual([1, true]);
  });

  it.each([
    ["nil", `nil`, "value: nil cannot be stored (use delete)"],
    ["a function", `{ profile = { cb = function() end } }`, "value.profile.cb: functions cannot be stored"],
    ["a coroutine", `coroutine.create(function() end)`, "value: threads cannot be stored"],
    ["a handle (userdata)", `{ h = s }`, "value.h: userdata cannot be stored"],
  ])("%s is refused as Invalid with the path in the message", async (_n, value, message) => {
    setup();
    const [v, kind, msg] = await withCache(`local v, err = s:set("k", ${value}); return v, err:kind(), err:message()`);
    expect([v, kind]).toEqual([null, "Invalid"]);
    expect(msg).toBe(message);
  });

  it("a cyclic table is refused", async () => {
    setup();
    const [kind, msg] = await withCache(`local t = { a = {} }; t.a.b = t; local _, err = s:set("k", t); return err:kind(), err:message()`);
    expect(kind).toBe("Invalid");
    expect(msg).toMatch(/^value\.a\.b: .*cycl/);
  });

  it("nesting deeper than 32 is refused, 32 is fine", async () => {
    setup();
    const values = await withCache(`
      local function nest(n) local t = {} ; local cur = t; for i = 2, n do cur.x = {}; cur = cur.x end; return t end
      local ok32 = s:set("k", nest(32))
      local v, err = s:set("k", nest(33))
      return ok32, v, err:kind()`);
    expect(values).toEqual([true, null, "Invalid"]);
  });

  it("an encoded value over max_value_size is refused", async () => {
    setup(); // app:small has max_value_size 64
    const [v, kind, msg] = await t.eval(`
      local s = require("store").get("app:small")
      local v, err = s:set("k", string.rep("x", 100)); return v, err:kind(), err:message()`);
    expect([v, kind]).toEqual([null, "Invalid"]);
    expect(msg).toMatch(/exceeds max_value_size 64/);
  });
});

describe("capacity", () => {
  it("a new key into a full store (eviction none) is refused as Unavailable, retryable; overwrites still work", async () => {
    setup(); // app:cache max_size 100
    const values = await withCache(`
      for i = 1, 100 do assert(s:set("k" .. i, i)) end
      local v, err = s:set("new", 1)
      return v, err:kind(), err:retryable(), err:message(), s:set("k1", "again"), s:get("k1")`);
    expect(values.slice(0, 3)).toEqual([null, "Unavailable", true]);
    expect(values[3]).toMatch(/full/);
    expect(values.slice(4)).toEqual([true, "again"]);
  });

  it("expired keys do not count toward a full store", async () => {
    setup();
    await withCache(`for i = 1, 100 do assert(s:set("k" .. i, i, 1)) end`);
    t.clock.advance(1000);
    expect(await withCache(`return s:set("new", 1)`)).toEqual([true]);
  });

  it("with eviction lru the least recently used key is dropped", async () => {
    setup(); // app:lru max_size 3
    const values = await t.eval(`
      local s = require("store").get("app:lru")
      s:set("a", 1); s:set("b", 2); s:set("c", 3)
      s:get("a")          -- a is now most recently used
      s:set("d", 4)       -- evicts b
      return s:has("a"), s:has("b"), s:has("c"), s:has("d")`);
    expect(values).toEqual([true, false, true, true]);
  });
});

describe("pool and auto-release", () => {
  it("handles a run does not release are released by the host, also when the run fails", async () => {
    setup();
    await t.run(`local store = require("store"); store.get("app:cache"); store.get("app:cache")`);
    await t.run(`local store = require("store"); store.get("app:cache"); error("boom")`);
    await t.run(`local store = require("store"); store.get("app:cache"); while true do end`, { limits: { maxInstructions: 10_000 } });
    const cache = t.host.pools().find((p) => p.id === "app:cache")!;
    expect(cache).toMatchObject({ inUse: 0, acquired: 4, autoReleased: 4, released: 0 });
  });

  it("a handle released by the script is not released again", async () => {
    setup();
    const r = await t.run(`local s = require("store").get("app:cache"); s:release()`);
    expect(r.stats.autoReleased).toBe(0);
    expect(t.host.pools().find((p) => p.id === "app:cache")).toMatchObject({ inUse: 0, released: 1, autoReleased: 0 });
  });
});

describe("host-side store access", () => {
  it("sees what scripts wrote and scripts see what the host wrote, bypassing policy", async () => {
    setup();
    await withCache(`s:set("from-lua", { n = 1, tags = { "a" } })`);
    const hs = t.host.store("app:cache");
    expect(await hs.get("from-lua")).toEqual({ n: 1, tags: ["a"] });
    await hs.set("secret:from-host", "hidden");
    await hs.set("from-host", [1, 2, 3], { ttl: 5 });
    expect(await withCache(`return s:get("from-host")[3]`)).toEqual([3]);
    t.clock.advance(5000);
    expect(await hs.has("from-host")).toBe(false);
    expect(await hs.get("secret:from-host")).toBe("hidden");
  });

  it("refuses bad keys, TTLs and values with a typed StoreError", async () => {
    setup();
    const hs = t.host.store("app:cache");
    await expect(hs.set("", 1)).rejects.toMatchObject({ code: "STORE_ERROR", kind: "Invalid" });
    await expect(hs.set("k", 1, { ttl: -1 })).rejects.toMatchObject({ kind: "Invalid" });
    await expect(hs.set("k", () => 1)).rejects.toMatchObject({ kind: "Invalid" });
    expect(() => t.host.store("app:nope")).toThrow(expect.objectContaining({ kind: "NotFound" }));
  });
});

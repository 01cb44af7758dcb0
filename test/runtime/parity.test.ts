/**
 * Worker isolation runs the same Lua API as inline: each scenario runs on an inline host and on
 * a worker host (same registry, policies and ManualClock start) and must give the same result,
 * down to the instruction and store-operation counts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../src/runtime/run-types.js";
import { makeHost, READER, tenant, type TestHost } from "../helpers.js";

interface Scenario {
  name: string;
  script: string;
  actor?: { id: string; meta: Record<string, string> };
  args?: unknown[];
  limits?: Record<string, number>;
  /** What both modes must return (values, or the error kind). */
  expect: { values?: unknown[]; kind?: string; output?: string };
}

const SCENARIOS: Scenario[] = [
  {
    name: "flush removes every key and answers the count",
    script: `local s = require("store").get("app:lru")
      s:flush() s:set("f:a", 1) s:set("f:b", 2)
      return s:flush(), s:get("f:a"), s:info().size`,
    expect: { values: [2, null, 0] },
  },
  {
    name: "set and get values of every type",
    script: `local s = require("store").get("app:cache")
      assert(s:set("v:t", { a = 1, b = { 2.5, "x", true }, [3] = "three" }))
      assert(s:set("v:s", "bytes\\0!")) assert(s:set("v:i", 42)) assert(s:set("v:f", 1.0))
      local t = s:get("v:t")
      return t.a, t.b[2], s:get("v:s"), s:get("v:i"), math.type(s:get("v:f")), s:get("v:none")`,
    expect: { values: [1, "x", "bytes\u0000!", 42, "float", null] },
  },
  {
    name: "has, delete, add, replace",
    script: `local s = require("store").get("app:cache")
      s:set("d:k", 1)
      return s:has("d:k"), s:delete("d:k"), s:delete("d:k"), s:has("d:k"), s:add("d:k", 1), s:add("d:k", 2), s:replace("d:k", 3), s:get("d:k"), s:replace("d:none", 1)`,
    expect: { values: [true, true, false, false, true, false, true, 3, false] },
  },
  {
    name: "incr keeps integers and floats apart",
    script: `local s = require("store").get("app:cache")
      local a = s:incr("n:c") local b = s:incr("n:c", 5) local c = s:incr("n:f", 0.5, 1)
      return a, b, math.type(b), c, math.type(c)`,
    expect: { values: [1, 6, "integer", 1.5, "float"] },
  },
  {
    name: "TTLs follow the host clock (time.sleep advances the ManualClock)",
    script: `local s = require("store").get("app:cache") local time = require("time")
      local t0 = time.now()
      s:set("ttl:k", "v", 10) local left = s:ttl("ttl:k")
      time.sleep(11)
      return left, s:get("ttl:k"), time.now() - t0, s:expire("ttl:none", 5)`,
    expect: { values: [10, null, 11, false] },
  },
  {
    name: "get_many, set_many and list with a cursor",
    script: `local s = require("store").get("app:cache")
      assert(s:set_many({ ["l:a"] = 1, ["l:b"] = 2, ["l:c"] = 3 }))
      local many = s:get_many({ "l:a", "l:c", "l:z" })
      local p1 = s:list({ prefix = "l:", limit = 2 })
      local p2 = s:list({ prefix = "l:", after = p1.cursor })
      return many["l:a"], many["l:c"], many["l:z"], table.concat(p1.keys, ","), p1.has_more, table.concat(p2.keys, ","), p2.has_more`,
    expect: { values: [1, 3, null, "l:a,l:b", true, "l:c", false] },
  },
  {
    name: "entry and put with versions and metadata",
    script: `local s = require("store").get("app:cache")
      assert(s:put("e:k", "v1", { metadata = { owner = "x" } }))
      local e = s:entry("e:k")
      local ok = s:put("e:k", "v2", { if_version = e.version })
      local _, err = s:put("e:k", "v3", { if_version = e.version })
      local _, err2 = s:put("e:k", "v4", { only_if_absent = true })
      return e.value, e.metadata.owner, ok, err:kind(), err:retryable(), err2:kind(), s:get("e:k")`,
    expect: { values: ["v1", "x", true, "Conflict", true, "AlreadyExists", "v2"] },
  },
  {
    name: "namespaces and info",
    script: `local s = require("store").get("app:cache")
      local ns = s:namespace("ns") assert(ns:set("k", 1))
      local i = s:info()
      return s:get("ns:k"), ns:get("k"), i.id, i.kind, i.max_size, i.eviction`,
    expect: { values: [1, 1, "app:cache", "store.memory", 100, "none"] },
  },
  {
    name: "a tenant is confined to its keys and cannot open other stores",
    script: `local store = require("store")
      local s = assert(store.get("app:tenant"))
      local ok = s:set("acme:k", 1)
      local _, e1 = s:set("other:k", 1)
      local _, e2 = store.get("app:cache")
      local p, e3 = s:list({ prefix = "other:" })
      return ok, e1:kind(), e2:kind(), p, e3:kind()`,
    actor: tenant("acme"),
    expect: { values: [true, "PermissionDenied", "PermissionDenied", null, "PermissionDenied"] },
  },
  {
    name: "a reader may get but not set",
    script: `local s = require("store").get("app:cache") local _, err = s:set("r:k", 1) return s:get("r:none"), err:kind()`,
    actor: READER,
    expect: { values: [null, "PermissionDenied"] },
  },
  {
    name: "bad keys, values and handles are Invalid",
    script: `local s = require("store").get("app:small")
      local _, e1 = s:set("waytoolongkey", 1)
      local _, e2 = s:set("k", function() end)
      local _, e3 = s:set("k", string.rep("x", 100))
      s:release()
      local _, e4 = s:get("k")
      return e1:kind(), e2:kind(), e3:kind(), e4:kind(), e4:message()`,
    expect: { values: ["Invalid", "Invalid", "Invalid", "Invalid", "store released"] },
  },
  {
    name: "LRU eviction",
    script: `local s = require("store").get("app:lru")
      for i = 1, 5 do s:set("x" .. i, i) end
      local small = require("store").get("app:cache")
      return s:get("x1"), s:get("x5")`,
    expect: { values: [null, 5] },
  },
  {
    name: "pool exhaustion is Unavailable and handles are auto-released",
    script: `local store = require("store")
      for i = 1, 4 do assert(store.get("app:cache")) end
      local h, err = store.get("app:cache")
      return h, err:kind(), err:retryable()`,
    expect: { values: [null, "Unavailable", true] },
  },
  { name: "args, return values and print", script: `local a, b = ... print("sum", a + b.n) return a + b.n, { x = { 1, 2 } }, print`, args: [1, { n: 2 }], expect: { values: [3, { x: [1, 2] }, "<function>"], output: "sum\t3\n" } },
  { name: "errors module kinds", script: `error(errors.new({ kind = errors.NOT_FOUND, message = "gone" }))`, expect: { kind: "NotFound" } },
  { name: "a syntax error", script: `local x = = 1`, expect: { kind: "SyntaxError" } },
  { name: "a runtime error", script: `local t = nil; return t.x`, expect: { kind: "RuntimeError" } },
  { name: "the instruction limit", script: `while true do end`, limits: { maxInstructions: 100_000 }, expect: { kind: "InstructionLimit" } },
  { name: "the store-operation limit, through pcall", script: `local s = require("store").get("app:cache") while true do pcall(s.get, s, "k") end`, limits: { maxStoreOps: 100 }, expect: { kind: "StoreOpsLimit" } },
  { name: "the output limit", script: `for i = 1, 1e6 do print(string.rep("x", 50)) end`, limits: { maxOutputBytes: 1000 }, expect: { kind: "OutputLimit" } },
  { name: "the string limit with string.rep inside pcall", script: `pcall(string.rep, "x", 1e6) return 1`, limits: { maxStringBytes: 1000 }, expect: { kind: "StringLimit" } },
  { name: "the string limit with ..", script: `local s = "x" while true do s = s .. s end`, limits: { maxStringBytes: 1000 }, expect: { kind: "StringLimit" } },
  { name: "the string limit with table.concat", script: `local t = {} for i = 1, 200 do t[i] = "abcdefgh" end return table.concat(t)`, limits: { maxStringBytes: 1000 }, expect: { kind: "StringLimit" } },
  { name: "the string limit with string.format", script: `return string.format("%s%s", string.rep("x", 600), string.rep("y", 600))`, limits: { maxStringBytes: 1000 }, expect: { kind: "StringLimit" } },
  { name: "the string limit with string.gsub", script: `return (string.rep("a", 101):gsub("a", "0123456789"))`, limits: { maxStringBytes: 1000 }, expect: { kind: "StringLimit" } },
  { name: "the string limit with string.pack", script: `return string.pack("c5000", "")`, limits: { maxStringBytes: 1000 }, expect: { kind: "StringLimit" } },
  { name: "strings at the limit are fine", script: `return #string.rep("x", 1000), #(string.rep("x", 500) .. string.rep("y", 500))`, limits: { maxStringBytes: 1000 }, expect: { values: [1000, 1000] } },
  {
    name: "string table keys never collide (fengari's own key function gave \\1\\17 and \\17\\1 one entry)",
    script: `local t = {} t["\\1\\17"] = "a" t["\\17\\1"] = "b" t[string.rep("\\1", 3)] = "c" return t["\\1\\17"], t["\\17\\1"], t["\\1\\1\\1"], t["\\17\\17"]`,
    expect: { values: ["a", "b", "c", null] },
  },
  { name: "a 10 MB string literal compiles in little memory", script: `return #"${"x".repeat(10 * 1024 * 1024)}"`, limits: { maxMemoryMb: 96 }, expect: { values: [10 * 1024 * 1024] } },
  { name: "configured Lua modules", script: `return require("greet").hello("ada")`, expect: { values: ["hi ada"] } },
];

const modules = { greet: `return { hello = function(n) return "hi " .. n end }` };
let inline: TestHost;
let worker: TestHost;

beforeAll(async () => {
  inline = makeHost({ modules });
  worker = makeHost({ modules, isolation: "worker", workers: 2 });
  await worker.host.ready();
});

afterAll(async () => {
  await inline?.host.close();
  await worker?.host.close();
});

/** What must be equal across modes. */
function comparable(r: RunResult): unknown {
  return {
    ok: r.ok,
    values: r.values,
    output: r.output,
    error: r.error && { kind: r.error.kind, message: r.error.message, retryable: r.error.retryable },
    instructions: r.stats.instructions,
    storeOps: r.stats.storeOps,
    autoReleased: r.stats.autoReleased,
  };
}

describe("worker and inline isolation give the same results", () => {
  for (const s of SCENARIOS) {
    it(s.name, async () => {
      const options = { ...(s.actor ? { actor: s.actor } : {}), ...(s.limits ? { limits: s.limits } : {}), ...(s.args ? { args: s.args } : {}) };
      const a = await inline.run(s.script, options);
      const b = await worker.run(s.script, options);
      if (s.expect.kind) expect(a.error?.kind, a.error?.message).toBe(s.expect.kind);
      else expect(a.error, a.error?.message).toBeUndefined();
      if (s.expect.values) expect(a.values).toEqual(s.expect.values);
      if (s.expect.output !== undefined) expect(a.output).toBe(s.expect.output);
      expect(comparable(b)).toEqual(comparable(a));
      expect(b.stats.peakMemoryBytes).toBeGreaterThan(0);
      expect(a.stats.peakMemoryBytes).toBeUndefined();
    });
  }

  it("host.store(), host.metrics() and host.pools() agree", async () => {
    for (const t of [inline, worker]) {
      await t.host.store("app:cache").set("host:k", { from: "host" }, { ttl: 60 });
      expect(await t.host.store("app:cache").get("host:k")).toEqual({ from: "host" });
    }
    const [a, b] = [await inline.host.metrics(), await worker.host.metrics()];
    expect(b).toEqual(a);
    expect(worker.host.pools()).toEqual(inline.host.pools());
    expect(worker.host.pools().every((p) => p.inUse === 0)).toBe(true);
  });
});

describe("the worker channel", () => {
  it("values written with set_many and put from a worker do not change when later messages reuse the channel", async () => {
    const t = makeHost({ isolation: "worker" });
    try {
      const big = "x".repeat(200);
      const r1 = await t.run(
        `local s = require("store").get("app:cache")
         assert(s:set_many({ a = 1, b = "${big}" }))
         assert(s:put("c", { n = 7 }, { metadata = { m = 1 } }))
         for i = 1, 50 do s:set_many({ ["junk" .. i] = string.rep("z", 300) }) end
         local many = s:get_many({ "a", "b" })
         for i = 1, 50 do s:get_many({ "junk" .. i }) end
         return many.a, many.b == "${big}", s:get("c").n, s:entry("c").metadata.m`,
      );
      expect(r1.values).toEqual([1, true, 7, 1]);
      expect(await t.host.store("app:cache").get("a")).toBe(1);
      expect(await t.host.store("app:cache").get("b")).toBe(big);
    } finally {
      await t.host.close();
    }
  });
});

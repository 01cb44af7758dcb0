/**
 * `luastore test` on a registry whose stores are store.redis. By default each file gets in-memory
 * stand-ins with the same limits on the virtual clock, so TTL cases pass without waiting and
 * without touching Redis; with realStores the configured Redis is used, whose TTLs follow real time.
 * The stand-in cases need no Redis (the URL is never dialled); the realStores case needs
 * LUASTORE_REDIS_URL.
 */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import type { RegistryDocument } from "../../src/registry/types.js";
import { luaProject, statuses } from "../harness/project.js";

const url = process.env.LUASTORE_REDIS_URL || undefined;
const prefix = `luastore-test:${process.pid}:harness:`;

/** Two redis stores (one with a small max_size), as a production registry would declare them. */
function redisRegistry(target: string): RegistryDocument {
  return {
    version: "1.0",
    namespace: "app",
    entries: [
      { name: "cache", kind: "store.redis", url: target, key_prefix: prefix, command_timeout: "300ms", connect_timeout: "300ms" },
      { name: "small", kind: "store.redis", url: target, key_prefix: prefix, max_size: 2, max_key_length: 8 },
    ],
  };
}

/** TTL cases on the virtual clock (`test.clock.advance` never sleeps). */
const TTL_CASES = `
local test = require("test")
local store = require("store")
local time = require("time")

test.describe("ttl", function()
  local s
  test.before_each(function()
    test.reset_stores()
    s = store.get("app:cache")
  end)
  test.after_each(function() s:release() end)

  test.it("a key lives until its ttl, then is gone", function()
    test.no_error(s:set("k", "v", 10))
    test.clock.advance(9.999)
    test.eq(s:get("k"), "v")
    test.clock.advance(0.001)
    test.is_nil(s:get("k"))
    test.eq(s:has("k"), false)
  end)

  test.it("ttl counts down with the clock", function()
    s:set("k", 1, 60)
    test.clock.advance(15)
    test.eq(s:ttl("k"), 45)
  end)

  test.it("incr's init_ttl applies once, on creation", function()
    test.eq(s:incr("n", 1, 0, 5), 1)
    test.clock.advance(4)
    test.eq(s:incr("n"), 2)
    test.clock.advance(1)
    test.is_nil(s:get("n"))
  end)

  test.it("expire moves the expiry, 0 removes it", function()
    s:set("k", 1, 5)
    s:expire("k", 100)
    test.clock.advance(50)
    test.eq(s:get("k"), 1)
    s:expire("k", 0)
    test.clock.advance(1e6)
    test.eq(s:get("k"), 1)
  end)

  test.it("entry's expires_at is on the virtual clock", function()
    s:set("k", 1, 30)
    test.eq(s:entry("k").expires_at, time.now() + 30)
  end)

  test.it("list skips expired keys", function()
    s:set("a", 1, 1)
    s:set("b", 1)
    test.clock.advance(2)
    test.eq(s:list({}).keys, { "b" })
  end)
end)

test.it("the stand-in keeps the store's limits: max_size and max_key_length", function()
  local small = store.get("app:small")
  test.no_error(small:set("a", 1))
  test.no_error(small:set("b", 1))
  local _, full = small:set("c", 1)
  test.error_kind(full, errors.UNAVAILABLE)
  local _, long = small:set("123456789", 1)
  test.error_kind(long, errors.INVALID)
end)
`;

describe("luastore test on store.redis entries", () => {
  const projects: { remove(): void }[] = [];
  afterAll(() => {
    for (const p of projects) p.remove();
  });

  it("by default: in-memory stand-ins on the virtual clock; every TTL case passes and Redis is never dialled", async () => {
    // Nothing listens on port 1: a real store.redis would fail every call here.
    const project = luaProject({ "ttl_test.lua": TTL_CASES });
    projects.push(project);
    const result = await project.runFile(undefined, { registry: redisRegistry("redis://127.0.0.1:1/0") });
    expect(result.error).toBeUndefined();
    expect(result.tests.filter((t) => t.status !== "passed").map((t) => [t.path.join(" > "), t.failure?.message])).toEqual([]);
    expect(Object.values(statuses(result))).toEqual(Array(7).fill("passed"));
  });

  it("stand-ins are fresh for every file", async () => {
    const write = `local test = require("test")
      test.it("starts empty, then writes", function()
        local s = require("store").get("app:cache")
        test.is_nil(s:get("shared"))
        s:set("shared", 1)
      end)`;
    const project = luaProject({ "a_test.lua": write, "b_test.lua": write });
    projects.push(project);
    const summary = await project.runAll({ registry: redisRegistry("redis://127.0.0.1:1/0") });
    expect(summary).toMatchObject({ passed: 2, failed: 0 });
  });

  (url === undefined ? it.skip : it)(
    `with realStores: the configured Redis, in real time${url === undefined ? " (skipped: set LUASTORE_REDIS_URL)" : ""}`,
    async () => {
      const project = luaProject({
        "real_test.lua": `local test = require("test")
          local time = require("time")
          test.it("writes to Redis and waits for real", function()
            local s = require("store").get("app:cache")
            s:set("real", "yes", 0.2)
            test.eq(s:get("real"), "yes")
            time.sleep(0.3)
            test.is_nil(s:get("real"))
            s:set("kept", 1)
          end)
          test.it("cannot move the clock", function()
            test.throws(function() test.clock.advance(10) end, "real clock")
          end)`,
      });
      projects.push(project);
      const result = await project.runFile(undefined, { registry: redisRegistry(url!), realStores: true });
      expect(result.tests.filter((t) => t.status !== "passed").map((t) => t.failure?.message)).toEqual([]);
      expect(Object.values(statuses(result))).toEqual(["passed", "passed"]);
      const admin = new Redis(url!);
      try {
        // ... and it is in Redis, where it expires by Redis's clock.
        const key = `${prefix}{app:cache}:kept`;
        expect(await admin.hexists(key, "v")).toBe(1);
        await admin.del(key, `${prefix}{app:cache}:real`, ...["#keys", "#expiry", "#sizes", "#meta"].map((k) => `${prefix}{app:cache}${k}`));
      } finally {
        admin.disconnect();
      }
    },
  );
});

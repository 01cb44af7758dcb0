/**
 * store.redis bulk calls of 10 000 keys, on a redis-server of this file's own: one such call is
 * one script, which holds Redis for a few hundred milliseconds on a loaded machine, and the
 * real-time TTL cases of the shared server's suite would measure that pause as lost time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { encodeValue } from "../../src/codec/msgpack.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";
import { makeHost, type TestHost } from "../helpers.js";
import { freePort, hasRedisServer, RedisServer } from "./redis-server.js";

const enabled = process.env.LUASTORE_REDIS_URL !== undefined && (process.env.CI === "true" || hasRedisServer());
const SKIPPED = "skipped: set LUASTORE_REDIS_URL and install redis-server to run against a real Redis";

(enabled ? describe : describe.skip)(`store.redis bulk calls${enabled ? "" : ` (${SKIPPED})`}`, () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = new RedisServer(await freePort());
    await server.start();
  });
  afterAll(async () => {
    await server?.kill();
  });

  function redisStore(): Store {
    const entry = { name: "bulk", kind: "store.redis", url: server.url, max_size: 20_000, command_timeout: "30s" };
    const registry = loadRegistry({ version: "1.0", namespace: "bulk", entries: [entry as never] });
    return createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false });
  }

  it("setMany and deleteMany take 10 000 keys in one call each, and flush removes them all", async () => {
    const store = redisStore();
    try {
      await store.flush();
      const entries: [string, Uint8Array][] = [];
      for (let i = 0; i < 10_000; i++) entries.push([`bulk:${i}`, encodeValue(i)]);
      await store.setMany(entries, 0);
      expect(await store.size()).toBe(10_000);
      expect(await store.deleteMany(entries.slice(0, 9_000).map(([k]) => k))).toBe(9_000);
      expect(await store.info()).toMatchObject({ size: 1_000 });
      await store.setMany(entries.slice(0, 9_000), 0);
      expect(await store.flush()).toBe(10_000);
      expect(await store.info()).toMatchObject({ size: 0, bytes: 0 });
    } finally {
      await store.close();
    }
  });

  it("a script's set_many and delete_many of 10 000 keys", async () => {
    let t: TestHost | undefined;
    try {
      t = makeHost({
        registry: { version: "1.0", namespace: "app", entries: [{ name: "b", kind: "store.redis", url: server.url, max_size: 20_000, command_timeout: "30s" }] },
      } as never);
      const values = await t.eval(`
        local s = assert(require("store").get("app:b"))
        local t = {} for i = 1, 10000 do t["k" .. i] = i end
        assert(s:set_many(t))
        local keys = {} for i = 1, 10000 do keys[i] = "k" .. i end
        return s:delete_many(keys), s:info().size`);
      expect(values).toEqual([10_000, 0]);
    } finally {
      await t?.host.close();
    }
  });
});

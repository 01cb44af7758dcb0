/**
 * store.redis against a real Redis: the URL comes from LUASTORE_REDIS_URL (.ci/run starts a
 * redis-server and sets it). Unset outside CI, these tests are skipped with the reason in their
 * title; unset in CI, they fail.
 */
import { Buffer } from "node:buffer";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { systemClock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind } from "../../src/errors.js";
import { loadRegistry } from "../../src/registry/index.js";
import type { RedisStoreConfig } from "../../src/registry/types.js";
import { createStore } from "../../src/store/create-store.js";
import { RedisStore } from "../../src/store/redis.js";
import { commonStoreConfig, storeSuite, type SuiteStoreConfig } from "./store-suite.js";

const url = process.env.LUASTORE_REDIS_URL || undefined;
const SKIPPED = "skipped: set LUASTORE_REDIS_URL=redis://127.0.0.1:6379/0 to run against a real Redis";

/** A store config with a key prefix of its own, so that every store starts empty. */
export function redisConfig(config: SuiteStoreConfig = {}, overrides: Partial<RedisStoreConfig> = {}): RedisStoreConfig {
  return {
    ...commonStoreConfig(config),
    kind: "store.redis",
    url,
    urlEnv: undefined,
    nodes: undefined,
    sentinels: undefined,
    sentinelName: undefined,
    username: undefined,
    usernameEnv: undefined,
    password: undefined,
    passwordEnv: undefined,
    tls: { caFile: undefined, certFile: undefined, keyFile: undefined },
    keyPrefix: `luastore-test:${process.pid}:${Date.now().toString(36)}:${++stores}:`,
    connectTimeoutMs: 2000,
    commandTimeoutMs: 1000,
    cluster: false,
    minReplicas: 0,
    replicaTimeoutMs: undefined,
    eviction: "none",
    ...overrides,
  };
}
let stores = 0;

/** The topologies test/servers/redis-topologies.sh exports, each as the config fields that reach it. */
export function topologies(): { name: string; overrides: Partial<RedisStoreConfig> | undefined }[] {
  const env = process.env;
  const list = (value: string | undefined): string[] | undefined => (value ? value.split(",") : undefined);
  const nodes = list(env.LUASTORE_REDIS_CLUSTER_NODES);
  const sentinels = list(env.LUASTORE_REDIS_SENTINELS);
  const tlsUrl = env.LUASTORE_REDIS_TLS_URL || undefined;
  return [
    { name: "a 6-node Cluster", overrides: nodes && { url: undefined, nodes } },
    {
      name: "Sentinel",
      overrides: sentinels && {
        url: undefined,
        sentinels: sentinels.map((s) => ({ host: s.split(":")[0]!, port: Number(s.split(":")[1]) })),
        sentinelName: env.LUASTORE_REDIS_SENTINEL_NAME,
      },
    },
    {
      name: "TLS with an ACL user",
      overrides: tlsUrl === undefined ? undefined : {
        url: tlsUrl,
        username: env.LUASTORE_REDIS_TLS_USER,
        password: env.LUASTORE_REDIS_TLS_PASSWORD,
        tls: { caFile: env.LUASTORE_REDIS_TLS_CA, certFile: env.LUASTORE_REDIS_TLS_CERT, keyFile: env.LUASTORE_REDIS_TLS_KEY },
      },
    },
  ];
}

if (process.env.CI === "true") {
  for (const { name, overrides } of topologies()) {
    if (overrides !== undefined) continue;
    describe(`store.redis on ${name}`, () => {
      it("runs in CI", () => {
        expect.fail(".ci/run must start test/servers/redis-topologies.sh and export its variables");
      });
    });
  }
}

/** A plain client for looking at what the store wrote, and for cleaning up after the tests. */
const admin = url === undefined ? undefined : new Redis(url, { lazyConnect: true });
const prefixes: string[] = [];

afterAll(async () => {
  if (admin === undefined) return;
  // Leaves a development Redis as it was: SCAN (never KEYS) for every key the tests' prefixes made.
  for (const prefix of prefixes) {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
    let cursor = "0";
    do {
      const [next, keys] = await admin.scanBuffer(cursor, "MATCH", pattern, "COUNT", "1000");
      cursor = next.toString();
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== "0");
  }
  admin.disconnect();
});

/** Opens a store; its keys are deleted after the tests. */
async function openStore(config: RedisStoreConfig): Promise<RedisStore> {
  prefixes.push(config.keyPrefix);
  return new RedisStore(config, { clock: systemClock, sweepTimer: false });
}

if (url === undefined && process.env.CI === "true") {
  describe("store.redis", () => {
    it("runs against a real Redis in CI", () => {
      expect.fail("LUASTORE_REDIS_URL is not set: .ci/run must start redis-server and export it");
    });
  });
}

const LRU = "store.redis has no LRU eviction (refused at load); see 'info tells the size' in redis.test.ts";

const SKIPS = [
  {
    reason: LRU,
    tests: [
      "with lru, a new key into a full store evicts the least recently used key",
      "with lru, a get makes a key recently used",
      "with lru, a write makes a key recently used",
      "with lru, setMany evicts other keys and never its own",
      "with lru, a share past its quota evicts its own oldest keys, never another share's",
      "with lru, setMany under a quota evicts the share's own oldest keys, and a batch past max_keys writes nothing",
      "info tells size, max_size and eviction",
    ],
  },
  {
    reason: "one 10 000-key script holds the shared Redis long enough for concurrent real-time TTL cases to miss; redis-bulk.test.ts runs it on a server of its own",
    tests: ["setMany and deleteMany take 10 000 keys in one call"],
  },
];

(url === undefined ? describe.skip : describe.concurrent)(`store.redis${url === undefined ? ` (${SKIPPED})` : ""}`, () => {
  storeSuite("conformance", ({ config }) => openStore(redisConfig(config)), { realTime: true, skip: SKIPS });
});

// The same suite on each topology test/servers/redis-topologies.sh starts (.ci/run does).
for (const { name, overrides } of topologies()) {
  (overrides === undefined ? describe.skip : describe.concurrent)(
    `store.redis on ${name}${overrides === undefined ? " (skipped: run test/servers/redis-topologies.sh, see its header)" : ""}`,
    () => {
      storeSuite("conformance", ({ config }) => new RedisStore(redisConfig(config, overrides), { clock: systemClock, sweepTimer: false }), {
        realTime: true,
        skip: SKIPS,
      });
    },
  );
}

(url === undefined ? describe.skip : describe)(`store.redis specifics${url === undefined ? ` (${SKIPPED})` : ""}`, () => {
  const opened: RedisStore[] = [];
  afterAll(async () => {
    for (const store of opened) await store.close();
  });
  async function open(config: SuiteStoreConfig = {}, overrides: Partial<RedisStoreConfig> = {}): Promise<RedisStore> {
    const store = await openStore(redisConfig(config, overrides));
    opened.push(store);
    return store;
  }

  it("an entry is a hash at <key_prefix>{<store id>}:<key bytes> that Redis expires itself", async () => {
    const store = await open({}, { keyPrefix: `luastore-test:${process.pid}:layout:` });
    prefixes.push(`luastore-test:${process.pid}:layout:`);
    await store.put("k\xff", encodeValue("v"), { ttlMs: 60_000, onlyIfAbsent: false, metadata: encodeValue("m") });
    const base = `luastore-test:${process.pid}:layout:{suite:store}`;
    const key = Buffer.concat([Buffer.from(`${base}:`), Buffer.from([0x6b, 0xff])]);
    const hash = await admin!.hgetallBuffer(key);
    expect(Object.keys(hash).sort()).toEqual(["m", "v", "ver"]);
    expect(decodeValue(hash.v!)).toBe("v");
    expect(await admin!.pttl(key)).toBeGreaterThan(59_000);
    expect(await admin!.zrangeBuffer(`${base}#keys`, "0", "-1")).toEqual([Buffer.from([0x6b, 0xff])]);
    expect(await admin!.zcard(`${base}#expiry`)).toBe(1);
    await store.set("k\xff", encodeValue("v"), 0);
    expect(await admin!.pttl(key)).toBe(-1);
    expect(await admin!.zcard(`${base}#expiry`)).toBe(0);
  });

  it("two store objects with the same id share keys, versions and max_size", async () => {
    const config = redisConfig({ maxSize: 2 });
    const a = await openStore(config);
    const b = await openStore(config);
    opened.push(a, b);
    await a.set("x", encodeValue(1), 0);
    expect(decodeValue((await b.get("x"))!)).toBe(1);
    const version = (await a.entry("x"))!.version;
    expect((await b.entry("x"))!.version).toBe(version);
    expect(await b.put("x", encodeValue(2), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("ok");
    expect(await a.put("x", encodeValue(3), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("conflict");
    await b.set("y", encodeValue(1), 0);
    await expect(a.set("z", encodeValue(1), 0)).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
  });

  it("a key Redis expired is reclaimed from the index by the sweep and counted as expired", async () => {
    const store = await open();
    await store.set("short", encodeValue(1), 50);
    await store.set("long", encodeValue(1), 0);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect((await store.stats()).size).toBe(2);
    expect(await store.sweep()).toBe(1);
    expect(await store.stats()).toMatchObject({ size: 1, expired: 1, bytes: 5 });
  });

  it("info tells the size, max_size and eviction none", async () => {
    const store = await open({ maxSize: 7 });
    await store.set("a", encodeValue(1), 0);
    expect(await store.info()).toMatchObject({ size: 1, bytes: 2, maxSize: 7, eviction: "none" });
  });

  it("info tells free_bytes from the server's maxmemory, and none without one", async () => {
    const store = await open();
    const admin = new Redis(url!, { lazyConnect: true });
    await admin.connect();
    const before = ((await admin.config("GET", "maxmemory")) as string[])[1]!;
    try {
      // A bound far above what tests hold: nothing is evicted while it is set.
      await admin.config("SET", "maxmemory", String(1 << 30));
      const used = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))![1]);
      const info = await store.info();
      expect(info.freeBytes).toBeGreaterThan(0);
      expect(info.freeBytes).toBeLessThanOrEqual((1 << 30) - used + (1 << 20));
      await admin.config("SET", "maxmemory", "0");
      expect((await store.info()).freeBytes).toBeUndefined();
    } finally {
      await admin.config("SET", "maxmemory", before);
      admin.disconnect();
    }
  });

  it("createStore reads the URL from url_env, and refuses an unset variable", async () => {
    const registry = loadRegistry({
      version: "1.0",
      namespace: "env",
      entries: [{ name: "r", kind: "store.redis", url_env: "MY_REDIS", key_prefix: `luastore-test:${process.pid}:env:` }],
    });
    prefixes.push(`luastore-test:${process.pid}:env:`);
    const store = createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false, env: { MY_REDIS: url } });
    try {
      await store.set("a", encodeValue(1), 0);
      expect(await store.has("a")).toBe(true);
    } finally {
      await store.close();
    }
    expect(() => createStore(registry.entries[0]!, { clock: systemClock, env: {} })).toThrow(
      expect.objectContaining({ kind: ErrorKind.INVALID, message: expect.stringContaining("MY_REDIS") }),
    );
  });

  it("after close, calls fail as Unavailable and the connection is gone", async () => {
    const store = await openStore(redisConfig());
    await store.set("a", encodeValue(1), 0);
    await store.close();
    await expect(store.get("a")).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE });
  });
});

const tls = topologies().find((t) => t.name === "TLS with an ACL user")!.overrides;
(tls === undefined ? describe.skip : describe)(
  `store.redis credentials${tls === undefined ? " (skipped: run test/servers/redis-topologies.sh)" : ""}`,
  () => {
    const password = process.env.LUASTORE_REDIS_TLS_PASSWORD!;

    it("a wrong password fails as Unavailable, and no message shows the password", async () => {
      const wrong = `wrong-${password}`;
      const store = new RedisStore(redisConfig({}, { ...tls, password: wrong, connectTimeoutMs: 500 }), {
        clock: systemClock,
        sweepTimer: false,
      });
      try {
        const error = await Promise.resolve(store.get("a")).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
        expect(String((error as Error).message)).not.toContain(wrong);
        expect(JSON.stringify(error)).not.toContain(wrong);
      } finally {
        await store.close();
      }
    });

    it("luastore run --stats with credentials from *_env shows neither the user's password nor the URL's", async () => {
      const dir = mkdtempSync(join(tmpdir(), "luastore-redis-cli-"));
      const registry = join(dir, "registry.yaml");
      writeFileSync(
        registry,
        [
          'version: "1.0"',
          "namespace: app",
          "entries:",
          "  - name: cache",
          "    kind: store.redis",
          `    url: ${process.env.LUASTORE_REDIS_TLS_URL}`,
          `    key_prefix: "luastore-test:${process.pid}:cli:"`,
          "    username_env: LUASTORE_TEST_REDIS_USER",
          "    password_env: LUASTORE_TEST_REDIS_PASSWORD",
          "    tls:",
          `      ca_file: ${process.env.LUASTORE_REDIS_TLS_CA}`,
          `      cert_file: ${process.env.LUASTORE_REDIS_TLS_CERT}`,
          `      key_file: ${process.env.LUASTORE_REDIS_TLS_KEY}`,
        ].join("\n"),
      );
      const policies = join(dir, "policies");
      mkdirSync(policies);
      writeFileSync(
        join(policies, "all.yaml"),
        'version: "1.0"\npolicies:\n  - id: all\n    effect: allow\n    actions: ["store.get", "store.key.*"]\n    resources: ["app:*"]\n',
      );
      const script = join(dir, "ok.lua");
      writeFileSync(script, `local s = require("store").get("app:cache")\nassert(s:set("k", 1))\nprint(s:get("k"))`);
      process.env.LUASTORE_TEST_REDIS_USER = process.env.LUASTORE_REDIS_TLS_USER;
      process.env.LUASTORE_TEST_REDIS_PASSWORD = password;
      let stdout = "";
      let stderr = "";
      try {
        const io = { stdout: (t: string) => (stdout += t), stderr: (t: string) => (stderr += t) };
        const code = await main(["run", script, "--registry", registry, "--policies", policies, "--stats", "--isolation", "inline"], io);
        expect([code, stdout]).toEqual([0, "1\n"]);
        expect(JSON.parse(stderr)).toMatchObject({ stores: [{ id: "app:cache", sets: 1 }] });
        expect(stderr).not.toContain(password);
      } finally {
        delete process.env.LUASTORE_TEST_REDIS_USER;
        delete process.env.LUASTORE_TEST_REDIS_PASSWORD;
      }
    });
  },
);

/**
 * store.redis under faults and sharing, against real redis-server processes: one the test starts
 * on a free port and stops (for the outage), and the one LUASTORE_REDIS_URL names (for two hosts).
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind, StoreError } from "../../src/errors.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";
import { runTogether } from "./fixtures/child-process.js";
import { freePort, hasRedisServer, RedisServer } from "./redis-server.js";

const url = process.env.LUASTORE_REDIS_URL || undefined;
const SKIPPED = "skipped: set LUASTORE_REDIS_URL and install redis-server to run against a real Redis";
const enabled = url !== undefined && (process.env.CI === "true" || hasRedisServer());
const one = { value: 1, float: false };
const zero = { value: 0, float: false };

function redisStore(entry: Record<string, unknown>): Store {
  const registry = loadRegistry({ version: "1.0", namespace: "faults", entries: [{ name: "r", kind: "store.redis", ...entry } as never] });
  return createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false });
}

/** How a call settled, and after how long. */
async function timed(call: () => unknown): Promise<{ ms: number; error?: unknown }> {
  const start = performance.now();
  try {
    await call();
    return { ms: performance.now() - start };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

(enabled ? describe : describe.skip)(`store.redis faults${enabled ? "" : ` (${SKIPPED})`}`, () => {
  const COMMAND_TIMEOUT = 400;
  let server: RedisServer;
  let store: Store;

  beforeAll(async () => {
    server = new RedisServer(await freePort());
    await server.start();
    store = redisStore({ url: server.url, key_prefix: "faults:", command_timeout: `${COMMAND_TIMEOUT}ms`, connect_timeout: "1s" });
  });

  afterAll(async () => {
    await store?.close();
    await server?.kill();
  });

  it("calls fail as Unavailable within command_timeout while Redis is down, and succeed once it is back", async () => {
    await store.set("before", encodeValue(1), 0);
    expect(decodeValue((await store.get("before"))!)).toBe(1);

    // The server dies while calls are in flight.
    const inFlight = Array.from({ length: 200 }, () => timed(() => store.incr("n", one, zero, 0)));
    await server.kill();
    const settled = await Promise.all(inFlight);
    for (const { ms, error } of settled) {
      if (error !== undefined) expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
      expect(ms).toBeLessThan(COMMAND_TIMEOUT + 500);
    }

    // Calls made while it is down: every method fails the same way, within the timeout.
    const calls: (() => unknown)[] = [
      async () => store.get("before"),
      async () => store.set("x", encodeValue(1), 0),
      async () => store.incr("n", one, zero, 0),
      async () => store.list({ prefix: "", limit: 10 }),
      async () => store.size(),
    ];
    for (const call of calls) {
      const { ms, error } = await timed(call);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: "STORE_ERROR", kind: ErrorKind.UNAVAILABLE, retryable: true });
      expect(ms).toBeLessThan(COMMAND_TIMEOUT + 500);
    }

    // Back on the same port: the same store object recovers by itself.
    await server.start();
    const deadline = Date.now() + 10_000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      const { error } = await timed(() => store.set("after", encodeValue(2), 0));
      recovered = error === undefined;
      if (!recovered) expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
    }
    expect(recovered).toBe(true);
    expect(decodeValue((await store.get("after"))!)).toBe(2);
    expect(decodeValue(await store.incr("n", one, zero, 0))).toBe(1);
  });

  it("a call to a Redis too slow to answer fails as Unavailable within command_timeout, and the next ones succeed", async () => {
    const admin = new Redis(server.url);
    try {
      await store.set("slow", encodeValue(1), 0);
      await admin.ping();
      const sleeping = admin.call("DEBUG", "SLEEP", "1");
      const { ms, error } = await timed(() => store.get("slow"));
      expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
      expect(ms).toBeLessThan(COMMAND_TIMEOUT + 300);
      await sleeping;
      expect(decodeValue((await store.get("slow"))!)).toBe(1);
      expect(decodeValue(await store.incr("slow", one, zero, 0))).toBe(2);
    } finally {
      admin.disconnect();
    }
  });

  it("calls made together leave in one write (auto-pipelining), as Redis's read count shows", async () => {
    const admin = new Redis(server.url);
    try {
      await store.set("p", encodeValue(1), 0);
      const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await admin.info("stats"))![1]);
      const before = await reads();
      const values = await Promise.all(Array.from({ length: 100 }, () => store.get("p")));
      const after = await reads();
      expect(values.map((v) => decodeValue(v!))).toEqual(Array(100).fill(1));
      // One read for the batch (two if the server's read buffer splits it) and one for the INFO:
      // far fewer than the 100 reads of commands written one by one.
      expect(after - before).toBeLessThanOrEqual(4);
    } finally {
      admin.disconnect();
    }
  });

  it("a store whose Redis is not there yet fails as Unavailable within connect_timeout", async () => {
    const nobody = await freePort();
    const lonely = redisStore({ url: `redis://127.0.0.1:${nobody}/0`, connect_timeout: "300ms", command_timeout: "300ms" });
    try {
      const { ms, error } = await timed(() => lonely.get("a"));
      expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
      expect(ms).toBeGreaterThanOrEqual(250);
      expect(ms).toBeLessThan(800);
    } finally {
      await lonely.close();
    }
  });

  it("two processes incrementing one counter on one Redis end with the exact total", async () => {
    const keyPrefix = `luastore-test:${process.pid}:two-hosts:`;
    const job = {
      entry: { name: "shared", kind: "store.redis", url: url!, key_prefix: keyPrefix },
      job: "incr",
      count: 300,
    } as const;
    const outputs = await runTogether(job, 2);
    expect(outputs).toEqual([["done"], ["done"]]);
    const shared = redisStore({ name: "shared", url, key_prefix: keyPrefix });
    try {
      expect(decodeValue((await shared.get("counter"))!)).toBe(600);
      await shared.clear();
    } finally {
      await shared.close();
    }
    // Two child processes that compile TypeScript at start: seconds on a busy machine; not a speed bound.
  }, 120_000);
});

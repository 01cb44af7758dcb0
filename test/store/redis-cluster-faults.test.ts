/**
 * store.redis on a real Redis Cluster under faults: the 6-node Cluster test/servers/redis-topologies.sh
 * starts (LUASTORE_REDIS_CLUSTER_NODES, LUASTORE_REDIS_TOPOLOGY_DIR). Each test's store lives on a
 * master other than the one the conformance suite's store uses, so that both may run at once (the
 * Cluster is started with cluster-require-full-coverage no).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind, StoreError } from "../../src/errors.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";
import { answersPing, freePort, presentKeys } from "./redis-server.js";

const seeds = process.env.LUASTORE_REDIS_CLUSTER_NODES?.split(",").filter((s) => s !== "");
const topologyDir = process.env.LUASTORE_REDIS_TOPOLOGY_DIR;
const enabled = seeds !== undefined && seeds.length > 0 && topologyDir !== undefined;
const SKIPPED = "skipped: run test/servers/redis-topologies.sh (see its header) to start a Cluster";
const one = { value: 1, float: false };
const zero = { value: 0, float: false };
const COMMAND_TIMEOUT = 300;

if (!enabled && process.env.CI === "true") {
  describe("store.redis Cluster faults", () => {
    it("runs in CI", () => {
      expect.fail(".ci/run must start test/servers/redis-topologies.sh and export its variables");
    });
  });
}

function clusterStore(name: string, entry: Record<string, unknown> = {}): Store {
  const registry = loadRegistry({
    version: "1.0",
    namespace: "cluster-faults",
    entries: [
      {
        name,
        kind: "store.redis",
        nodes: seeds,
        key_prefix: `luastore-test:${process.pid}:`,
        command_timeout: `${COMMAND_TIMEOUT}ms`,
        connect_timeout: "2s",
        ...entry,
      } as never,
    ],
  });
  return createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false });
}

/** How a call settled, and after how long. */
async function timed<T>(call: () => T | Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await call();
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

(enabled ? describe : describe.skip)(`store.redis Cluster faults${enabled ? "" : ` (${SKIPPED})`}`, () => {
  let admin: Cluster;
  /** The masters the tests of this file may disturb: none serves the conformance suite's store. */
  let spare: string[];
  /** Store names whose slot each spare master serves. */
  const names = new Map<string, string>();

  beforeAll(async () => {
    admin = new Cluster(seeds!.map((s) => ({ host: new URL(s).hostname, port: Number(new URL(s).port) })));
    await admin.ping();
    const owner = (tag: string): string => admin.slots[slotOf(tag)]![0]!;
    const busy = owner("{suite:store}");
    spare = [...new Set(admin.nodes("master").map((n) => `${n.options.host}:${n.options.port}`))].filter((m) => m !== busy);
    for (let i = 0; names.size < spare.length; i++) {
      const name = `s${i}`;
      const master = owner(`{cluster-faults:${name}}`);
      if (spare.includes(master) && !names.has(master)) names.set(master, name);
    }
  });

  afterAll(async () => {
    admin?.disconnect();
  });

  /** A plain connection to one node, `host:port`. */
  function nodeClient(node: string): Redis {
    const [host, port] = node.split(":");
    return new Redis({ host: host!, port: Number(port) });
  }

  it("an incr that timed out on a paused master is never applied later, even once the connection drops", async () => {
    const master = spare[0]!;
    const store = clusterStore(names.get(master)!);
    const node = nodeClient(master);
    try {
      // The master knows the incr script already, so that a resend would run (not fail NOSCRIPT).
      await store.incr("warm", one, zero, 0);
      await node.call("CLIENT", "PAUSE", "10000", "WRITE");
      // The paused master holds the script; the call fails at command_timeout, long before the
      // pause ends (10 s: far larger, so that the order cannot depend on the machine's speed).
      const { ms, error } = await timed(() => store.incr("counter", one, zero, 0));
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
      expect(ms).toBeLessThan(5000);
      // Drop luastore's connection (the server discards the paused command), then let writes go.
      const clients = String(await node.call("CLIENT", "LIST", "TYPE", "normal"));
      const ids = clients
        .split("\n")
        .filter((line) => line.includes(" name=luastore:cluster-faults:"))
        .map((line) => /^id=(\d+)/.exec(line)![1]!);
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) await node.call("CLIENT", "KILL", "ID", id);
      await node.call("CLIENT", "UNPAUSE");
      // The store reconnects by itself; a resend would have run by the time a later call succeeds
      // and a quarter second more has passed (ioredis resent after 100 ms).
      let recovered = false;
      for (let i = 0; i < 100 && !recovered; i++) {
        recovered = (await timed(() => store.set("after", encodeValue(1), 0))).error === undefined;
      }
      expect(recovered).toBe(true);
      await sleep(250);
      expect(await store.get("counter")).toBeUndefined();
    } finally {
      await node.call("CLIENT", "UNPAUSE").catch(() => {});
      node.disconnect();
      await store.close();
    }
  });

  it("a store starts and works when the first seed of its nodes list is down", async () => {
    const down = `redis://127.0.0.1:${await freePort()}`;
    const store = clusterStore(names.get(spare[0]!)!, { nodes: [down, ...seeds!] });
    try {
      await store.set("seeded", encodeValue("yes"), 0);
      expect(decodeValue((await store.get("seeded"))!)).toBe("yes");
    } finally {
      await store.close();
    }
  });

  it("a master killed mid-run: calls fail Unavailable, recover after promotion, and none reported failed is applied later", async () => {
    const master = spare[1] ?? spare[0]!;
    const store = clusterStore(names.get(master)!, { command_timeout: "500ms" });
    const port = master.split(":")[1]!;
    try {
      await store.set("warm", encodeValue(1), 0);
      // Each call adds a key of its own, so that which calls took effect can be read afterwards.
      const acked: number[] = [];
      const failed: number[] = [];
      let next = 0;
      let killed = false;
      let recoveredAfterKill = 0;
      const worker = async (): Promise<void> => {
        while (recoveredAfterKill < 50) {
          const i = next++;
          const { error } = await timed(() => store.add(`k${i}`, encodeValue(i), 0));
          if (error === undefined) {
            acked.push(i);
            if (killed) recoveredAfterKill++;
          } else {
            expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
            failed.push(i);
            if (!killed) throw error;
            // A failing call returns within command_timeout: pace the loop like a caller would.
            await sleep(20);
          }
        }
      };
      const workers = Array.from({ length: 4 }, worker);
      while (acked.length < 200) await sleep(5);
      const pid = Number(readFileSync(join(topologyDir!, port, "pid"), "utf8"));
      process.kill(pid, "SIGKILL");
      killed = true;
      await Promise.all(workers);
      expect(failed.length).toBeGreaterThan(0);

      // Which failed calls took effect (each at most once, before its failure was reported) ...
      const present = (keys: number[]): Promise<number[]> => presentKeys(store, keys);
      const appliedFailures = await present(failed);
      // ... and none more a while later: no resend of a call its caller was told had failed.
      await sleep(500);
      expect(await present(failed)).toEqual(appliedFailures);
      // Acknowledged writes: all there, except those the dead master acknowledged but had not yet
      // replicated (Redis replication is asynchronous; see the README). Those can only be from
      // before the kill, and every write acknowledged after the promotion is there.
      const afterKill = acked.slice(-recoveredAfterKill);
      expect(await present(afterKill)).toEqual(afterKill);
    } finally {
      await store.close();
      await restart(port);
    }
  }, 60_000);

  /** Starts the killed node again (it rejoins as a replica) and waits until every slot is served. */
  async function restart(port: string): Promise<void> {
    spawnSync("sh", [join(topologyDir!, port, "start")], { stdio: "ignore" });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const nodes = seeds!.map((s) => `127.0.0.1:${new URL(s).port}`);
      let ok = true;
      for (const node of nodes) {
        const client = nodeClient(node);
        try {
          const info = String(await client.call("CLUSTER", "INFO"));
          if (!info.includes("cluster_state:ok") || !info.includes("cluster_slots_ok:16384")) ok = false;
          const role = (await client.call("ROLE")) as unknown[];
          if (role[0] === "slave" && role[3] !== "connected") ok = false;
        } catch {
          ok = false;
        } finally {
          client.disconnect();
        }
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the Cluster did not recover after restarting node ${port}`);
      await sleep(200);
    }
  }
});

/** The Cluster slot of a hash tag `{...}` (CRC16/XMODEM mod 16384). */
function slotOf(key: string): number {
  const open = key.indexOf("{");
  const close = key.indexOf("}", open + 1);
  const tag = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

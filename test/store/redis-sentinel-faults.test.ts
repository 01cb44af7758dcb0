/**
 * store.redis through Redis Sentinel when the primary dies: a private setup of the test's own (a
 * primary, a replica and one sentinel on free loopback ports), so that killing the primary disturbs
 * no other test. Calls fail as Unavailable meanwhile, recover once the sentinel promotes the
 * replica, and no call reported failed is applied later.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind } from "../../src/errors.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";
import { answersPing, freePort, pidOn, presentKeys } from "./redis-server.js";

const enabled =
  spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0 &&
  spawnSync("redis-sentinel", ["--version"], { stdio: "ignore" }).status === 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const answers = (port: number): Promise<boolean> => answersPing(`redis://127.0.0.1:${port}`);

(enabled ? describe : describe.skip)(`store.redis Sentinel failover${enabled ? "" : " (skipped: needs redis-server and redis-sentinel)"}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "luastore-sentinel-"));
  const children: ChildProcess[] = [];
  let primary: ChildProcess;
  let ports: { primary: number; replica: number; sentinel: number };

  function server(args: string[], command = "redis-server"): ChildProcess {
    const child = spawn(command, args, { stdio: "ignore" });
    children.push(child);
    return child;
  }

  /** Starts the three servers; false when a port was taken by another test's server meanwhile. */
  async function start(): Promise<boolean> {
    ports = { primary: await freePort(), replica: await freePort(), sentinel: await freePort() };
    // --dir: a replica writes the RDB of its full sync to disk, in the working directory otherwise.
    const common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
    primary = server(["--port", String(ports.primary), ...common]);
    const replicaServer = server(["--port", String(ports.replica), ...common, "--replicaof", "127.0.0.1", String(ports.primary)]);
    const conf = join(dir, "sentinel.conf");
    writeFileSync(
      conf,
      [
        `port ${ports.sentinel}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor m 127.0.0.1 ${ports.primary} 1`,
        "sentinel down-after-milliseconds m 500",
        "sentinel failover-timeout m 2000",
      ].join("\n"),
    );
    const sentinelServer = server([conf], "redis-sentinel");
    for (const port of Object.values(ports)) while (!(await answers(port))) await sleep(50);
    const mine: [number, ChildProcess][] = [
      [ports.primary, primary],
      [ports.replica, replicaServer],
      [ports.sentinel, sentinelServer],
    ];
    for (const [port, child] of mine) if ((await pidOn(port)) !== child.pid) return false;
    // The replica has synced before the test writes.
    const replica = new Redis({ port: ports.replica, host: "127.0.0.1" });
    while (!String(await replica.info("replication")).includes("master_link_status:up")) await sleep(50);
    replica.disconnect();
    // The sentinel learns of replicas from the primary's INFO, which it polls every 10 s: kill the
    // primary before it knows the replica and there is nothing to promote, so wait for it first.
    const sentinel = new Redis({ port: ports.sentinel, host: "127.0.0.1" });
    const knowsReplica = async (): Promise<boolean> => {
      const replicas = (await sentinel.call("SENTINEL", "REPLICAS", "m")) as string[][];
      return replicas.some((fields) => {
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
        return f.get("port") === String(ports.replica) && !/s_down|disconnected/.test(f.get("flags") ?? "");
      });
    };
    while (!(await knowsReplica())) await sleep(100);
    sentinel.disconnect();
    return true;
  }

  beforeAll(async () => {
    // Free ports are only free until someone binds them: a parallel test file may take one first.
    for (let attempt = 1; !(await start()); attempt++) {
      for (const child of children.splice(0)) child.kill("SIGKILL");
      if (attempt === 5) throw new Error("could not start the Sentinel setup on free ports (5 tries)");
    }
  }, 60_000);

  afterAll(() => {
    for (const child of children) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("calls fail Unavailable while the primary is gone, recover after promotion, and none reported failed is applied later", async () => {
    const registry = loadRegistry({
      version: "1.0",
      namespace: "sentinel",
      entries: [
        {
          name: "r",
          kind: "store.redis",
          sentinels: [`127.0.0.1:${ports.sentinel}`],
          sentinel_name: "m",
          command_timeout: "300ms",
          connect_timeout: "2s",
        },
      ],
    });
    const store: Store = createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false });
    try {
      await store.set("before", encodeValue(1), 0);
      const acked: number[] = [];
      const failed: number[] = [];
      let killed = false;
      let afterKill = 0;
      // Bounded, so that a failover that never happens fails with what was seen, not a bare timeout.
      const deadline = performance.now() + 40_000;
      for (let i = 0; afterKill < 20; i++) {
        if (performance.now() > deadline) {
          throw new Error(`no recovery within 40 s of killing the primary: ${acked.length} acknowledged, ${failed.length} failed, ${afterKill} after the kill`);
        }
        if (i === 50) {
          primary.kill("SIGKILL");
          killed = true;
        }
        try {
          await store.add(`k${i}`, encodeValue(i), 0);
          acked.push(i);
          if (killed) afterKill++;
        } catch (error) {
          expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
          expect(killed).toBe(true);
          failed.push(i);
          await sleep(20);
        }
      }
      expect(failed.length).toBeGreaterThan(0);
      const present = (keys: number[]): Promise<number[]> => presentKeys(store, keys);
      const appliedFailures = await present(failed);
      await sleep(500);
      expect(await present(failed)).toEqual(appliedFailures);
      const recent = acked.slice(-afterKill);
      expect(await present(recent)).toEqual(recent);
    } finally {
      await store.close();
    }
  }, 60_000);
});

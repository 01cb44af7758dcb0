/**
 * store.redis with `min_replicas`: every write is followed by WAIT, and succeeds only once that
 * many replicas have it. Against a private primary and replica of the test's own (free loopback
 * ports, files in a temp dir), so that stopping the replica disturbs no other test. The registry
 * rules for the two fields need no server.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, test } from "vitest";
import { systemClock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind, StoreError } from "../../src/errors.js";
import { loadRegistry, parseRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";
import { registryProblems } from "../registry/registry-problems.js";
import { answersPing, freePort, pidOn } from "./redis-server.js";

const enabled = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const one = { value: 1, float: false };
const zero = { value: 0, float: false };

const entry = (...fields: string[]) =>
  ['version: "1.0"', "namespace: app", "entries:", "  - name: r", "    kind: store.redis", "    url: redis://h:1", ...fields].join("\n");
const problemsOf = (text: string): string[] =>
  registryProblems(() => parseRegistry(text, "registry.yaml")).map((p) => `${p.line}:${p.column} ${p.message}`);

describe("min_replicas and replica_timeout in the registry", () => {
  test("off by default; replica_timeout defaults to half of command_timeout", () => {
    expect(parseRegistry(entry(), "registry.yaml").entries[0]).toMatchObject({ minReplicas: 0, replicaTimeoutMs: undefined });
    expect(parseRegistry(entry("    min_replicas: 2", "    replica_timeout: 200ms"), "registry.yaml").entries[0]).toMatchObject({
      minReplicas: 2,
      replicaTimeoutMs: 200,
    });
  });

  test("replica_timeout must be shorter than command_timeout, and needs min_replicas", () => {
    expect(problemsOf(entry("    min_replicas: 1", "    command_timeout: 1s", "    replica_timeout: 1s"))).toEqual([
      "9:5 replica_timeout: replica_timeout must be shorter than command_timeout (1000 ms), so that a write the replicas did not confirm is told apart from one that timed out",
    ]);
    expect(problemsOf(entry("    replica_timeout: 100ms"))).toEqual(["7:5 replica_timeout: only with min_replicas (1 or more)"]);
    expect(problemsOf(entry("    min_replicas: -1"))[0]).toMatch(/^7:19 min_replicas: must be an integer/);
  });
});

(enabled ? describe : describe.skip)(`store.redis min_replicas${enabled ? "" : " (skipped: needs redis-server)"}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "luastore-replicas-"));
  const children: ChildProcess[] = [];
  let replicaProcess: ChildProcess;
  let ports: { primary: number; replica: number };
  let primary: Redis;
  let replica: Redis;
  const stores: Store[] = [];

  function server(args: string[]): ChildProcess {
    const child = spawn("redis-server", args, { stdio: "ignore" });
    children.push(child);
    return child;
  }

  /** Starts the pair; false when a port was taken by another test's server meanwhile. */
  async function start(): Promise<boolean> {
    ports = { primary: await freePort(), replica: await freePort() };
    // --dir: the replica writes the RDB of its full sync to disk, in the working directory otherwise.
    const common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
    const primaryProcess = server(["--port", String(ports.primary), ...common]);
    replicaProcess = server(["--port", String(ports.replica), ...common, "--replicaof", "127.0.0.1", String(ports.primary)]);
    for (const port of Object.values(ports)) while (!(await answersPing(`redis://127.0.0.1:${port}`))) await sleep(50);
    if ((await pidOn(ports.primary)) !== primaryProcess.pid || (await pidOn(ports.replica)) !== replicaProcess.pid) return false;
    return true;
  }

  /** Waits until the replica is linked and the primary counts it (WAIT would answer 0 before). */
  async function replicaUp(): Promise<void> {
    while (!String(await replica.info("replication")).includes("master_link_status:up")) await sleep(50);
    while (!/connected_slaves:1\b/.test(String(await primary.info("replication")))) await sleep(50);
  }

  function store(fields: Record<string, unknown>): Store {
    const registry = loadRegistry({
      version: "1.0",
      namespace: "replicas",
      entries: [{ name: `r${stores.length}`, kind: "store.redis", url: `redis://127.0.0.1:${ports.primary}/0`, ...fields } as never],
    });
    const made = createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false });
    stores.push(made);
    return made;
  }

  /** The value field of an entry as the replica (or primary) holds it, read directly. */
  const valueOn = async (client: Redis, storeIndex: number, key: string): Promise<unknown> => {
    const raw = await client.hgetBuffer(`luastore:{replicas:r${storeIndex}}:${key}`, "v");
    return raw === null ? undefined : decodeValue(raw);
  };

  beforeAll(async () => {
    // Free ports are only free until someone binds them: a parallel test file may take one first.
    for (let attempt = 1; !(await start()); attempt++) {
      for (const child of children.splice(0)) child.kill("SIGKILL");
      if (attempt === 5) throw new Error("could not start a primary and a replica on free ports (5 tries)");
    }
    primary = new Redis({ port: ports.primary, host: "127.0.0.1" });
    replica = new Redis({ port: ports.replica, host: "127.0.0.1" });
    await replicaUp();
  }, 60_000);

  afterAll(async () => {
    for (const s of stores) await s.close();
    primary?.disconnect();
    replica?.disconnect();
    // A stopped process ignores SIGKILL only until it is continued; SIGKILL works on it anyway.
    for (const child of children) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a write succeeds once the replica has it: read from the replica right after, it is there", async () => {
    // Generous timeouts: a loaded machine may take a while to replicate, and this case must not fail for it.
    const s = store({ min_replicas: 1, command_timeout: "20s", replica_timeout: "10s" });
    await s.set("a", encodeValue("one"), 0);
    expect(await valueOn(replica, 0, "a")).toBe("one");
    expect(decodeValue(await s.incr("n", one, zero, 0))).toBe(1);
    expect(await valueOn(replica, 0, "n")).toBe(1);
    expect(await s.delete("a")).toBe(true);
    expect(await valueOn(replica, 0, "a")).toBeUndefined();
  });

  it("with the replica stopped, a write fails as Unavailable, not retryable, and is applied once on the primary; reads go on", async () => {
    const s = store({ min_replicas: 1, command_timeout: "10s", replica_timeout: "300ms" });
    await s.set("before", encodeValue(1), 0);
    expect(replicaProcess.kill("SIGSTOP")).toBe(true);
    try {
      const refused = await Promise.resolve()
        .then(() => s.incr("n", one, zero, 0))
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toBeInstanceOf(StoreError);
      expect(refused).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: false });
      expect((refused as Error).message).toMatch(/took effect on the primary, but 0 of 1 replicas \(min_replicas\) had it after 300 ms; not retryable/);
      // Applied, once: the primary holds 1, and a read through the store sees it.
      expect(await valueOn(primary, 1, "n")).toBe(1);
      expect(decodeValue((await s.get("n"))!)).toBe(1);
      expect(decodeValue((await s.get("before"))!)).toBe(1);
      // Every kind of write asks: a set and a delete are refused the same way, and applied.
      await expect(s.set("x", encodeValue("x"), 0)).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: false });
      expect(await valueOn(primary, 1, "x")).toBe("x");
      await expect(s.delete("before")).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: false });
      expect(await s.get("before")).toBeUndefined();
    } finally {
      replicaProcess.kill("SIGCONT");
    }
    // Once the replica is back it catches up, and writes succeed again.
    await replicaUp();
    expect(decodeValue(await s.incr("n", one, zero, 0))).toBe(2);
    expect(await valueOn(replica, 1, "n")).toBe(2);
    expect(await valueOn(replica, 1, "x")).toBe("x");
  });

  it("more replicas than there are: every write is refused as not retryable, yet applied; a store without min_replicas writes as before", async () => {
    const strict = store({ min_replicas: 2, command_timeout: "10s", replica_timeout: "100ms" });
    await expect(strict.set("k", encodeValue(1), 0)).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: false });
    expect(await valueOn(primary, 2, "k")).toBe(1);
    await expect(strict.set("k", encodeValue(2), 0)).rejects.toThrow(/1 of 2 replicas \(min_replicas\) had it after 100 ms/);
    expect(decodeValue((await strict.get("k"))!)).toBe(2);
    const plain = store({ command_timeout: "10s" });
    await plain.set("k", encodeValue(3), 0);
    expect(decodeValue((await plain.get("k"))!)).toBe(3);
  });
});

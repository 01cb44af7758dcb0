/**
 * Crash safety of the shared-memory zone: operations stopped inside, at every step of the fault
 * hook and at random instructions, by threads that then count as dead; afterwards the host
 * recovers the zone (as it does on a worker's 'exit'), verify() walks it clean, and what the
 * stopped operation touched is wholly as before or wholly as after.
 *
 * The workers run test/store/zone-fault-worker.mjs against the build (dist/), as Lua workers do.
 */
import { Buffer } from "node:buffer";
import { Worker } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { decodeValue } from "../../src/codec/msgpack.js";
import type { MemoryStoreConfig } from "../../src/registry/types.js";
import { attachZone, createZone, type ZoneStore } from "../../src/store/zone/index.js";

const WORKER = new URL("./zone-fault-worker.mjs", import.meta.url);
const NOW = 1_700_000_000_000;
const MiB = 1024 * 1024;
/** Keep in step with OPS in the worker file. */
const OP_NAMES = [
  "set new",
  "set existing",
  "set drops a TTL",
  "add",
  "add over an expired key",
  "replace",
  "incr existing",
  "incr new",
  "put if version",
  "delete",
  "deleteMany",
  "expire",
  "setMany new and existing",
  "atomic",
  "atomic evicting for its new keys",
  "lpush a new list",
  "rpush into a new chunk",
  "lpop across chunks",
  "rpop the last item deletes the list",
  "ltrim",
  "zadd new and rescored members (the hash table grows)",
  "zadd a new sorted set",
  "zincr",
  "zrem members and the set",
  "set over a list and delete a sorted set (their blocks reclaimed)",
  "eviction of a list for a new key",
  "clear",
  "flush",
  "sweep",
  "get under lru",
  "list over expired keys",
  "eviction for a new key",
  "eviction for memory",
] as const;
const TARGETS: Record<(typeof OP_NAMES)[number], string[]> = {
  "set new": ["new"],
  "set existing": ["k0"],
  "set drops a TTL": ["k1"],
  add: ["new"],
  "add over an expired key": ["x0"],
  replace: ["k2"],
  "incr existing": ["n"],
  "incr new": ["m"],
  "put if version": ["k3"],
  delete: ["k0"],
  deleteMany: ["k0", "k2"],
  expire: ["k2"],
  "setMany new and existing": ["k0", "k1", "k2", "new1", "new2", "new3"],
  atomic: ["k0", "k2", "n", "m", "new"],
  "atomic evicting for its new keys": ["new", "m"],
  "lpush a new list": ["L"],
  "rpush into a new chunk": ["L"],
  "lpop across chunks": ["L"],
  "rpop the last item deletes the list": ["L"],
  ltrim: ["L"],
  "zadd new and rescored members (the hash table grows)": ["Z"],
  "zadd a new sorted set": ["Z"],
  zincr: ["Z"],
  "zrem members and the set": ["Z"],
  "set over a list and delete a sorted set (their blocks reclaimed)": ["L", "Z"],
  "eviction of a list for a new key": ["new"],
  clear: [],
  flush: [],
  sweep: [],
  "get under lru": [],
  "list over expired keys": [],
  "eviction for a new key": ["new"],
  "eviction for memory": ["big"],
};
/** Every key a fixture or an op may hold (the canaries c*, cm are never written by an op). */
const KEYS = [
  ...Array.from({ length: 12 }, (_, i) => `c${i}`),
  "cm",
  "k0",
  "k1",
  "k2",
  "k3",
  "n",
  "m",
  "new",
  "new1",
  "new2",
  "new3",
  "big",
  "L",
  "Z",
  ...Array.from({ length: 6 }, (_, i) => `x${i}`),
];

function config(): MemoryStoreConfig {
  return {
    id: "faults:zone",
    namespace: "faults",
    name: "zone",
    kind: "store.memory",
    maxSize: 100_000,
    eviction: "none",
    cleanupIntervalMs: 300_000,
    maxKeyLength: 1024,
    maxValueSize: MiB,
    pool: { max: 64 },
    source: { file: "<faults>", line: 0, column: 0 },
  };
}

interface Reply {
  type: string;
  buffer?: SharedArrayBuffer;
  token: number;
  hit?: boolean;
  completed?: boolean;
  outcome?: string;
}

/** One worker thread and its replies, in order; a worker that exits answers `{ type: "exit" }`. */
class FaultWorker {
  readonly worker: Worker;
  readonly #replies: Reply[] = [];
  #waiting: ((reply: Reply) => void) | undefined;
  exited = false;

  constructor(tokenBase: number) {
    this.worker = new Worker(WORKER, { workerData: { tokenBase } });
    this.worker.on("message", (reply: Reply) => this.#deliver(reply));
    this.worker.on("error", (error) => this.#deliver({ type: "error", token: 0, outcome: String(error) }));
    this.worker.on("exit", () => {
      this.exited = true;
      this.#deliver({ type: "exit", token: 0 });
    });
  }

  #deliver(reply: Reply): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) waiting(reply);
    else this.#replies.push(reply);
  }

  next(): Promise<Reply> {
    const reply = this.#replies.shift();
    if (reply !== undefined) return Promise.resolve(reply);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  async ask(message: object): Promise<Reply> {
    this.worker.postMessage(message);
    return this.next();
  }

  async close(): Promise<void> {
    if (!this.exited) await this.worker.terminate();
  }
}

interface KeyState {
  value: string;
  expiresAt: number;
  metadata: string | undefined;
  version: string;
}

/** A list's or sorted set's items as one string, and its expiry (its version is not readable through the API). */
async function collectionState(store: ZoneStore, key: string): Promise<KeyState> {
  const ttl = (await store.ttl(key))!;
  const expiresAt = ttl === 0 ? 0 : NOW + ttl;
  try {
    const items = await store.listRange(key, 0, -1);
    return { value: `list:${items.map((v) => Buffer.from(v).toString("hex")).join(",")}`, expiresAt, metadata: undefined, version: "" };
  } catch {
    const members = await store.zsetRange(key, { by: "rank", start: 0, stop: -1, reverse: false });
    return { value: `zset:${JSON.stringify(members)}`, expiresAt, metadata: undefined, version: "" };
  }
}

/** What every key looks like to a reader at NOW (the host thread's view). */
async function snapshot(store: ZoneStore): Promise<Map<string, KeyState | undefined>> {
  const out = new Map<string, KeyState | undefined>();
  for (const key of KEYS) {
    let record;
    try {
      record = await store.entry(key);
    } catch {
      out.set(key, await collectionState(store, key));
      continue;
    }
    out.set(
      key,
      record === undefined
        ? undefined
        : {
            value: Buffer.from(record.value).toString("hex"),
            expiresAt: record.expiresAt,
            metadata: record.metadata === undefined ? undefined : Buffer.from(record.metadata).toString("hex"),
            version: record.version,
          },
    );
  }
  return out;
}

const fixedClock = { now: () => NOW, sleep: () => Promise.resolve() };

function same(a: KeyState | undefined, b: KeyState | undefined, withVersion: boolean): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.value === b.value && a.expiresAt === b.expiresAt && a.metadata === b.metadata && (!withVersion || a.version === b.version);
}

/**
 * Every key is as before the op (version and all) or as after it (the op's own keys all one or
 * all the other; clear and flush likewise for the whole store). A key an eviction or sweep
 * removed in its own committed step is "as after".
 */
function expectWholeOrNothing(
  op: string,
  step: number,
  result: Map<string, KeyState | undefined>,
  before: Map<string, KeyState | undefined>,
  after: Map<string, KeyState | undefined>,
  targets: string[],
): void {
  for (const key of KEYS) {
    const r = result.get(key);
    expect(same(r, before.get(key), true) || same(r, after.get(key), false), `${op} @${step}: key ${key} is neither before nor after`).toBe(true);
  }
  const group = op === "clear" || op === "flush" ? KEYS : targets;
  const changed = group.filter((key) => !same(before.get(key), after.get(key), true));
  const asBefore = changed.filter((key) => same(result.get(key), before.get(key), true));
  expect(asBefore.length === 0 || asBefore.length === changed.length, `${op} @${step}: half applied (${asBefore.join()} as before)`).toBe(true);
}

const workers: FaultWorker[] = [];
afterAll(async () => {
  for (const w of workers.splice(0)) await w.close();
});

describe("zone crash safety", () => {
  it("every mutating operation stopped at every step is all or nothing, and the zone verifies clean", async () => {
    let tokenBase = 1 << 24;
    const spawn = (): FaultWorker => {
      const w = new FaultWorker((tokenBase += 1 << 20));
      workers.push(w);
      return w;
    };
    let worker = spawn();
    let recovered = 0;
    let stops = 0;
    let realDeaths = 0;
    /** After a stop: declare the token dead, recover, verify, and compare with before/after. */
    const check = async (op: (typeof OP_NAMES)[number], step: number, reply: Reply, before: Map<string, KeyState | undefined>, after: Map<string, KeyState | undefined>) => {
      const store = attachZone(reply.buffer!, config(), { clock: fixedClock });
      if (store.zone.tokenExited(reply.token)) recovered++;
      expect(await store.verify(), `${op} @${step} (${reply.outcome})`).toEqual([]);
      expectWholeOrNothing(op, step, await snapshot(store), before, after, TARGETS[op]);
      stops++;
    };
    for (const op of OP_NAMES) {
      const built = await worker.ask({ type: "sweep", op, step: -1, mode: "before" });
      const before = await snapshot(attachZone(built.buffer!, config(), { clock: fixedClock }));
      const done = await worker.ask({ type: "sweep", op, step: -1, mode: "none" });
      expect(done.completed, `${op}: ${done.outcome}`).toBe(true);
      const afterStore = attachZone(done.buffer!, config(), { clock: fixedClock });
      expect(await afterStore.verify()).toEqual([]);
      const after = await snapshot(afterStore);
      let steps = 0;
      for (let step = 0; ; step++) {
        let finished = false;
        for (const mode of ["throw", "terminate"] as const) {
          let reply = await worker.ask({ type: "sweep", op, step, mode });
          // A loaded machine may let the 10 ms vm timeout fire before the step: try again.
          for (let retry = 0; mode === "terminate" && !reply.hit && !reply.completed && retry < 3; retry++) {
            reply = await worker.ask({ type: "sweep", op, step, mode });
          }
          if (!reply.hit && reply.completed) {
            finished = true;
            break;
          }
          expect(reply.outcome, `${op} @${step} ${mode}`).toBe(mode === "throw" ? "thrown" : "terminated");
          await check(op, step, reply, before, after);
        }
        if (finished) {
          steps = step;
          break;
        }
      }
      expect(steps, `${op} has steps`).toBeGreaterThan(0);
      // Real deaths (a worker that exits inside the op, one the host terminates), at two steps.
      for (const [step, mode] of [[0, "exit"], [Math.floor(steps / 2), "hang"]] as const) {
        const dying = spawn();
        const reply = await dying.ask({ type: "sweep", op, step, mode });
        const { buffer, token } = reply;
        if (mode === "hang") {
          expect(reply.type).toBe("hung");
          await dying.worker.terminate();
        } else {
          expect(reply.type).toBe("built");
          expect((await dying.next()).type).toBe("exit");
        }
        await check(op, step, { type: "dead", buffer, token }, before, after);
        realDeaths++;
      }
    }
    // The terminations really left locks held for the host to recover.
    expect(recovered).toBeGreaterThan(OP_NAMES.length);
    expect(stops).toBeGreaterThan(300);
    expect(realDeaths).toBe(2 * OP_NAMES.length);
  }, 300_000);
});

describe("zone crash safety under load", () => {
  const LANES = 3;
  const KEYS_PER_LANE = 8; // KEYS in the worker file
  const TERMINATIONS = 2000;

  it("2000 random terminations of workers writing one zone at once lose no acknowledged write", async () => {
    const zoneConfig: MemoryStoreConfig = { ...config(), maxMemory: 8 * MiB };
    const host = createZone(zoneConfig, { clock: systemClock });
    const states = new SharedArrayBuffer(LANES * (KEYS_PER_LANE + 2) * 4 * 2);
    const pending = new Int32Array(states, 0, states.byteLength / 8);
    const acked = new Int32Array(states, states.byteLength / 2, states.byteLength / 8);
    for (let lane = 0; lane < LANES; lane++) acked[lane * (KEYS_PER_LANE + 2) + KEYS_PER_LANE + 1] = 1; // state numbers start at 1
    let terminations = 0;
    let realDeaths = 0;
    let recovered = 0;
    let seed = 1;
    const stateOf = (bytes: Uint8Array | undefined): number =>
      bytes === undefined ? 0 : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);

    /** The lane's keys hold their acknowledged state, or the one a write in flight was making. */
    const checkLane = async (lane: number): Promise<void> => {
      const base = lane * (KEYS_PER_LANE + 2);
      for (let j = 0; j < KEYS_PER_LANE; j++) {
        const actual = stateOf(await host.get(`L${lane}:${j}`));
        const allowed = [acked[base + j]!, pending[base + j]!].map((s) => (s > 0 ? s : 0));
        expect(allowed, `lane ${lane} key ${j}`).toContain(actual);
        acked[base + j] = pending[base + j] = actual;
      }
      const counter = await host.get(`L${lane}:n`);
      const n = counter === undefined ? 0 : (decodeValue(counter) as number);
      expect([acked[base + KEYS_PER_LANE], pending[base + KEYS_PER_LANE]], `lane ${lane} counter`).toContain(n);
      acked[base + KEYS_PER_LANE] = pending[base + KEYS_PER_LANE] = n;
      // The lane's list holds whole state numbers only; its sorted set members in (score, member) order.
      for (const item of await host.listRange(`L${lane}:list`, 0, -1)) expect(item.length).toBe(4);
      const members = await host.zsetRange(`L${lane}:z`, { by: "rank", start: 0, stop: -1, reverse: false });
      for (let i = 1; i < members.length; i++) expect(members[i - 1]!.score <= members[i]!.score).toBe(true);
    };

    const runLane = async (lane: number): Promise<void> => {
      let worker = new FaultWorker((lane + 1) << 26);
      workers.push(worker);
      for (let run = 0; terminations < TERMINATIONS; run++) {
        // Every 100th stop of a lane is a real death: an exit at a random step, or a terminate().
        const real = run % 100 === 99 ? (run % 200 === 99 ? "exit" : "terminate") : undefined;
        const message = { type: "mixed", buffer: host.buffer, lane, states, seed: seed++, timeoutMs: 1 + (seed % 6), real, exitAtStep: 1 + ((seed * 7919) % 3000) };
        const running = await worker.ask(message);
        expect(running.type).toBe("running");
        let reply: Reply;
        if (real === "terminate") {
          await new Promise((resolve) => setTimeout(resolve, 1 + (seed % 8)));
          await worker.worker.terminate();
          reply = await worker.next();
        } else {
          reply = await worker.next();
        }
        if (real === undefined) expect(reply.outcome, `lane ${lane}`).toBe("terminated");
        else expect(reply.type).toBe("exit");
        if (host.zone.tokenExited(running.token)) recovered++;
        if (real !== undefined) {
          host.zone.threadExited(worker.worker.threadId);
          realDeaths++;
          worker = new FaultWorker((lane + 1) << 26 | (run << 12));
          workers.push(worker);
        }
        terminations++;
        await checkLane(lane);
        if (terminations % 50 === 0) expect(await host.verify()).toEqual([]);
      }
    };
    await Promise.all(Array.from({ length: LANES }, (_, lane) => runLane(lane)));
    expect(await host.verify()).toEqual([]);
    for (let lane = 0; lane < LANES; lane++) await checkLane(lane);
    expect(terminations).toBeGreaterThanOrEqual(TERMINATIONS);
    expect(realDeaths).toBeGreaterThan(0);
    // Many stops caught a thread holding the lock: recovery really ran.
    expect(recovered).toBeGreaterThan(100);
  }, 300_000);
});

describe("zone collections across threads", () => {
  it("lists, sorted sets and atomic transfers changed by three workers and the host at once lose nothing", async () => {
    const host = createZone({ ...config(), maxMemory: 8 * MiB }, { clock: systemClock });
    host.setMany([["shared:a", Uint8Array.of(100)], ["shared:b", Uint8Array.of(0)]], 0);
    const lanes = [new FaultWorker(3 << 26), new FaultWorker((3 << 26) + (1 << 20)), new FaultWorker((3 << 26) + (2 << 20))];
    workers.push(...lanes);
    const ROUNDS = 300;
    const done = lanes.map((w, lane) => w.ask({ type: "collections", buffer: host.buffer, lane, rounds: ROUNDS }));
    // The host thread pushes too, meanwhile (its calls wait for the lock without blocking its loop).
    for (let i = 0; i < ROUNDS; i++) await host.listPush("shared:list", "right", [Uint8Array.of(9)]);
    for (const reply of await Promise.all(done)) expect(reply.type).toBe("collected");
    const pops = lanes.length * Math.ceil(ROUNDS / 3);
    const length = (await host.listLength("shared:list")) as number;
    expect(length).toBeGreaterThanOrEqual(lanes.length * ROUNDS + ROUNDS - pops);
    expect(length).toBeLessThanOrEqual(lanes.length * ROUNDS + ROUNDS);
    expect((await host.listRange("shared:list", 0, -1)).length).toBe(length);
    expect(await host.zsetScore("shared:board", "total")).toBe(lanes.length * ROUNDS * 0.5);
    for (let lane = 0; lane < lanes.length; lane++) expect(await host.zsetScore("shared:board", `lane${lane}`)).toBe(ROUNDS);
    expect(await host.zsetRange("shared:board", { by: "rank", start: 0, stop: 0, reverse: true })).toEqual([{ member: "total", score: lanes.length * ROUNDS * 0.5 }]);
    const [a, b] = (await host.getMany(["shared:a", "shared:b"])).map((v) => decodeValue(v!) as number);
    expect(a! + b!).toBe(100);
    expect(b).toBe(lanes.length * ROUNDS);
    expect(await host.verify()).toEqual([]);
  }, 120_000);
});

describe("zone lock-free reads", () => {
  it("a get racing a writer never returns bytes that were not a whole stored value", async () => {
    const host = createZone({ ...config(), maxMemory: 8 * MiB }, { clock: systemClock });
    const control = new SharedArrayBuffer(4);
    const writer = new FaultWorker(1 << 29);
    const readers = [new FaultWorker((1 << 29) + (1 << 20)), new FaultWorker((1 << 29) + (2 << 20))];
    workers.push(writer, ...readers);
    const reads = readers.map((r, i) => r.ask({ type: "race", role: "reader", buffer: host.buffer, control, seed: 11 + i }));
    const wrote = await writer.ask({ type: "race", role: "writer", buffer: host.buffer, control, seed: 3, writes: 200_000 });
    Atomics.store(new Int32Array(control), 0, 1);
    const results = await Promise.all(reads);
    expect(wrote.type).toBe("raced");
    for (const r of results as unknown as { ops: number; bad: number; found: number }[]) {
      expect(r.bad).toBe(0);
      expect(r.found).toBeGreaterThan(0);
    }
    expect(await host.verify()).toEqual([]);
  }, 120_000);
});

/**
 * The store suite on the shared-memory zone with every store call executed in a worker thread:
 * the test thread makes the zone (as the host does) and a worker attaches the same buffer, as a
 * Lua worker does, so the zone's code runs with isMainThread false (Atomics.wait for the lock,
 * the worker's own liveness slot and counters). Calls cross on the channel the Lua workers use
 * (ChannelStore here, the store thread's StoreServer in test/store/zone-worker.mjs): values,
 * pages, records and errors come back as that wire carries them in production. The case's
 * ManualClock crosses as the host's clock does, through a shared cell the worker reads. Cases
 * after the suite interleave the host thread's calls with the worker's on one zone, and make
 * each wait for the lock that the other holds.
 *
 * The worker runs the build (dist/), as Lua workers do.
 */
import { Buffer } from "node:buffer";
import { readdirSync, statSync } from "node:fs";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { ManualClock, type Clock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind, StoreError } from "../../src/errors.js";
import { Bell, createBell, createChannelBuffer, ringBell } from "../../src/runtime/threads/channel.js";
import { runtimeEntry } from "../../src/runtime/threads/worker-files.js";
import { ChannelClient, ChannelStore } from "../../src/runtime/worker/channel-store.js";
import type { AtomicStore, CollectionStore, LuaNumber, Store } from "../../src/store/store.js";
import { attachZone, createZone, setZoneFault, type ZoneStore } from "../../src/store/zone/index.js";
import { storeSuite } from "./store-suite.js";
import { zoneConfig, zoneSuiteSkips } from "./zone-config.js";

const WORKER = new URL("./zone-worker.mjs", import.meta.url);

/**
 * The worker runs the build: a build older than the zone's sources would test old zone code
 * against the new one here (runtimeEntry makes the same check of the channel's sources).
 */
function checkBuild(): void {
  runtimeEntry("store-thread");
  const sources = new URL("../../src/store/zone/", import.meta.url);
  const built = statSync(new URL("../../dist/store/zone/zone-store.js", import.meta.url)).mtimeMs;
  for (const file of readdirSync(sources)) {
    if (statSync(new URL(file, sources)).mtimeMs > built) throw new Error(`src/store/zone/${file} is newer than the build the zone worker runs (run \`npm run build\`)`);
  }
}

interface WorkerEvent {
  type: "attached" | "detached" | "paused" | "ran";
  channel: number;
  /** "ran": the call's answer, or its error's kind and message. */
  value?: unknown;
  error?: { kind?: string; message: string };
}

/** How a call made beside the channel (ZoneInWorker.aside) lines up with the test. */
interface AsideOptions {
  /** The worker stops at the first step of the call's write (holding the lock) until gate[0] is set and notified. */
  gate?: Int32Array;
  /** Set to 1 and notified just before the worker makes the call. */
  announce?: Int32Array;
}

/** The one worker of this file, serving every case's zone over a channel of its own. */
class ZoneWorker {
  readonly worker: Worker;
  readonly #port: MessagePort;
  readonly #bellBuffer = createBell();
  readonly #bell = new Int32Array(this.#bellBuffer);
  /** Waiters for the worker's events, by `type:channel`. */
  readonly #waiting = new Map<string, { resolve: (event: WorkerEvent) => void; reject: (err: Error) => void }>();
  #failure: Error | null = null;
  #channels = 0;

  constructor() {
    checkBuild();
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.worker = new Worker(WORKER, { workerData: { port: port2, bell: this.#bellBuffer }, transferList: [port2] });
    port1.on("message", (event: WorkerEvent) => {
      const key = `${event.type}:${event.channel}`;
      this.#waiting.get(key)?.resolve(event);
      this.#waiting.delete(key);
    });
    const fail = (err: Error): void => {
      this.#failure ??= err;
      for (const w of this.#waiting.values()) w.reject(this.#failure);
      this.#waiting.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => fail(new Error(`the zone worker exited (code ${code})`)));
  }

  #event(key: string): Promise<WorkerEvent> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiting.set(key, { resolve, reject }));
  }

  /** Posts a control message and makes sure the worker's loop looks at it (as StoreThreadClient.send). */
  #send(message: object, transfer: MessagePort[] = []): void {
    this.#port.postMessage(message, transfer);
    Atomics.add(this.#bell, Bell.CONTROL, 1);
    ringBell(this.#bell);
  }

  /** `host`'s zone attached in the worker, as a Store whose every call runs there. */
  async attach(host: ZoneStore, clock: Clock): Promise<ZoneInWorker> {
    const channel = ++this.#channels;
    const clockCell = new SharedArrayBuffer(8);
    const time = new Float64Array(clockCell);
    time[0] = clock.now();
    const stopWatching = clock.watch?.((now) => (time[0] = now)) ?? (() => {});
    const sab = createChannelBuffer();
    const { port1, port2 } = new MessageChannel();
    const attached = this.#event(`attached:${channel}`);
    this.#send({ type: "attach", channel, buffer: host.buffer, config: host.config, clockCell, sab, port: port2 }, [port2]);
    await attached;
    return new ZoneInWorker(new ChannelClient(sab, this.#bellBuffer, port1), host, this, channel, async () => {
      stopWatching();
      const detached = this.#event(`detached:${channel}`);
      this.#send({ type: "detach", channel });
      await detached;
      port1.close();
    });
  }

  /** See ZoneInWorker.aside. */
  aside(channel: number, method: string, args: unknown[], options: AsideOptions): { paused: Promise<void>; done: Promise<unknown> } {
    const paused = this.#event(`paused:${channel}`).then(() => {});
    const done = this.#event(`ran:${channel}`).then(({ value, error }) => {
      if (error === undefined) return value;
      throw new StoreError(error.kind as ErrorKind, error.message);
    });
    paused.catch(() => {}); // not every call pauses
    this.#send({ type: "aside", channel, method, args, gate: options.gate?.buffer, announce: options.announce?.buffer });
    return { paused, done };
  }

  async stop(): Promise<void> {
    if (this.#failure === null) this.#send({ type: "stop" });
    this.#port.close();
    await this.worker.terminate();
  }
}

/**
 * A zone's store as the worker serves it. `host` is the test thread's store over the same zone;
 * close() detaches the worker's and then walks the zone, so every case also proves it consistent.
 */
class ZoneInWorker extends ChannelStore {
  constructor(
    client: ChannelClient,
    readonly host: ZoneStore,
    readonly worker: ZoneWorker,
    readonly channel: number,
    readonly detach: () => Promise<void>,
  ) {
    super(client, host.config, channel);
  }

  /**
   * Makes one call of this store in the worker, not over the channel: the test thread goes on
   * meanwhile (the channel would block it), so it can hold the zone's lock against the worker or
   * call while the worker holds it. `done` settles with the answer.
   */
  aside(method: string, args: unknown[], options: AsideOptions = {}): { paused: Promise<void>; done: Promise<unknown> } {
    return this.worker.aside(this.channel, method, args, options);
  }

  override async close(): Promise<void> {
    await this.detach();
    const problems = (await this.host.verify()) as string[];
    this.host.close();
    if (problems.length > 0) throw new Error(`zone inconsistent after the case:\n${problems.join("\n")}`);
  }
}

let shared: ZoneWorker | undefined;
const zoneWorker = (): ZoneWorker => (shared ??= new ZoneWorker());
afterAll(async () => {
  await shared?.stop();
});

storeSuite("store.memory (zone) in a worker", ({ clock, config }) => zoneWorker().attach(createZone(zoneConfig(config), { clock }), clock), {
  skip: zoneSuiteSkips,
});

// ---------------------------------------------------------------------------------------------
// The host thread and a worker on one zone, within a case
// ---------------------------------------------------------------------------------------------

const START = 1_700_000_000_000;
const int = (value: number): LuaNumber => ({ value, float: false });
const hex = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString("hex"));
const noPut = { ttlMs: 0, onlyIfAbsent: false } as const;
type ZoneApi = Store & CollectionStore & AtomicStore;

/** An answer as comparable text: bytes as hex, a StoreError as its kind. */
async function answer(call: () => unknown): Promise<string> {
  try {
    return JSON.stringify(await call(), (_, value: unknown) => (value instanceof Uint8Array ? `bytes:${hex(value)}` : value));
  } catch (err) {
    if (err instanceof StoreError) return `error:${err.kind}${err.retryable ? " retryable" : ""}`;
    throw err;
  }
}

/**
 * A seeded mix of every kind of write and read, each call made by `a` or `b` in turn as the
 * generator says, with versions fed back into put and atomic and the clock moving: the answers,
 * in order. Whether `a` and `b` are one store, two on one thread, or the host's and a worker's,
 * the answers must be the same.
 */
async function mixedWrites(a: ZoneApi, b: ZoneApi, clock: ManualClock): Promise<string[]> {
  let seed = 7;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const keys = ["k0", "k1", "k2", "k3", "k4", "k5", "n", "l", "z"];
  const out: string[] = [];
  const seen: string[] = [];
  for (let step = 0; step < 600; step++) {
    const first = random() < 0.5;
    const s = first ? a : b;
    const key = pick(keys);
    const value = encodeValue({ step, pad: "x".repeat(step % 40) });
    const ttl = random() < 0.3 ? 100 + Math.floor(random() * 900) : 0;
    const op = Math.floor(random() * 23);
    /** The key's version as the other store reads it, or now and then a version it had before. */
    const versionOf = async (k: string): Promise<string> => {
      const current = (await (first ? b : a).entry(k))?.version;
      if (current !== undefined) seen.push(current);
      return random() < 0.6 ? (current ?? "none") : pick(seen.length > 0 ? seen : ["none"]);
    };
    const calls: (() => unknown)[] = [
      () => s.set(key, value, ttl),
      () => s.add(key, value, ttl),
      () => s.replace(key, value, ttl),
      () => s.incr(key, int(step % 7), int(1), ttl),
      async () => s.put(key, value, { ...noPut, ifVersion: await versionOf(key), metadata: encodeValue(step) }),
      () => s.put(key, value, { ...noPut, onlyIfAbsent: true }),
      () => s.delete(key),
      () => s.expire(key, ttl),
      () => s.getMany(keys),
      () => s.setMany([[key, value], [pick(keys), encodeValue(step)]], ttl),
      () => s.deleteMany([key, pick(keys)]),
      () => s.list({ prefix: "k", limit: 3 }),
      () => s.entry(key),
      () => s.ttl(key),
      () => s.listPush(key, random() < 0.5 ? "left" : "right", [value, encodeValue(step)]),
      () => s.listPop(key, random() < 0.5 ? "left" : "right", 1 + (step % 3)),
      () => s.listRange(key, 0, -1),
      () => s.zsetAdd(key, [{ member: `m${step % 5}`, score: step % 11 }]),
      () => s.zsetIncr(key, `m${step % 5}`, 0.5),
      () => s.zsetRange(key, { by: "rank", start: 0, stop: -1, reverse: step % 2 === 0 }),
      async () => {
        const version = random() < 0.2 ? null : await versionOf(key);
        return s.atomic({ checks: [[key, version]], set: [[pick(keys), value]], delete: [pick(keys)], incr: [["n", int(1)]], ttlMs: ttl });
      },
      () => (step % 50 === 0 ? s.sweep() : s.get(key)),
      () => (step % 200 === 199 ? s.flush() : s.getStale(key)),
    ];
    out.push(`${step} ${first ? "a" : "b"} ${op}: ${await answer(calls[op]!)}`);
    if (random() < 0.1) clock.advance(Math.floor(random() * 400));
  }
  // Not info's freeBytes: an entry's and a sorted-set node's size follow their random skip-list
  // level. (For the same reason the zone is far larger than the mix needs: under memory pressure,
  // which write finds room would follow those levels too.)
  const { freeBytes, ...info } = await b.info();
  expect(freeBytes).toBeGreaterThan(0);
  out.push(`stats a ${await answer(() => a.stats())}`, `stats b ${await answer(() => b.stats())}`, `info ${JSON.stringify(info)}`);
  return out;
}

describe("store.memory (zone): the host thread and a worker on one zone", () => {
  it("the worker holds a liveness slot of its own, and its calls run there", async () => {
    const clock = new ManualClock(START);
    const host = createZone(zoneConfig(), { clock });
    const inWorker = await zoneWorker().attach(host, clock);
    try {
      expect(host.zone.isAlive(zoneWorker().worker.threadId + 1)).toBe(true);
      expect(host.zone.isAlive(host.zone.token)).toBe(true);
      expect(zoneWorker().worker.threadId + 1).not.toBe(host.zone.token);
    } finally {
      await inWorker.close();
    }
  });

  it.each([
    ["eviction none", zoneConfig({ staleForMs: 2000 })],
    ["lru over 5 keys", zoneConfig({ staleForMs: 2000, maxSize: 5, eviction: "lru" })],
  ])("interleaved writes from the host thread and a worker answer as one store does, and both see the same counters (%s)", async (_, config) => {
    const clockA = new ManualClock(START);
    const alone = createZone(config, { clock: clockA });
    const expected = await mixedWrites(alone, alone, clockA);
    // Two store objects on one thread (one token): what a difference below is not.
    const clockP = new ManualClock(START);
    const pair = createZone(config, { clock: clockP });
    expect(await mixedWrites(pair, attachZone(pair.buffer, pair.config, { clock: clockP }), clockP)).toEqual(expected);
    for (const z of [alone, pair]) expect(await z.verify()).toEqual([]);

    const clockB = new ManualClock(START);
    const host = createZone(config, { clock: clockB });
    const inWorker = await zoneWorker().attach(host, clockB);
    try {
      const actual = await mixedWrites(host, inWorker, clockB);
      expect(actual).toEqual(expected);
      // The mix really wrote, conflicted and failed on both sides.
      const text = actual.join("\n");
      for (const seen of ['"ok"', '"conflict"', "error:Invalid", '"ok":true', '"ok":false']) expect(text).toContain(seen);
      // (Under lru over 5 keys a stale copy is evicted before it is read.)
      if (config.eviction === "lru") expect((await host.stats()).evicted).toBeGreaterThan(0);
      else expect(text).toContain('{"stale":');
      expect(await host.stats()).toEqual(inWorker.stats());
    } finally {
      await inWorker.close();
    }
  });

  it("a key the host writes, the worker changes by version, and the host's stale version conflicts", async () => {
    const clock = new ManualClock(START);
    const host = createZone(zoneConfig(), { clock });
    const inWorker = await zoneWorker().attach(host, clock);
    try {
      await host.set("a", encodeValue("from host"), 1000);
      expect(inWorker.get("a")).toEqual(encodeValue("from host"));
      expect(inWorker.ttl("a")).toBe(1000);
      const version = (await host.entry("a"))!.version;
      expect(inWorker.put("a", encodeValue("from worker"), { ...noPut, ifVersion: version })).toBe("ok");
      expect(await host.put("a", encodeValue("late"), { ...noPut, ifVersion: version })).toBe("conflict");
      expect(await host.get("a")).toEqual(encodeValue("from worker"));
      // Versions made by either thread never repeat, through a clear too.
      const versions = new Set([version]);
      for (let i = 0; i < 40; i++) {
        await (i % 2 === 0 ? host : inWorker).set(`k${i % 4}`, encodeValue(i), 0);
        versions.add((await (i % 3 === 0 ? host : inWorker).entry(`k${i % 4}`))!.version);
        if (i === 20) inWorker.clear();
      }
      expect(versions.size).toBe(41);
      // The worker's TTL runs on the host's clock, for both.
      inWorker.expire("k1", 500);
      clock.advance(499);
      expect(await host.has("k1")).toBe(true);
      clock.advance(1);
      expect(inWorker.get("k1")).toBeUndefined();
      expect(await host.has("k1")).toBe(false);
    } finally {
      await inWorker.close();
    }
  });

  it("with lru, one recency order for both threads: a worker's read keeps the key that the host's write would evict", async () => {
    const clock = new ManualClock(START);
    const host = createZone(zoneConfig({ maxSize: 3, eviction: "lru" }), { clock });
    const inWorker = await zoneWorker().attach(host, clock);
    try {
      for (const key of ["k1", "k2", "k3"]) await host.set(key, encodeValue(key), 0);
      expect(inWorker.get("k1")).toEqual(encodeValue("k1"));
      await host.set("k4", encodeValue("k4"), 0);
      expect(inWorker.has("k2")).toBe(false);
      expect(await host.get("k3")).toEqual(encodeValue("k3"));
      inWorker.set("k5", encodeValue("k5"), 0);
      expect(await host.has("k1")).toBe(false);
      expect(inWorker.list({ prefix: "", limit: 10 }).keys.map((k) => k.key)).toEqual(["k3", "k4", "k5"]);
      expect(await host.stats()).toMatchObject({ evicted: 2, size: 3, hits: 2 });
    } finally {
      await inWorker.close();
    }
  });
});

describe("store.memory (zone): the host thread and a worker contending for the lock", () => {
  const incrArgs = ["n", int(1), int(0), 0] as const;

  it("a host-thread write while a worker is inside one answers with a promise, lets the event loop run, and applies after the worker's", async () => {
    const clock = new ManualClock(START);
    const host = createZone(zoneConfig(), { clock });
    const inWorker = await zoneWorker().attach(host, clock);
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const { paused, done } = inWorker.aside("incr", [...incrArgs], { gate });
    try {
      await paused; // the worker holds the lock, stopped inside its incr
      const hostIncr = host.incr(...incrArgs);
      expect(hostIncr).toBeInstanceOf(Promise);
      let settled = false;
      void Promise.resolve(hostIncr).then(() => (settled = true));
      for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(settled).toBe(false);
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      expect(decodeValue((await done) as Uint8Array)).toBe(1);
      expect(decodeValue(await hostIncr)).toBe(2);
      expect(inWorker.get("n")).toEqual(encodeValue(2));
    } finally {
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await done.catch(() => {});
      await inWorker.close();
    }
  });

  it("a worker's write while the host thread is inside one waits for the lock in the worker, then applies after the host's", async () => {
    const clock = new ManualClock(START);
    const host = createZone(zoneConfig(), { clock });
    const inWorker = await zoneWorker().attach(host, clock);
    const announce = new Int32Array(new SharedArrayBuffer(4));
    let aside: { done: Promise<unknown> } | undefined;
    setZoneFault((step) => {
      if (step !== 0 || aside !== undefined) return;
      aside = inWorker.aside("incr", [...incrArgs], { announce });
      // Holding the lock until the worker makes its call, and a while longer, so that it most
      // likely waits in Atomics.wait; the outcome must be the same whether it got there or not.
      if (Atomics.wait(announce, 0, 0, 10_000) === "timed-out") throw new Error("the worker never made its call");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    });
    try {
      expect(decodeValue(await host.incr(...incrArgs))).toBe(1);
    } finally {
      setZoneFault(undefined);
    }
    try {
      expect(decodeValue((await aside!.done) as Uint8Array)).toBe(2);
      expect(await host.get("n")).toEqual(encodeValue(2));
    } finally {
      await inWorker.close();
    }
  });
});

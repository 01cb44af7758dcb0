/**
 * The trusted side of the worker channel, driven by hand on this thread: what a worker can and
 * cannot make it do, and what a worker killed at any point leaves behind.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { loadPolicies } from "../../src/policy/index.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createBell, createChannelBuffer, Op, Slot, Status, WireReader, WireWriter } from "../../src/runtime/channel.js";
import { createPoolStatsBuffer, StoreServer } from "../../src/runtime/store-server.js";
import { createStoreSlots, poolStats } from "../../src/runtime/store-slots.js";
import { encodeValue, decodeValue } from "../../src/codec/msgpack.js";
import { TEST_POLICIES, TEST_REGISTRY, tenant } from "../helpers.js";

/** A worker's end of a channel, written by hand (no waiting: the server runs on this thread). */
class FakeWorker {
  readonly i32: Int32Array;
  readonly w: WireWriter;
  readonly r: WireReader;
  seq = 0;
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly port: MessagePort,
  ) {
    this.i32 = new Int32Array(sab, 0, 8);
    this.w = new WireWriter(sab);
    this.r = new WireReader(sab);
  }
  /** Writes a request without publishing it (a worker killed before its final store). */
  write(op: number, fill: (w: WireWriter) => void): void {
    this.w.begin(op);
    fill(this.w);
  }
  publish(runSeq: number): number {
    this.i32[Slot.REQ_LEN] = this.w.pos;
    this.i32[Slot.RUN_SEQ] = runSeq;
    const moved = this.w.moved;
    if (moved) this.w.sendMoved(this.port);
    this.i32[Slot.REQ_MOVED] = moved ? 1 : 0;
    this.seq++;
    Atomics.store(this.i32, Slot.REQ_SEQ, this.seq);
    return this.seq;
  }
  answered(): boolean {
    return Atomics.load(this.i32, Slot.RES_SEQ) === this.seq;
  }
  /** Starts reading the answer, from the port when it was moved; returns its status. */
  answer(): number {
    return this.i32[Slot.RES_MOVED] === 1 ? this.r.beginMoved(this.port) : this.r.begin();
  }
}

function setup() {
  const registry = loadRegistry(TEST_REGISTRY);
  const slots = createStoreSlots(registry, { clock: new ManualClock(0), sweepTimers: false });
  const server = new StoreServer({
    slots,
    policy: loadPolicies(TEST_POLICIES),
    bell: createBell(),
    poolStats: createPoolStatsBuffer(registry.entries.length),
    drainControl: () => {},
  });
  const open = (id: number): FakeWorker => {
    const sab = createChannelBuffer();
    const { port1, port2 } = new MessageChannel();
    server.openChannel(id, sab, port2);
    return new FakeWorker(sab, port1);
  };
  const inUse = (id: string): number => poolStats(slots).find((p) => p.id === id)!.inUse;
  return { slots, server, open, inUse };
}

function acquire(worker: FakeWorker, server: StoreServer, runSeq: number, storeId: string): number {
  worker.write(Op.ACQUIRE, (w) => w.byteString(storeId));
  worker.publish(runSeq);
  server.serveOnce();
  expect(worker.r.begin()).toBe(Status.OK);
  return worker.r.u32();
}

function set(worker: FakeWorker, handle: number, key: string, value: unknown): void {
  worker.write(Op.SET, (w) => {
    w.u32(handle);
    w.byteString(key);
    w.f64(0);
    w.bytes(encodeValue(value));
  });
}

describe("the store server", () => {
  it("executes a request only once it is published, and exactly once", async () => {
    const { slots, server, open } = setup();
    const worker = open(1);
    server.bind(1, 7, "run-1", { id: "admin", meta: {} });
    const h = acquire(worker, server, 7, "app:cache");
    set(worker, h, "k", { n: 1 });
    expect(server.serveOnce()).toBe(0);
    expect(await slots.get("app:cache")!.store.get("k")).toBeUndefined();
    worker.publish(7);
    expect(server.serveOnce()).toBe(1);
    expect(worker.answered()).toBe(true);
    expect(decodeValue((await slots.get("app:cache")!.store.get("k"))!)).toEqual({ n: 1 });
    expect(server.serveOnce()).toBe(0);
  });

  it("a worker killed while writing a request leaves nothing applied, and closing its channel releases its handles", async () => {
    const { slots, server, open, inUse } = setup();
    const worker = open(1);
    server.bind(1, 1, "run-1", { id: "admin", meta: {} });
    const h = acquire(worker, server, 1, "app:cache");
    acquire(worker, server, 1, "app:tenant");
    set(worker, h, "half", "written");
    // Killed here: the request bytes are in the buffer, REQ_SEQ never moved.
    expect(inUse("app:cache")).toBe(1);
    expect(server.closeChannel(1)).toBe(2);
    expect(server.serveOnce()).toBe(0);
    expect(await slots.get("app:cache")!.store.get("half")).toBeUndefined();
    expect([inUse("app:cache"), inUse("app:tenant")]).toEqual([0, 0]);
  });

  it("checks policy with the actor bound on the trusted side; requests carry no actor", async () => {
    const { server, open } = setup();
    const worker = open(1);
    server.bind(1, 1, "run-1", tenant("t1"));
    const h = acquire(worker, server, 1, "app:tenant");
    worker.write(Op.GET, (w) => {
      w.u32(h);
      w.byteString("t2:secret");
    });
    worker.publish(1);
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.FAIL);
    expect(worker.r.text()).toBe("PermissionDenied");
  });

  it("a channel cannot use another channel's run: its binding, its handles or its run number", async () => {
    const { server, open } = setup();
    const a = open(1);
    const b = open(2);
    server.bind(1, 1, "run-a", tenant("t1"));
    server.bind(2, 2, "run-b", { id: "admin", meta: {} });
    const adminHandle = acquire(b, server, 2, "app:cache");
    // Channel A claims run 2 (B's, the admin's): not served, whatever it waits for.
    a.write(Op.ACQUIRE, (w) => w.byteString("app:cache"));
    a.publish(2);
    expect(server.serveOnce()).toBe(0);
    expect(a.answered()).toBe(false);
    // With its own run number, A is t1 and may not open app:cache.
    a.publish(1);
    server.serveOnce();
    expect(a.r.begin()).toBe(Status.FAIL);
    expect(a.r.text()).toBe("PermissionDenied");
    // B's handle number means nothing in A's run.
    a.write(Op.GET, (w) => {
      w.u32(adminHandle);
      w.byteString("k");
    });
    a.publish(1);
    server.serveOnce();
    expect(a.r.begin()).toBe(Status.FAIL);
    expect([a.r.text(), a.r.text()]).toEqual(["Invalid", "store released"]);
  });

  it("END releases what the run holds and unbinds the channel until the next bind", () => {
    const { server, open, inUse } = setup();
    const worker = open(1);
    server.bind(1, 1, "run-1", { id: "admin", meta: {} });
    acquire(worker, server, 1, "app:cache");
    worker.write(Op.END, () => {});
    worker.publish(1);
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.OK);
    expect(worker.r.u32()).toBe(1);
    expect(inUse("app:cache")).toBe(0);
    expect(server.activeRuns).toBe(0);
    worker.write(Op.ACQUIRE, (w) => w.byteString("app:cache"));
    worker.publish(1);
    expect(server.serveOnce()).toBe(0);
    server.bind(1, 2, "run-2", { id: "admin", meta: {} });
    worker.publish(2);
    expect(server.serveOnce()).toBe(1);
  });

  it("an unknown request is answered as broken, and the server goes on", () => {
    const { server, open } = setup();
    const worker = open(1);
    server.bind(1, 1, "run-1", { id: "admin", meta: {} });
    worker.write(99, (w) => w.u32(0));
    worker.publish(1);
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.BROKEN);
    expect(worker.r.text()).toMatch(/unknown opcode/);
  });

  describe("values and call sizes", () => {
    const bytesOf = (n: number, seed: number): Uint8Array => encodeValue(String.fromCharCode(97 + seed).repeat(n));

    function setMany(worker: FakeWorker, handle: number, entries: [string, Uint8Array][]): void {
      worker.write(Op.SET_MANY, (w) => {
        w.u32(handle);
        w.f64(0);
        w.u32(entries.length);
        for (const [key, value] of entries) {
          w.byteString(key);
          w.bytes(value);
        }
      });
    }

    function getMany(worker: FakeWorker, handle: number, keys: string[]): void {
      worker.write(Op.GET_MANY, (w) => {
        w.u32(handle);
        w.u32(keys.length);
        for (const key of keys) w.byteString(key);
      });
    }

    it("set_many values are stored as copies sized to themselves, also from a message moved over the port", async () => {
      const { slots, server, open } = setup();
      const worker = open(1);
      server.bind(1, 1, "run-1", { id: "admin", meta: {} });
      const h = acquire(worker, server, 1, "app:cache");
      const entries: [string, Uint8Array][] = [["pin", bytesOf(5000, 0)], ...[1, 2, 3].map((i): [string, Uint8Array] => [`big${i}`, bytesOf(300_000, i)])];
      setMany(worker, h, entries);
      expect(worker.w.moved).toBe(true); // ~900 KB: more than the shared message area
      worker.publish(1);
      server.serveOnce();
      expect(worker.answer()).toBe(Status.OK);
      const store = slots.get("app:cache")!.store;
      for (const [key, value] of entries) {
        const stored = (await store.get(key))!;
        expect(Buffer.compare(stored, value), key).toBe(0); // (toEqual walks 300 KB element by element)
        // Its own buffer, not a view into the 900 KB message.
        expect(stored.buffer.byteLength, key).toBe(value.length);
      }
      expect(worker.sab.byteLength).toBe(createChannelBuffer().byteLength);
    });

    it("put keeps copies of its value and metadata", async () => {
      const { slots, server, open } = setup();
      const worker = open(1);
      server.bind(1, 1, "run-1", { id: "admin", meta: {} });
      const h = acquire(worker, server, 1, "app:cache");
      const value = bytesOf(6000, 4);
      const meta = encodeValue({ tag: "t" });
      worker.write(Op.PUT, (w) => {
        w.u32(h);
        w.byteString("p");
        w.bytes(value);
        w.f64(0);
        w.u8(0); // onlyIfAbsent
        w.u8(0); // no ifVersion
        w.u8(1);
        w.bytes(meta);
      });
      worker.publish(1);
      server.serveOnce();
      expect(worker.answer()).toBe(Status.OK);
      const entry = (await slots.get("app:cache")!.store.entry("p"))!;
      expect(Buffer.compare(entry.value, value)).toBe(0);
      expect(entry.value.buffer.byteLength).toBe(value.length);
      expect(entry.metadata).toEqual(meta);
      expect(entry.metadata!.buffer.byteLength).toBe(meta.length);
    });

    it("a get_many answer larger than the message area is moved over the port and reads back whole", () => {
      const { server, open } = setup();
      const worker = open(1);
      server.bind(1, 1, "run-1", { id: "admin", meta: {} });
      const h = acquire(worker, server, 1, "app:cache");
      const values = [1, 2, 3].map((i) => bytesOf(200_000, i));
      setMany(worker, h, values.map((v, i) => [`g${i}`, v]));
      worker.publish(1);
      server.serveOnce();
      expect(worker.answer()).toBe(Status.OK);
      getMany(worker, h, ["g0", "missing", "g1", "g2"]);
      worker.publish(1);
      server.serveOnce();
      expect(worker.i32[Slot.RES_MOVED]).toBe(1);
      expect(worker.answer()).toBe(Status.OK);
      expect(worker.r.u32()).toBe(4);
      const got: (Uint8Array | undefined)[] = [];
      for (let i = 0; i < 4; i++) got.push(worker.r.u8() === 1 ? worker.r.bytes() : undefined);
      expect(got[1]).toBeUndefined();
      for (const [at, want] of [[0, values[0]!], [2, values[1]!], [3, values[2]!]] as const) expect(Buffer.compare(got[at]!, want)).toBe(0);
      expect(worker.sab.byteLength).toBe(createChannelBuffer().byteLength);
    });

    it("requests and answers over the run's maxCallBytes are refused as Invalid, and nothing is written", async () => {
      const { slots, server, open } = setup();
      const worker = open(1);
      server.bind(1, 1, "run-1", { id: "admin", meta: {} }, 100_000);
      const h = acquire(worker, server, 1, "app:cache");
      const store = slots.get("app:cache")!.store;
      const readFailure = (): string => {
        expect(worker.answer()).toBe(Status.FAIL);
        const kind = worker.r.text();
        expect(worker.r.text()).toMatch(/maxCallBytes 100000/);
        return kind;
      };
      setMany(worker, h, [["a", bytesOf(60_000, 1)], ["b", bytesOf(60_000, 2)]]);
      worker.publish(1);
      server.serveOnce();
      expect(readFailure()).toBe("Invalid");
      expect(await store.get("a")).toBeUndefined();
      // Written by the trusted side (no cap there), then read back over the cap.
      await store.set("a", bytesOf(60_000, 1), 0);
      await store.set("b", bytesOf(60_000, 2), 0);
      await store.set("huge", bytesOf(150_000, 3), 0);
      getMany(worker, h, ["a", "b"]);
      worker.publish(1);
      server.serveOnce();
      expect(readFailure()).toBe("Invalid");
      worker.write(Op.GET, (w) => {
        w.u32(h);
        w.byteString("huge");
      });
      worker.publish(1);
      server.serveOnce();
      expect(readFailure()).toBe("Invalid");
      getMany(worker, h, ["a"]);
      worker.publish(1);
      server.serveOnce();
      expect(worker.answer()).toBe(Status.OK);
    });
  });
});

/**
 * The store thread's end of the worker channel, driven by hand on this thread: what a request
 * does, and what a worker killed at any point leaves behind.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { loadPolicies } from "../../src/policy/index.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createBell, createChannelBuffer, Op, Slot, Status, WireReader, WireWriter } from "../../src/runtime/threads/channel.js";
import { StoreServer } from "../../src/runtime/store-thread/store-server.js";
import { createStoreSlots } from "../../src/runtime/store-slots.js";
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
  publish(): number {
    this.i32[Slot.REQ_LEN] = this.w.pos;
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
  const server = new StoreServer({ stores: [...slots.values()].map((s) => s.store), bell: createBell(), drainControl: () => {} });
  const open = (id: number): FakeWorker => {
    const sab = createChannelBuffer();
    const { port1, port2 } = new MessageChannel();
    server.openChannel(id, sab, port2);
    return new FakeWorker(sab, port1);
  };
  /** A store's address on the channel: its index in the registry. */
  const index = (id: string): number => registry.entries.findIndex((e) => e.id === id);
  return { slots, server, open, index };
}

function set(worker: FakeWorker, store: number, key: string, value: unknown): void {
  worker.write(Op.SET, (w) => {
    w.u32(store);
    w.byteString(key);
    w.f64(0);
    w.bytes(encodeValue(value));
    w.u8(0); // no share
  });
}

describe("the store server", () => {
  it("executes a request only once it is published, and exactly once", async () => {
    const { slots, server, open, index } = setup();
    const worker = open(1);
    set(worker, index("app:cache"), "k", { n: 1 });
    expect(server.serveOnce()).toBe(0);
    expect(await slots.get("app:cache")!.store.get("k")).toBeUndefined();
    worker.publish();
    expect(server.serveOnce()).toBe(1);
    expect(worker.answered()).toBe(true);
    expect(decodeValue((await slots.get("app:cache")!.store.get("k"))!)).toEqual({ n: 1 });
    expect(server.serveOnce()).toBe(0);
  });

  it("a worker killed while writing a request leaves nothing applied, and a closed channel is not served", async () => {
    const { slots, server, open, index } = setup();
    const worker = open(1);
    set(worker, index("app:cache"), "half", "written");
    // Killed here: the request bytes are in the buffer, REQ_SEQ never moved.
    server.closeChannel(1);
    expect(server.serveOnce()).toBe(0);
    expect(await slots.get("app:cache")!.store.get("half")).toBeUndefined();
    worker.publish();
    expect(server.serveOnce()).toBe(0);
    expect(await slots.get("app:cache")!.store.get("half")).toBeUndefined();
  });

  it("a store's error comes back as a failure with its kind, and the server goes on", async () => {
    const { slots, server, open, index } = setup();
    const worker = open(1);
    await slots.get("app:cache")!.store.set("text", encodeValue("not a number"), 0);
    worker.write(Op.INCR, (w) => {
      w.u32(index("app:cache"));
      w.byteString("text");
      w.f64(1);
      w.u8(0);
      w.f64(0);
      w.u8(0);
      w.f64(0);
      w.u8(0);
    });
    worker.publish();
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.FAIL);
    expect(worker.r.text()).toBe("Invalid");
    set(worker, index("app:cache"), "after", 1);
    worker.publish();
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.OK);
  });

  it("an unknown request or store index is answered as broken, a method outside the channel's as failed, and the server goes on", () => {
    const { server, open, index } = setup();
    const worker = open(1);
    worker.write(99, (w) => w.u32(0));
    worker.publish();
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.BROKEN);
    worker.write(Op.GET, (w) => {
      w.u32(1000);
      w.byteString("k");
    });
    worker.publish();
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.BROKEN);
    expect(worker.r.text()).toMatch(/unknown store/);
    worker.write(Op.CALL, (w) => {
      w.u32(index("app:cache"));
      w.value(["close"]);
    });
    worker.publish();
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.FAIL);
    expect(worker.r.text()).toBe("Internal");
    set(worker, index("app:cache"), "after", 1);
    worker.publish();
    server.serveOnce();
    expect(worker.r.begin()).toBe(Status.OK);
  });

  describe("values and call sizes", () => {
    const bytesOf = (n: number, seed: number): Uint8Array => encodeValue(String.fromCharCode(97 + seed).repeat(n));

    function setMany(worker: FakeWorker, handle: number, entries: [string, Uint8Array][]): void {
      worker.write(Op.SET_MANY, (w) => {
        w.u32(handle);
        w.f64(0);
        w.u8(0); // no share
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
      const { slots, server, open, index } = setup();
      const worker = open(1);
      const h = index("app:cache");
      const entries: [string, Uint8Array][] = [["pin", bytesOf(5000, 0)], ...[1, 2, 3].map((i): [string, Uint8Array] => [`big${i}`, bytesOf(300_000, i)])];
      setMany(worker, h, entries);
      expect(worker.w.moved).toBe(true); // ~900 KB: more than the shared message area
      worker.publish();
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
      const { slots, server, open, index } = setup();
      const worker = open(1);
      const h = index("app:cache");
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
        w.u8(0); // no share
      });
      worker.publish();
      server.serveOnce();
      expect(worker.answer()).toBe(Status.OK);
      const entry = (await slots.get("app:cache")!.store.entry("p"))!;
      expect(Buffer.compare(entry.value, value)).toBe(0);
      expect(entry.value.buffer.byteLength).toBe(value.length);
      expect(entry.metadata).toEqual(meta);
      expect(entry.metadata!.buffer.byteLength).toBe(meta.length);
    });

    it("a get_many answer larger than the message area is moved over the port and reads back whole", () => {
      const { server, open, index } = setup();
      const worker = open(1);
      const h = index("app:cache");
      const values = [1, 2, 3].map((i) => bytesOf(200_000, i));
      setMany(worker, h, values.map((v, i) => [`g${i}`, v]));
      worker.publish();
      server.serveOnce();
      expect(worker.answer()).toBe(Status.OK);
      getMany(worker, h, ["g0", "missing", "g1", "g2"]);
      worker.publish();
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
  });
});

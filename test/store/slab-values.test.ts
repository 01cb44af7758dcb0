import { describe, expect, it } from "vitest";
import { SlabValues } from "../../src/store/slab-values.js";

/** `n` bytes that spell `seed` (so different values differ everywhere). */
function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A deterministic pseudo-random sequence (tests must not be flaky). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("SlabValues", () => {
  it("returns what was set, as a copy for slab values and as is for large ones", () => {
    const values = new SlabValues({ largeValueBytes: 100, minSlabBytes: 1024, maxSlabBytes: 4096 });
    const small = bytesOf(10, 1);
    const large = bytesOf(101, 2);
    values.set(3, small);
    values.set(70, large);
    expect(values.get(3)).toEqual(small);
    expect(values.get(3)).not.toBe(small);
    expect(values.get(70)).toBe(large);
    expect([values.length(3), values.length(70), values.length(4), values.length(10_000)]).toEqual([10, 101, 0, 0]);
    small.fill(0);
    expect(values.get(3)).toEqual(bytesOf(10, 1));
    expect(values.slabStats).toMatchObject({ slabs: 1, largeValues: 1, liveBytes: 6 + 10 });
  });

  it("a large value that is a view into a larger buffer, or shared memory, is copied", () => {
    const values = new SlabValues({ largeValueBytes: 100, minSlabBytes: 1024 });
    const big = new Uint8Array(1 << 20);
    big.set(bytesOf(200, 3), 5000);
    values.set(0, big.subarray(5000, 5200));
    const shared = new Uint8Array(new SharedArrayBuffer(300));
    shared.set(bytesOf(300, 4));
    values.set(1, shared);
    big.fill(0);
    shared.fill(0);
    expect(values.get(0)).toEqual(bytesOf(200, 3));
    expect(values.get(0).buffer.byteLength).toBe(200);
    expect(values.get(1)).toEqual(bytesOf(300, 4));
    expect(values.get(1).buffer).toBeInstanceOf(ArrayBuffer);
  });

  it("set answers the length of the value it replaced", () => {
    const values = new SlabValues({ largeValueBytes: 100, minSlabBytes: 1024 });
    expect(values.set(0, bytesOf(5, 1))).toBe(0);
    expect(values.set(0, bytesOf(7, 1))).toBe(5);
    expect(values.set(0, bytesOf(200, 1))).toBe(7);
    expect(values.set(0, bytesOf(0, 1))).toBe(200);
    expect(values.get(0)).toEqual(new Uint8Array(0));
    values.delete(0);
    expect(values.set(0, bytesOf(1, 1))).toBe(0);
  });

  it("a view handed out keeps its bytes through overwrites, deletes, cleaning, slab reuse and clear", () => {
    const values = new SlabValues({ largeValueBytes: 64, minSlabBytes: 256, maxSlabBytes: 256 });
    values.set(0, bytesOf(20, 1));
    const first = values.get(0);
    values.set(0, bytesOf(20, 2)); // same length: must not overwrite the bytes under `first`
    const second = values.get(0);
    values.delete(0);
    // Enough churn to clean and drop every slab, and to reuse their ids many times.
    for (let i = 0; i < 5000; i++) values.set(i % 7, bytesOf(1 + (i % 40), i));
    values.clear();
    for (let i = 0; i < 100; i++) values.set(i, bytesOf(20, 1000 + i));
    expect(first).toEqual(bytesOf(20, 1));
    expect(second).toEqual(bytesOf(20, 2));
  });

  it("a value no view was made of is overwritten in place by one as long", () => {
    const values = new SlabValues({ minSlabBytes: 8192 });
    values.set(0, bytesOf(30, 0));
    for (let i = 1; i <= 10_000; i++) values.set(0, bytesOf(30, i));
    expect(values.slabStats).toMatchObject({ slabs: 1, slabBytes: 8192, liveBytes: 36 });
    expect(values.get(0)).toEqual(bytesOf(30, 10_000));
    // A peek (read and dropped, as incr does) leaves it so; a get does not.
    expect(values.peek(0)).toEqual(bytesOf(30, 10_000));
    values.set(0, bytesOf(30, 1));
    expect(values.slabStats.liveBytes).toBe(36);
    const view = values.get(0);
    values.set(0, bytesOf(30, 2));
    expect(view).toEqual(bytesOf(30, 1));
    expect(values.get(0)).toEqual(bytesOf(30, 2));
  });

  it("slabs that fall to half live are cleaned, so dead space stays bounded", () => {
    const values = new SlabValues({ largeValueBytes: 64, minSlabBytes: 1024, maxSlabBytes: 1024 });
    for (let slot = 0; slot < 1000; slot++) values.set(slot, bytesOf(26, slot)); // 32-byte records
    expect(values.slabStats.slabs).toBe(33); // 31 records a slab
    for (let slot = 0; slot < 1000; slot++) if (slot % 4 !== 0) values.delete(slot);
    const { slabs, liveBytes, slabBytes } = values.slabStats;
    expect(liveBytes).toBe(250 * 32);
    expect(slabBytes).toBeLessThanOrEqual(2 * liveBytes + 2 * 1024);
    expect(slabs).toBeLessThan(20);
    for (let slot = 0; slot < 1000; slot += 4) expect(values.get(slot)).toEqual(bytesOf(26, slot));
    for (let slot = 0; slot < 1000; slot += 4) values.delete(slot);
    expect(values.slabStats).toMatchObject({ liveBytes: 0 });
    expect(values.slabStats.slabs).toBeLessThanOrEqual(1);
  });

  it("stays equal to a plain Map through a long random workload", () => {
    const values = new SlabValues({ largeValueBytes: 200, minSlabBytes: 512, maxSlabBytes: 2048 });
    const model = new Map<number, Uint8Array>();
    const held: [Uint8Array, Uint8Array][] = [];
    const next = random(42);
    for (let step = 0; step < 40_000; step++) {
      const slot = Math.floor(next() * 300);
      const r = next();
      if (r < 0.5) {
        const length = next() < 0.05 ? 201 + Math.floor(next() * 100) : Math.floor(next() * 60);
        const bytes = bytesOf(length, step);
        values.set(slot, bytes);
        model.set(slot, bytes.slice());
      } else if (r < 0.6) {
        values.delete(slot);
        model.delete(slot);
      } else if (model.has(slot)) {
        const view = values.get(slot);
        // expect() per read would dominate the test's time.
        if (!sameBytes(view, model.get(slot))) expect(view).toEqual(model.get(slot));
        if (held.length < 500 && next() < 0.1) held.push([view, view.slice()]);
      }
    }
    for (const [slot, bytes] of model) expect(values.get(slot)).toEqual(bytes);
    for (let slot = 0; slot < 300; slot++) if (!model.has(slot)) expect(values.length(slot)).toBe(0);
    for (const [view, copy] of held) expect(view).toEqual(copy);
    let live = 0;
    for (const bytes of model.values()) if (bytes.length <= 200) live += 6 + bytes.length;
    const stats = values.slabStats;
    expect(stats.liveBytes).toBe(live);
    expect(stats.slabBytes).toBeLessThanOrEqual(2 * live + 2 * 2048);
  });

  it("refuses options it cannot honour", () => {
    expect(() => new SlabValues({ maxSlabBytes: 1 << 17 })).toThrow(RangeError);
    expect(() => new SlabValues({ largeValueBytes: 40_000, minSlabBytes: 1 << 16 })).toThrow(RangeError);
    expect(() => new SlabValues({ largeValueBytes: 4096, minSlabBytes: 4096 })).toThrow(RangeError);
  });
});

import { describe, expect, it } from "vitest";
import { ExpiryIndex } from "../../src/store/expiry-index.js";

/** Sweeps `index` at `now` against the expiry times in `times`, returning the expired keys in order. */
function sweep(index: ExpiryIndex, now: number, times: Map<string, number>): string[] {
  const expired: string[] = [];
  const n = index.sweep(
    now,
    (key) => {
      expired.push(key);
      times.delete(key);
    },
    (key) => (times.get(key) ?? Infinity) <= now,
  );
  expect(n).toBe(expired.length);
  return expired;
}

function indexOf(quantumMs: number, entries: [string, number][]): { index: ExpiryIndex; times: Map<string, number> } {
  const index = new ExpiryIndex(quantumMs);
  const times = new Map(entries);
  for (const [key, at] of entries) index.add(key, at);
  return { index, times };
}

describe("ExpiryIndex", () => {
  it("a key lands in the bucket of its expiry time rounded up to the quantum", () => {
    const { index, times } = indexOf(100, [["a", 1], ["b", 100], ["c", 101], ["d", 200], ["e", 280]]);
    expect(index.bucketCount).toBe(3); // 100: a b; 200: c d; 300: e
    expect(sweep(index, 100, times)).toEqual(["a", "b"]);
    expect(index.visited).toBe(2); // the bucket ending at 200 is not touched before its start
    expect(sweep(index, 200, times)).toEqual(["c", "d"]);
    expect(sweep(index, 250, times)).toEqual([]);
    expect(sweep(index, 300, times)).toEqual(["e"]);
    expect(index.size).toBe(0);
  });

  it("a partly expired bucket gives up only its expired keys", () => {
    const { index, times } = indexOf(100, [["a", 150], ["b", 160], ["c", 190], ["d", 200]]);
    expect(sweep(index, 165, times).sort()).toEqual(["a", "b"]);
    expect(index.visited).toBe(4);
    expect(index.size).toBe(2);
    expect(sweep(index, 199, times)).toEqual(["c"]);
    expect(sweep(index, 200, times)).toEqual(["d"]);
  });

  it("a sweep exactly at a bucket start expires nothing of it", () => {
    const { index, times } = indexOf(100, [["a", 150]]);
    expect(sweep(index, 100, times)).toEqual([]);
    expect(index.visited).toBe(0);
  });

  it("remove takes a key out of its bucket", () => {
    const { index, times } = indexOf(100, [["a", 50], ["b", 60]]);
    index.remove("a", 50);
    times.delete("a");
    expect(index.size).toBe(1);
    expect(sweep(index, 100, times)).toEqual(["b"]);
  });

  it("removing an unknown key, or with the wrong time, changes nothing", () => {
    const { index, times } = indexOf(100, [["a", 50]]);
    index.remove("zz", 50);
    index.remove("a", 550);
    expect(index.size).toBe(1);
    expect(sweep(index, 100, times)).toEqual(["a"]);
  });

  it("emptied buckets are skipped and dropped when their time comes", () => {
    const index = new ExpiryIndex(100);
    index.add("a", 50);
    index.add("b", 250);
    index.remove("a", 50);
    index.remove("b", 250);
    expect(index.bucketCount).toBe(2);
    expect(sweep(index, 1000, new Map())).toEqual([]);
    expect(index.bucketCount).toBe(0);
  });

  it("a bucket emptied by sweeps can be filled again", () => {
    const { index, times } = indexOf(100, [["a", 50]]);
    expect(sweep(index, 100, times)).toEqual(["a"]);
    index.add("b", 150);
    times.set("b", 150);
    expect(sweep(index, 200, times)).toEqual(["b"]);
  });

  it("size counts indexed keys and clear empties the index", () => {
    const { index } = indexOf(100, [["a", 50], ["b", 150], ["c", 150]]);
    expect(index.size).toBe(3);
    index.add("b", 150); // already there: no double count
    expect(index.size).toBe(3);
    index.clear();
    expect(index.size).toBe(0);
    expect(index.bucketCount).toBe(0);
    expect(index.sweep(1e12, () => expect.unreachable(), () => true)).toBe(0);
  });

  it("many random times expire exactly when due, in bucket order", () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const entries: [string, number][] = [];
    for (let i = 0; i < 5000; i++) entries.push([`k${i}`, Math.floor(random() * 100_000) + random()]);
    const { index, times } = indexOf(64, entries);
    const all = new Map(entries);
    let now = 0;
    while (times.size > 0) {
      now += Math.floor(random() * 700);
      const expired = sweep(index, now, times);
      const buckets = expired.map((key) => Math.ceil(all.get(key)! / 64));
      // The heap hands out buckets in time order.
      expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
      expect(expired.filter((key) => all.get(key)! > now)).toEqual([]); // none early
      expect([...times].filter(([, at]) => at <= now)).toEqual([]); // none late
    }
    expect(index.size).toBe(0);
    expect(index.visited).toBeLessThan(5000 + 5000); // each key once, plus partial-bucket looks
  });

  it("a quantum that is not positive is refused", () => {
    expect(() => new ExpiryIndex(0)).toThrow(RangeError);
    expect(() => new ExpiryIndex(-5)).toThrow(RangeError);
  });
});

import { describe, expect, it } from "vitest";
import { SortedKeys } from "../../src/store/sorted-keys.js";

function all(index: SortedKeys, start = "", inclusive = true): string[] {
  const keys: string[] = [];
  index.scan(start, inclusive, (key) => {
    keys.push(key);
    return true;
  });
  return keys;
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

describe("SortedKeys", () => {
  it("keeps keys in byte order, \\x00 first and \\xff last", () => {
    const index = new SortedKeys();
    for (const key of ["b", "\xff", "a\x00", "a", "\x00", "\x80", "\x7f", "ab"]) expect(index.insert(key)).toBe(true);
    expect(all(index)).toEqual(["\x00", "a", "a\x00", "ab", "b", "\x7f", "\x80", "\xff"]);
    expect(index.size).toBe(8);
  });

  it("insert of a present key and delete of a missing key report false", () => {
    const index = new SortedKeys();
    expect(index.insert("a")).toBe(true);
    expect(index.insert("a")).toBe(false);
    expect(index.delete("b")).toBe(false);
    expect(index.delete("a")).toBe(true);
    expect(index.delete("a")).toBe(false);
    expect(index.size).toBe(0);
    expect(all(index)).toEqual([]);
  });

  it("scan starts at, or just after, the start key", () => {
    const index = SortedKeys.from(["a", "c", "e"]);
    expect(all(index, "c", true)).toEqual(["c", "e"]);
    expect(all(index, "c", false)).toEqual(["e"]);
    expect(all(index, "b", false)).toEqual(["c", "e"]);
    expect(all(index, "f", true)).toEqual([]);
    const stopped: string[] = [];
    index.scan("", true, (key) => {
      stopped.push(key);
      return stopped.length < 2;
    });
    expect(stopped).toEqual(["a", "c"]);
  });

  it("stays sorted across chunk splits and empty chunks, matching a model", () => {
    let seed = 99;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const index = new SortedKeys();
    const model = new Set<string>();
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 800; i++) {
        const key = String.fromCharCode(...Array.from({ length: 1 + Math.floor(random() * 4) }, () => Math.floor(random() * 256)));
        if (random() < (round < 10 ? 0.2 : 0.7)) expect(index.delete(key)).toBe(model.delete(key));
        else {
          expect(index.insert(key)).toBe(!model.has(key));
          model.add(key);
        }
      }
      const sorted = [...model].sort(byteOrder);
      expect(all(index)).toEqual(sorted);
      expect(index.size).toBe(model.size);
      const probe = sorted[Math.floor(sorted.length / 3)] ?? "";
      expect(all(index, probe, false)).toEqual(sorted.filter((k) => k > probe));
    }
  });

  it("from() builds the same index as inserting one by one", () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${(i * 7919) % 3001}`);
    const built = SortedKeys.from(keys);
    const inserted = new SortedKeys();
    for (const key of keys) inserted.insert(key);
    expect(all(built)).toEqual(all(inserted));
    expect(built.insert("k1500x")).toBe(true);
    expect(built.delete("k0")).toBe(true);
    expect(all(built)).toEqual([...keys.filter((k) => k !== "k0"), "k1500x"].sort(byteOrder));
  });

  it("clear empties the index", () => {
    const index = SortedKeys.from(["a", "b"]);
    index.clear();
    expect(index.size).toBe(0);
    expect(all(index)).toEqual([]);
    index.insert("c");
    expect(all(index)).toEqual(["c"]);
  });
});

import { afterEach, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { lua } from "fengari";
import { pushMsgpack } from "../../src/codec/lua-msgpack.js";
import { encodeValue } from "../../src/codec/msgpack.js";
import type { MemoryStoreConfig } from "../../src/registry/types.js";
import { ExpiryIndex } from "../../src/store/expiry-index.js";
import { MemoryStore, type MemoryStoreOptions } from "../../src/store/memory.js";
import { newState, runLua } from "../codec/lua-state.js";
import { commonStoreConfig, storeSuite, type SuiteStoreConfig } from "./store-suite.js";

function memoryConfig(config: SuiteStoreConfig = {}): MemoryStoreConfig {
  return { ...commonStoreConfig(config), kind: "store.memory", eviction: config.eviction ?? "none" };
}

storeSuite("store.memory", ({ clock, config }) => new MemoryStore(memoryConfig(config), { clock, sweepTimer: false }));

const START = 1_700_000_000_000;
const stores: MemoryStore[] = [];

function open(config: SuiteStoreConfig = {}, options: Partial<MemoryStoreOptions> = {}): { store: MemoryStore; clock: ManualClock } {
  const clock = new ManualClock(START);
  const store = new MemoryStore(memoryConfig(config), { clock, sweepTimer: false, ...options });
  stores.push(store);
  return { store, clock };
}

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  vi.useRealTimers();
});

const one = encodeValue(1);

describe("store.memory: active expiry", () => {
  it("a sweep looks only at expired keys, however large the store", () => {
    const expiryIndex = new ExpiryIndex();
    const { store, clock } = open({ maxSize: 100_000 }, { expiryIndex });
    for (let i = 0; i < 20_000; i++) store.set(`forever${i}`, one, 0);
    for (let i = 0; i < 20_000; i++) store.set(`later${i}`, one, 3_600_000);
    for (let i = 0; i < 50; i++) store.set(`soon${i}`, one, 1000);
    clock.advance(1000);
    expect(store.sweep()).toBe(50);
    expect(expiryIndex.visited).toBe(50);
    expect(expiryIndex.size).toBe(20_000);
    expect(store.stats()).toMatchObject({ size: 40_000, expired: 50 });
    expect(store.has("forever0") && store.has("later0")).toBe(true);
  });

  it("a sweep in the middle of a bucket expires only the keys whose time has come", () => {
    const expiryIndex = new ExpiryIndex(100);
    const { store, clock } = open({}, { expiryIndex });
    // START is a multiple of 100: these all land in the bucket ending at START + 100.
    store.set("a", one, 10);
    store.set("b", one, 20);
    store.set("c", one, 90);
    clock.advance(50);
    expect(store.sweep()).toBe(2);
    expect(expiryIndex.visited).toBe(3);
    expect(store.stats().size).toBe(1);
    expect(store.has("c")).toBe(true);
  });

  it("a key whose TTL changed is swept by its new time only", () => {
    const expiryIndex = new ExpiryIndex();
    const { store, clock } = open({}, { expiryIndex });
    store.set("a", one, 1000);
    store.expire("a", 5000);
    store.set("b", one, 5000);
    store.set("b", one, 0);
    expect(expiryIndex.size).toBe(1);
    clock.advance(1000);
    expect(store.sweep()).toBe(0);
    clock.advance(4000);
    expect(store.sweep()).toBe(1);
    expect(store.has("b")).toBe(true);
    expect(expiryIndex.size).toBe(0);
  });

  it("deleting, evicting and clearing take keys out of the expiry index", () => {
    const expiryIndex = new ExpiryIndex();
    const { store } = open({ maxSize: 2, eviction: "lru" }, { expiryIndex });
    store.set("a", one, 1000);
    store.set("b", one, 1000);
    store.delete("a");
    expect(expiryIndex.size).toBe(1);
    store.set("c", one, 1000);
    store.set("d", one, 1000); // evicts b
    expect(expiryIndex.size).toBe(2);
    store.clear();
    expect(expiryIndex.size).toBe(0);
  });

  it("the sweep timer sweeps every cleanup interval and close() stops it", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const clock = new ManualClock(START);
    const store = new MemoryStore(memoryConfig({ cleanupIntervalMs: 5000 }), { clock });
    stores.push(store);
    expect(vi.getTimerCount()).toBe(1);
    store.set("a", one, 1000);
    clock.advance(1000);
    vi.advanceTimersByTime(5000);
    expect(store.stats()).toMatchObject({ expired: 1, size: 0 });
    store.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("the sweep timer does not keep the process alive", () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timeouts();
    const store = new MemoryStore(memoryConfig({ cleanupIntervalMs: 5000 }), { clock: new ManualClock(START) });
    stores.push(store);
    expect(timeouts()).toBe(before);
    // The probe itself sees a referenced timer.
    const probe = setInterval(() => {}, 5000);
    expect(timeouts()).toBe(before + 1);
    clearInterval(probe);
  });

  it("no sweep timer runs when sweepTimer is false", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    open();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("store.memory: LRU order", () => {
  function keysOf(store: MemoryStore): string[] {
    return store.list({ prefix: "", limit: 1000 }).keys.map((k) => k.key);
  }

  it("has, ttl, expire and list do not make a key recently used", () => {
    const { store } = open({ maxSize: 3, eviction: "lru" });
    for (const key of ["a", "b", "c"]) store.set(key, one, 0);
    store.has("a");
    store.ttl("a");
    store.expire("a", 60_000);
    store.list({ prefix: "a", limit: 1 });
    store.set("d", one, 0);
    expect(keysOf(store)).toEqual(["b", "c", "d"]);
  });

  it("getMany, entry, replace, put and incr make a key recently used", () => {
    const { store } = open({ maxSize: 7, eviction: "lru" });
    for (const key of ["get", "entry", "replace", "put", "incr", "old1", "old2"]) store.set(key, one, 0);
    store.getMany(["get"]);
    store.entry("entry");
    store.replace("replace", one, 0);
    store.put("put", one, { ttlMs: 0, onlyIfAbsent: false });
    store.incr("incr", { value: 1, float: false }, { value: 0, float: false }, 0);
    store.add("new1", one, 0);
    store.add("new2", one, 0);
    expect(keysOf(store)).toEqual(["entry", "get", "incr", "new1", "new2", "put", "replace"]);
    expect(store.stats().evicted).toBe(2);
  });

  it("a refused add does not make a key recently used", () => {
    const { store } = open({ maxSize: 2, eviction: "lru" });
    store.set("a", one, 0);
    store.set("b", one, 0);
    expect(store.add("a", one, 0)).toBe(false);
    store.set("c", one, 0);
    expect(keysOf(store)).toEqual(["b", "c"]);
  });

  it("an expired key is reclaimed before any live key is evicted", () => {
    const { store, clock } = open({ maxSize: 2, eviction: "lru" });
    store.set("old", one, 0);
    store.set("short", one, 1000);
    clock.advance(1000);
    store.set("new", one, 0);
    expect(keysOf(store)).toEqual(["new", "old"]);
    expect(store.stats()).toMatchObject({ evicted: 0, expired: 1 });
  });
});

describe("store.memory: versions and list", () => {
  it("versions are 16 hex digits that sort in write order", () => {
    const { store } = open();
    const versions: string[] = [];
    for (const key of ["b", "a", "b", "c"]) {
      store.set(key, one, 0);
      versions.push(store.entry(key)!.version);
    }
    for (const version of versions) expect(version).toMatch(/^[0-9a-f]{16}$/);
    expect([...versions].sort()).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
  });

  it("the key index follows evictions, sweeps and clear once built", () => {
    const { store, clock } = open({ maxSize: 4, eviction: "lru" });
    for (const key of ["a", "b", "c"]) store.set(key, one, 0);
    expect(store.list({ prefix: "", limit: 10 }).keys.map((k) => k.key)).toEqual(["a", "b", "c"]);
    store.set("d", one, 1000);
    store.set("e", one, 0); // evicts a
    clock.advance(1000);
    store.sweep(); // removes d
    store.setMany([["f", one], ["g", one]], 0); // evicts b
    expect(store.list({ prefix: "", limit: 10 }).keys.map((k) => k.key)).toEqual(["c", "e", "f", "g"]);
    store.clear();
    store.set("z", one, 0);
    expect(store.list({ prefix: "", limit: 10 }).keys.map((k) => k.key)).toEqual(["z"]);
  });

  it("a page stops early after stepping over many expired keys, and the walk goes on", () => {
    const { store, clock } = open({ maxSize: 10_000 });
    store.set("a", one, 0);
    for (let i = 0; i < 2500; i++) store.set(`m${String(i).padStart(4, "0")}`, one, 1000);
    store.set("z", one, 0);
    clock.advance(1000);
    const first = store.list({ prefix: "", limit: 10 });
    expect(first.keys.map((k) => k.key)).toEqual(["a"]);
    expect(first.hasMore).toBe(true);
    expect(first.cursor).toBe("m0999");
    expect(store.stats().expired).toBe(1000);
    const second = store.list({ prefix: "", after: first.cursor!, limit: 10 });
    expect(second).toEqual({ keys: [], cursor: "m1999", hasMore: true });
    const third = store.list({ prefix: "", after: second.cursor!, limit: 10 });
    expect(third).toEqual({ keys: [{ key: "z" }], hasMore: false });
    expect(store.stats()).toMatchObject({ expired: 2500, size: 2 });
  });

  it("incr returns the bytes it stored", () => {
    const { store } = open();
    const bytes = store.incr("n", { value: 1, float: false }, { value: 0, float: false }, 0);
    expect(store.get("n")).toEqual(bytes);
  });
});

describe("store.memory: values in slabs", () => {
  const text = (s: string) => encodeValue(s);

  it("a value read, then overwritten or deleted, keeps its bytes", () => {
    const { store } = open({ maxSize: 10_000 });
    store.set("k", text("a".repeat(20)), 0);
    const read = store.get("k")!;
    const record = store.entry("k")!.value;
    store.set("k", text("b".repeat(20)), 0); // as long: must not land on the bytes read
    const second = store.get("k")!;
    store.delete("k");
    // Churn enough to clean and drop every slab and reuse their ids.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 2000; i++) store.set(`x${i}`, text(`${round}:${i}`.repeat(3)), 0);
      for (let i = 0; i < 2000; i++) store.delete(`x${i}`);
    }
    store.clear();
    expect(read).toEqual(text("a".repeat(20)));
    expect(record).toEqual(text("a".repeat(20)));
    expect(second).toEqual(text("b".repeat(20)));
  });

  it("a long Lua string decoded from a value (a view of its slab) keeps its bytes after the key changes", () => {
    const { store } = open({ maxSize: 10_000 });
    const L = newState();
    store.set("k", text("a".repeat(100)), 0);
    pushMsgpack(L, store.get("k")!);
    const luaString = lua.lua_tolstring(L, -1)!;
    expect(luaString.buffer).toBe(store.get("k")!.buffer); // zero copy
    store.set("k", text("b".repeat(100)), 0);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 2000; i++) store.set(`x${i}`, text(`${round}:${i}`.repeat(20)), 0);
      for (let i = 0; i < 2000; i++) store.delete(`x${i}`);
    }
    lua.lua_setglobal(L, "s");
    runLua(L, `assert(s == string.rep("a", 100))`);
  });

  it("every key reads its own value through heavy churn, large values included", () => {
    const { store } = open({ maxSize: 2000, eviction: "lru" });
    const model = new Map<string, Uint8Array>();
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (let step = 0; step < 30_000; step++) {
      const key = `k${Math.floor(next() * 1500)}`;
      const r = next();
      if (r < 0.6) {
        const value = text(`${step}`.padEnd(next() < 0.02 ? 5000 : Math.floor(next() * 80), "v"));
        store.set(key, value, 0);
        model.set(key, value);
      } else if (r < 0.7) {
        store.delete(key);
        model.delete(key);
      } else {
        const got = store.get(key);
        const want = model.get(key);
        if (want === undefined ? got !== undefined : got === undefined || Buffer.compare(got, want) !== 0) {
          expect(got, `${key} at step ${step}`).toEqual(want);
        }
      }
    }
    expect(store.stats().size).toBe(model.size);
    for (const [key, value] of model) expect(store.get(key)).toEqual(value);
  });

  it("bytes counts keys, values and metadata through overwrites, in place or not, and deletes", () => {
    const { store, clock } = open();
    const meta = text("m");
    store.set("ab", text("xyz"), 0); // 2 + 4
    store.set("ab", text("uvw"), 0); // overwritten in place
    store.get("ab");
    store.set("ab", text("rst"), 0); // appended (the old bytes were read)
    store.put("cd", text("long value"), { ttlMs: 0, onlyIfAbsent: false, metadata: meta }); // 2 + 11 + 2
    expect(store.stats().bytes).toBe(6 + 15);
    store.incr("n", { value: 1, float: false }, { value: 0, float: false }, 1000); // 1 + 1
    store.incr("n", { value: 1, float: false }, { value: 0, float: false }, 0);
    expect(store.stats().bytes).toBe(6 + 15 + 2);
    store.set("cd", text("x"), 0); // drops the metadata
    expect(store.stats().bytes).toBe(6 + 4 + 2);
    clock.advance(1000);
    store.sweep();
    store.delete("ab");
    expect(store.stats()).toMatchObject({ bytes: 4, size: 1 });
    expect(store.get("n")).toBeUndefined();
  });

  it("a value or metadata that is a view into a larger buffer is kept as a copy sized to itself", () => {
    const { store } = open({ maxSize: 10_000, maxValueSize: 2 << 20 });
    // One decoded message holding a small and a large value and some metadata, as a worker's
    // set_many or put arrives: views of one 8 MiB buffer.
    const message = new Uint8Array(8 << 20);
    const large = text("L".repeat(5000));
    const small = text("pin");
    const meta = text("meta");
    message.set(large, 100);
    message.set(small, 6000);
    message.set(meta, 7000);
    const view = (at: number, n: number) => message.subarray(at, at + n);
    store.setMany([["big", view(100, large.length)], ["pin", view(6000, small.length)]], 0);
    store.put("m", view(100, large.length), { ttlMs: 0, onlyIfAbsent: false, metadata: view(7000, meta.length) });
    for (const key of ["big", "pin", "m"]) {
      const value = store.get(key)!;
      // A slab value lives in a slab of at most 64 KiB; a large one in a buffer of its own size.
      expect(value.buffer.byteLength, key).toBeLessThanOrEqual(key === "pin" ? 65536 : large.length);
    }
    const metadata = store.entry("m")!.metadata!;
    expect(metadata).toEqual(meta);
    expect(metadata.buffer.byteLength).toBe(meta.length);
    message.fill(0); // the caller's buffer is not the store's
    expect(store.get("big")).toEqual(large);
    expect(store.entry("m")!.metadata).toEqual(meta);
  });

  it("a large value that is a whole buffer of its own is kept without a copy", () => {
    const { store } = open();
    const large = text("L".repeat(5000));
    store.set("big", large, 0);
    expect(store.get("big")).toBe(large);
  });

  it("keys built char by char (V8 cons strings, flattened when stored) read back intact", () => {
    const { store } = open();
    let key = "";
    for (const c of "a-long-key-built-char-by-char") key += c;
    store.set(key, one, 0);
    expect(store.list({ prefix: "", limit: 10 }).keys).toEqual([{ key: "a-long-key-built-char-by-char" }]);
    expect(store.get("a-long-key-built-char-by-char")).toEqual(one);
  });
});

import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind } from "../../src/errors.js";
import { attachZone, createZone, ZoneStore } from "../../src/store/zone/index.js";
import { H_LOCK, H_SHARDS, H_THREADS, R_SEQ, R_VLEN, S_LOCK, S_LOG_N, SHARD_WORDS, SHARDS, THREAD_SLOTS } from "../../src/store/zone/layout.js";
import { hashKey as hashKeyFn, THREAD_TOKEN, Zone } from "../../src/store/zone/zone.js";
import { storeSuite } from "./store-suite.js";
import { zoneConfig, zoneSuiteSkips } from "./zone-config.js";

const MiB = 1024 * 1024;

/** A suite store whose close() first walks the zone: every case also proves the zone consistent. */
function verifiedOnClose(store: ZoneStore): ZoneStore {
  const close = store.close.bind(store);
  store.close = () => {
    const problems = store.verify() as string[];
    close();
    if (problems.length > 0) throw new Error(`zone inconsistent after the case:\n${problems.join("\n")}`);
  };
  return store;
}

storeSuite("store.memory (zone)", ({ clock, config }) => verifiedOnClose(createZone(zoneConfig(config), { clock })), { skip: zoneSuiteSkips });

const START = 1_700_000_000_000;
const value = (n: number, bytes = 32) => {
  const out = new Uint8Array(bytes);
  out.fill(n & 0xff);
  return out;
};
/** Every key's value bytes, as hex, walking list pages. */
async function contents(store: ZoneStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let after: string | undefined;
  for (;;) {
    const page = await store.list(after === undefined ? { prefix: "", limit: 1000 } : { prefix: "", after, limit: 1000 });
    for (const { key } of page.keys) out.set(key, Buffer.from((await store.get(key))!).toString("hex"));
    if (!page.hasMore) return out;
    after = page.cursor;
  }
}

async function expectStoreError(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

describe("store.memory (zone): max_memory", () => {
  it("a write that does not fit max_memory is refused as Unavailable, retryable, under eviction none", async () => {
    const store = createZone(zoneConfig({ maxSize: 100_000 }, MiB), { clock: new ManualClock(START) });
    let written = 0;
    let error: unknown;
    for (; written < 10_000; written++) {
      try {
        store.set(`k${written}`, value(written, 4096), 0);
      } catch (e) {
        error = e;
        break;
      }
    }
    expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
    expect(written).toBeGreaterThan(100);
    expect(store.size()).toBe(written);
    expect(store.verify()).toEqual([]);
    // What was stored is intact, and deleting makes room again.
    expect(store.get("k0")).toEqual(value(0, 4096));
    store.delete("k0");
    store.set("again", value(1, 4096), 0);
    expect(store.verify()).toEqual([]);
  });

  it("with lru, a write past max_memory evicts the least recently used keys", async () => {
    const store = createZone(zoneConfig({ maxSize: 100_000, eviction: "lru" }, MiB), { clock: new ManualClock(START) });
    for (let i = 0; i < 2000; i++) store.set(`k${i}`, value(i, 4096), 0);
    const stats = store.stats() as { evicted: number; size: number };
    expect(stats.evicted).toBeGreaterThan(1000);
    expect(stats.size + stats.evicted).toBe(2000);
    expect(store.has("k0")).toBe(false);
    expect(store.get("k1999")).toEqual(value(1999, 4096));
    expect(store.verify()).toEqual([]);
  });

  it("a value larger than every free block is stored once free space is merged and old keys evicted", async () => {
    const store = createZone(zoneConfig({ maxSize: 100_000, eviction: "lru" }, MiB), { clock: new ManualClock(START) });
    for (let i = 0; i < 5000; i++) store.set(`small${i}`, value(i, 100), 0);
    for (let i = 0; i < 5000; i += 2) store.delete(`small${i}`);
    const big = value(7, 400 * 1024);
    store.set("big", big, 0);
    expect(store.get("big")).toEqual(big);
    expect(store.get("small4999")).toEqual(value(4999, 100));
    expect(store.verify()).toEqual([]);
  });

  it("a value that can never fit the zone is refused without evicting anything", async () => {
    const store = createZone(zoneConfig({ eviction: "lru" }, MiB), { clock: new ManualClock(START) });
    store.set("keep", value(1), 0);
    const error = await expectStoreError(() => store.set("huge", value(2, 2 * MiB), 0));
    expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE });
    expect(store.get("keep")).toEqual(value(1));
    expect((store.stats() as { evicted: number }).evicted).toBe(0);
  });
});

describe("store.memory (zone): one zone, several stores", () => {
  it("a store attached to the buffer sees the same keys, versions, TTLs and counters", () => {
    const clock = new ManualClock(START);
    const host = createZone(zoneConfig(), { clock });
    const other = attachZone(host.buffer, zoneConfig(), { clock });
    host.set("a", encodeValue("from host"), 1000);
    expect(other.get("a")).toEqual(encodeValue("from host"));
    expect(other.ttl("a")).toBe(1000);
    const version = (host.entry("a") as { version: string }).version;
    expect(other.put("a", encodeValue(2), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("ok");
    expect(host.put("a", encodeValue(3), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("conflict");
    expect(host.stats()).toMatchObject({ hits: 2, sets: 2, size: 1 });
    other.clear();
    expect(host.size()).toBe(0);
  });

  it("attaching something that is not a zone is refused", () => {
    expect(() => attachZone(new SharedArrayBuffer(1024 * 1024), zoneConfig(), { clock: new ManualClock(START) })).toThrow(/not a luastore zone/);
  });
});

describe("store.memory (zone): verify", () => {
  it("reports a broken hash chain, LRU link, expiry heap and skip list", () => {
    const clock = new ManualClock(START);
    const fresh = () => {
      const store = createZone(zoneConfig(), { clock });
      for (let i = 0; i < 50; i++) store.set(`k${i}`, value(i), i % 2 === 0 ? 1000 + i : 0);
      expect(store.verify()).toEqual([]);
      return store;
    };
    const corrupt = (change: (store: ZoneStore, rec: number) => void): string[] => {
      const store = fresh();
      const z = store.zone;
      change(store, z.find("k10", hashKeyFn("k10")));
      return store.verify() as string[];
    };
    // word offsets inside an entry record (src/store/zone/layout.ts)
    expect(corrupt((s, rec) => (s.zone.i32[(rec >> 2) + 1] = rec)).join()).toMatch(/chained twice/); // a hash chain loop
    expect(corrupt((s, rec) => (s.zone.i32[(rec >> 2) + 2] = 0)).join()).toMatch(/LRU/); // LRU prev
    expect(corrupt((s, rec) => (s.zone.i32[(rec >> 2) + 8] = 3)).join()).toMatch(/heap/); // heap position
    expect(corrupt((s, rec) => (s.zone.i32[(rec >> 2) + 14] = 0)).join()).toMatch(/skip list/); // level-0 forward
    expect(corrupt((s) => (s.zone.i32[7] = s.zone.i32[7]! + 1)).join()).toMatch(/bytes/); // the byte total
  });
});

describe("store.memory (zone): lists and sorted sets in the zone", () => {
  /** A seeded generator (mulberry32): the same mix on every run. */
  const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const item = (n: number) => {
    // Sizes from 1 byte to past a chunk (512 B), so pushes also make chunks of one item.
    const out = new Uint8Array(1 + ((n * 37) % 700)).fill(n & 0xff);
    if (out.length >= 4) new DataView(out.buffer).setUint32(0, n, true);
    return out;
  };
  const hexes = (values: readonly Uint8Array[]) => values.map((v) => Buffer.from(v).toString("hex"));

  it("a list over many chunks matches a deque model under pushes, pops, trims and ranges, and verifies", () => {
    const store = createZone(zoneConfig({}, 32 * MiB), { clock: new ManualClock(START) });
    const random = prng(5);
    const model: Uint8Array[] = [];
    let next = 0;
    for (let step = 0; step < 3000; step++) {
      const r = random();
      if (r < 0.45) {
        const values = Array.from({ length: 1 + Math.floor(random() * 40) }, () => item(next++));
        const left = random() < 0.5;
        expect(store.listPush("q", left ? "left" : "right", values)).toBe(model.length + values.length);
        if (left) model.unshift(...[...values].reverse());
        else model.push(...values);
      } else if (r < 0.8) {
        const count = 1 + Math.floor(random() * 30);
        const left = random() < 0.5;
        const expected = left ? model.splice(0, count) : model.splice(Math.max(0, model.length - count)).reverse();
        expect(hexes(store.listPop("q", left ? "left" : "right", count) as Uint8Array[])).toEqual(hexes(expected));
      } else if (r < 0.85) {
        const from = Math.floor(random() * 20);
        const to = model.length - 1 - Math.floor(random() * 20);
        const kept = from > to ? [] : model.slice(from, to + 1);
        expect(store.listTrim("q", from, to)).toBe(kept.length);
        model.splice(0, model.length, ...kept);
      } else {
        const from = Math.floor(random() * (model.length + 2));
        const to = from + Math.floor(random() * 60);
        expect(hexes(store.listRange("q", from, to) as Uint8Array[])).toEqual(hexes(model.slice(from, to + 1)));
      }
      expect(store.listLength("q")).toBe(model.length);
      if (step % 100 === 0) expect(store.verify()).toEqual([]);
    }
    expect(hexes(store.listRange("q", 0, -1) as Uint8Array[])).toEqual(hexes(model));
    let bytes = 0;
    for (const value of model) bytes += value.length;
    expect((store.stats() as { bytes: number }).bytes).toBe(model.length === 0 ? 0 : 1 + bytes);
    expect(store.verify()).toEqual([]);
  });

  it("a sorted set of thousands of members matches a sorted model in scores, ranks and ranges, and verifies", () => {
    const store = createZone(zoneConfig({}, 32 * MiB), { clock: new ManualClock(START) });
    const random = prng(9);
    const model = new Map<string, number>();
    const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const sorted = () => [...model].map(([member, score]) => ({ member, score })).sort((a, b) => a.score - b.score || byteOrder(a.member, b.member));
    for (let step = 0; step < 4000; step++) {
      const member = `m${Math.floor(random() * 3000)}${step % 3 === 0 ? "\xff\x00" : ""}`;
      const r = random();
      if (r < 0.5) {
        const batch = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, i) => ({ member: i === 0 ? member : `m${Math.floor(random() * 3000)}`, score: Math.floor(random() * 50) - 25 }));
        const fresh = new Set(batch.map((e) => e.member).filter((m) => !model.has(m)));
        expect(store.zsetAdd("z", batch)).toBe(fresh.size);
        for (const { member: m, score } of batch) model.set(m, score);
      } else if (r < 0.6) {
        const score = (model.get(member) ?? 0) + 0.5;
        expect(store.zsetIncr("z", member, 0.5)).toBe(score);
        model.set(member, score);
      } else if (r < 0.75) {
        expect(store.zsetRemove("z", [member, "nobody"])).toBe(model.delete(member) ? 1 : 0);
      } else if (r < 0.85) {
        const rank = sorted().findIndex((e) => e.member === member);
        expect(store.zsetRank("z", member, false)).toBe(rank === -1 ? undefined : rank);
        expect(store.zsetScore("z", member)).toBe(model.get(member));
      } else if (r < 0.93) {
        const start = Math.floor(random() * model.size);
        expect(store.zsetRange("z", { by: "rank", start, stop: start + 9, reverse: r < 0.89 })).toEqual(
          r < 0.89 ? sorted().reverse().slice(start, start + 10) : sorted().slice(start, start + 10),
        );
      } else {
        const min = Math.floor(random() * 50) - 25;
        const all = sorted().filter((e) => e.score >= min && e.score <= min + 2);
        expect(store.zsetRange("z", { by: "score", min, max: min + 2, reverse: r < 0.96, limit: 7 })).toEqual((r < 0.96 ? all.reverse() : all).slice(0, 7));
      }
      expect(store.zsetCard("z")).toBe(model.size);
      if (step % 200 === 0) expect(store.verify()).toEqual([]);
    }
    expect(model.size).toBeGreaterThan(1000);
    expect(store.zsetRange("z", { by: "rank", start: 0, stop: -1, reverse: false })).toEqual(sorted());
    expect(store.verify()).toEqual([]);
  });

  it("a deleted, overwritten or expired collection gives all its blocks back", () => {
    const clock = new ManualClock(START);
    const store = createZone(zoneConfig({}, 4 * MiB), { clock });
    store.set("anchor", value(1), 0);
    const free = store.zone.freeBytes();
    const fill = () => {
      for (let i = 0; i < 20; i++) store.listPush("l", "right", Array.from({ length: 100 }, (_, j) => value(i + j, 40)));
      // In calls of 500 members, as a Lua call carries at most.
      for (let i = 0; i < 3000; i += 500) store.zsetAdd("z", Array.from({ length: 500 }, (_, j) => ({ member: `member${i + j}`, score: i + j })));
      expect(store.zone.freeBytes()).toBeLessThan(free - 200_000);
    };
    fill();
    store.delete("l");
    store.set("z", value(2), 0);
    store.delete("z");
    // Each call frees a bounded batch of a discarded collection's blocks after it commits.
    for (let i = 0; i < 20 && store.zone.hasGarbage(); i++) store.set("anchor", value(1), 0);
    expect(store.zone.hasGarbage()).toBe(false);
    expect(store.zone.freeBytes()).toBe(free);
    fill();
    store.expire("l", 10);
    store.expire("z", 10);
    clock.advance(10);
    expect(store.sweep()).toBe(2);
    for (let i = 0; i < 20 && store.zone.hasGarbage(); i++) store.set("anchor", value(1), 0);
    expect(store.zone.freeBytes()).toBe(free);
    expect(store.verify()).toEqual([]);
  });

  it("with lru, writes past max_memory evict whole lists and sorted sets; under eviction none a push that does not fit is Unavailable and changes nothing", async () => {
    const clock = new ManualClock(START);
    const lru = createZone(zoneConfig({ maxSize: 100_000, eviction: "lru" }, MiB), { clock });
    for (let i = 0; i < 100; i++) {
      lru.listPush(`l${i}`, "right", Array.from({ length: 50 }, (_, j) => value(j, 200)));
      lru.zsetAdd(`z${i}`, Array.from({ length: 50 }, (_, j) => ({ member: `m${j}`.padEnd(100, "x"), score: j })));
    }
    const stats = lru.stats() as { evicted: number; size: number };
    expect(stats.evicted).toBeGreaterThan(10);
    expect(lru.listLength("l99")).toBe(50);
    expect(lru.zsetCard("z99")).toBe(50);
    expect(lru.has("l0")).toBe(false);
    expect(lru.verify()).toEqual([]);

    const none = createZone(zoneConfig({ maxSize: 100_000 }, MiB), { clock });
    let error: unknown;
    let pushed = 0;
    for (; pushed < 1000 && error === undefined; pushed++) {
      try {
        none.listPush("q", "right", Array.from({ length: 20 }, (_, j) => value(j, 300)));
      } catch (e) {
        error = e;
      }
    }
    expect(error).toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
    expect(none.listLength("q")).toBe(20 * (pushed - 1));
    expect(none.verify()).toEqual([]);
    expect(await expectStoreError(() => none.zsetAdd("q2", Array.from({ length: 500 }, (_, j) => ({ member: `m${j}`.padEnd(200, "x"), score: j }))))).toMatchObject({
      kind: ErrorKind.UNAVAILABLE,
    });
    expect(none.has("q2")).toBe(false);
    expect(none.verify()).toEqual([]);
  });

  it("verify reports a broken list chunk and a broken sorted-set span", () => {
    const store = createZone(zoneConfig(), { clock: new ManualClock(START) });
    store.listPush("l", "right", Array.from({ length: 100 }, (_, i) => value(i)));
    store.zsetAdd("z", Array.from({ length: 100 }, (_, i) => ({ member: `m${i}`, score: i })));
    expect(store.verify()).toEqual([]);
    const z = store.zone;
    const list = z.valueBlock(z.find("l", hashKeyFn("l")));
    const chunk = z.i32[(list >> 2) + 1]!; // D_CHAIN: the first chunk
    z.i32[(chunk >> 2) + 3]! += 1; // C_COUNT
    expect((store.verify() as string[]).join()).toMatch(/list chunk/);
    z.i32[(chunk >> 2) + 3]! -= 1;
    const zset = z.valueBlock(z.find("z", hashKeyFn("z")));
    z.i32[(zset >> 2) + 7]! += 1; // the head's span at level 0
    expect((store.verify() as string[]).join()).toMatch(/span/);
  });
});

describe("store.memory (zone): shards", () => {
  const shardOfKey = (key: string) => Zone.shardOf(hashKeyFn(key));
  /** The words of the shard table, as they are now. */
  const shardTable = (store: ZoneStore) => Array.from(store.zone.i32.subarray(H_SHARDS, H_SHARDS + SHARDS * SHARD_WORDS));

  it("a set of an existing key, its value the size of the old one, writes only its own shard's lock line, and no sequence word", () => {
    const store = createZone(zoneConfig(), { clock: new ManualClock(START) });
    for (let i = 0; i < 64; i++) store.set(`k${i}`, value(i), 0);
    const before = shardTable(store);
    store.set("k7", value(99), 0);
    const after = shardTable(store);
    const shard = shardOfKey("k7");
    for (let word = 0; word < before.length; word++) {
      if (before[word] === after[word]) continue;
      // Another shard's words, or this shard's sequence, would send other readers back.
      expect(Math.floor(word / SHARD_WORDS), `word ${word} changed`).toBe(shard);
      expect(word % SHARD_WORDS, `word ${word} changed`).toBeGreaterThanOrEqual(S_LOCK);
    }
    expect(store.get("k7")).toEqual(value(99));
    expect(store.verify()).toEqual([]);
  });

  it("versions of keys across every shard never repeat, and each key's grow", () => {
    const store = createZone(zoneConfig(), { clock: new ManualClock(START) });
    const seen = new Set<string>();
    const last = new Map<string, string>();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 200; i++) {
        const key = `k${i}`;
        store.set(key, value(round), 0);
        const version = (store.entry(key) as { version: string }).version;
        expect(seen.has(version), `${key} got ${version} again`).toBe(false);
        seen.add(version);
        // Fixed-width hex: string order is number order.
        if (last.has(key)) expect(version > last.get(key)!).toBe(true);
        last.set(key, version);
      }
    }
    // The 200 keys fell into every shard, each shard's counter giving its own versions.
    expect(new Set(Array.from({ length: 200 }, (_, i) => shardOfKey(`k${i}`))).size).toBe(SHARDS);
  });

  it("verify reports a shard's unfinished log and an entry left odd", () => {
    const store = createZone(zoneConfig(), { clock: new ManualClock(START) });
    for (let i = 0; i < 20; i++) store.set(`k${i}`, value(i), 0);
    const z = store.zone;
    const base = H_SHARDS + SHARD_WORDS * 3;
    z.i32[base + S_LOG_N] = 1;
    expect((store.verify() as string[]).join()).toMatch(/shard 3 undo log/);
    z.i32[base + S_LOG_N] = 0;
    const rec = z.find("k4", hashKeyFn("k4"));
    z.i32[(rec >> 2) + R_SEQ]! += 1;
    expect((store.verify() as string[]).join()).toMatch(/odd sequence/);
  });

  it("a host-thread write that needs the global lock while another thread holds it waits without blocking the loop, then applies", async () => {
    const store = createZone(zoneConfig(), { clock: new ManualClock(START) });
    // Another live thread (its own token and liveness slot) inside an insert: its shard and the global lock.
    const other = Zone.attach(store.buffer, THREAD_TOKEN + 1000);
    const key = "fresh";
    const otherShard = (shardOfKey(key) + 1) % SHARDS;
    expect(other.tryLockShard(otherShard)).toBe(true);
    expect(Atomics.compareExchange(store.zone.i32, H_LOCK, 0, other.token)).toBe(0);
    const pending = store.set(key, value(5), 0);
    expect(pending).toBeInstanceOf(Promise);
    let settled = false;
    void (pending as Promise<void>).then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(settled).toBe(false);
    Atomics.store(store.zone.i32, H_LOCK, 0);
    other.unlock();
    await pending;
    expect(store.get(key)).toEqual(value(5));
    expect(store.verify()).toEqual([]);
  });

  it("a thread that died holding a shard's and the global lock is recovered whole by the next thread that needs the shard", () => {
    const store = createZone(zoneConfig(), { clock: new ManualClock(START) });
    for (let i = 0; i < 20; i++) store.set(`k${i}`, value(i), 0);
    // A half-done write of another thread: a logged change under k3's shard and the global lock.
    const dead = Zone.attach(store.buffer, THREAD_TOKEN + 2000);
    expect(dead.tryLockShard(shardOfKey("k3"))).toBe(true);
    dead.global();
    dead.w((dead.find("k3", hashKeyFn("k3")) >> 2) + R_VLEN, 12345);
    // Then it dies: its liveness slot goes (as the host clears a worker's on exit), its locks stay.
    const i32 = store.zone.i32;
    for (let slot = 0; slot < THREAD_SLOTS; slot++) Atomics.compareExchange(i32, H_THREADS + slot, dead.token, 0);
    store.set("k3", value(30), 0);
    expect(Atomics.load(i32, H_LOCK)).toBe(0);
    expect(store.get("k3")).toEqual(value(30));
    expect(store.get("k4")).toEqual(value(4));
    expect(store.verify()).toEqual([]);
  });
});

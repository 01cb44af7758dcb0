/**
 * The shared-memory zone (src/store/zone) against the Map store, in the same run:
 * - overhead per entry beyond key and value bytes (16 B key, 32 B value): blocks in use plus
 *   the hash bucket and expiry-heap slot each entry is sized for;
 * - raw `get` from JS: zone ÷ Map store (what an inline `s:get` would gain or lose);
 * - sweep of 1 % ÷ 100 % expired keys on 1M keys;
 * - gets and sets (3:1) from 2 worker threads at once ÷ from 1, aggregate calls/s.
 * Called by bench/main.ts (`--only=zone`).
 */
import { Worker } from "node:worker_threads";
import { ManualClock } from "../src/clock.js";
import { encodeValue } from "../src/codec/msgpack.js";
import type { MemoryStoreConfig } from "../src/registry/types.js";
import { MemoryStore } from "../src/store/memory.js";
import { createZone, type ZoneStore } from "../src/store/zone/index.js";
import { H_EXP_CAP, H_BUCKET_MASK, H_FREE_BYTES, H_HEAP_START, H_TOP } from "../src/store/zone/layout.js";

type Record = (name: string, value: number, unit: string, target?: { op: "<=" | ">="; bound: number }) => void;

const MiB = 1024 * 1024;

function zoneConfig(maxSize: number, maxMemory: number): MemoryStoreConfig {
  return {
    id: "bench:zone",
    namespace: "bench",
    name: "zone",
    kind: "store.memory",
    maxSize,
    maxMemory,
    cleanupIntervalMs: 60_000,
    maxKeyLength: 1024,
    maxValueSize: 1 << 20,
    eviction: "none",
    pool: { max: 64 },
    source: { file: "<bench>", line: 0, column: 0 },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const keyName = (i: number): string => `key:${String(i).padStart(12, "0")}`;

/** Bytes the zone spends on its entries: blocks in use, and per entry a bucket and a heap slot. */
function zoneBytesInUse(store: ZoneStore): number {
  const i32 = store.zone.i32;
  const blocks = i32[H_TOP]! - i32[H_HEAP_START]! - i32[H_FREE_BYTES]!;
  return blocks + 4 * (i32[H_BUCKET_MASK]! + 1) + 4 * i32[H_EXP_CAP]!;
}

function overhead(quick: boolean, record: Record): void {
  const n = quick ? 50_000 : 200_000;
  const store = createZone(zoneConfig(n, 64 * MiB), { clock: new ManualClock(0) });
  const value = encodeValue("v".repeat(30));
  let payload = 0;
  for (let i = 0; i < n; i++) {
    const key = keyName(i);
    store.set(key, value, 0);
    payload += key.length + value.length;
  }
  record("zone overhead per entry (16 B key, 32 B value)", (zoneBytesInUse(store) - payload) / n, "bytes", { op: "<=", bound: 100 });
}

function getRatio(quick: boolean, record: Record): void {
  const keys = 10_000;
  const calls = quick ? 300_000 : 2_000_000;
  const clock = new ManualClock(0);
  const map = new MemoryStore(zoneConfig(keys, 64 * MiB), { clock, sweepTimer: false });
  const zone = createZone(zoneConfig(keys, 64 * MiB), { clock });
  const value = encodeValue("v".repeat(30));
  const names = Array.from({ length: keys }, (_, i) => keyName(i));
  for (const key of names) {
    map.set(key, value, 0);
    zone.set(key, value, 0);
  }
  // `stride` 7919 visits the 10 000 keys in a scattered order (cache misses, as a busy store
  // sees); 0 reads one hot key, as a Lua loop of `s:get("k")` does.
  let stride = 7919;
  const rate = (store: MemoryStore | ZoneStore): number => {
    const t0 = performance.now();
    let found = 0;
    for (let c = 0, i = 0; c < calls; c++) {
      if (store.get(names[(i = (i + stride) % keys)]!) !== undefined) found++;
    }
    if (found !== calls) throw new Error("a get missed");
    return calls / ((performance.now() - t0) / 1000);
  };
  rate(map);
  rate(zone);
  for (const [label, step] of [["10 000 keys", 7919], ["one hot key", 0]] as const) {
    stride = step;
    const ratios: number[] = [];
    const zoneRates: number[] = [];
    const mapRates: number[] = [];
    for (let turn = 0; turn < 5; turn++) {
      // Alternate the order, so neither side always runs on a warmer (or busier) machine.
      let z: number;
      let m: number;
      if (turn % 2 === 0) {
        z = rate(zone);
        m = rate(map);
      } else {
        m = rate(map);
        z = rate(zone);
      }
      zoneRates.push(z);
      mapRates.push(m);
      ratios.push(z / m);
    }
    record(`get from JS, ${label}, Map store`, median(mapRates), "ops/s");
    record(`get from JS, ${label}, zone`, median(zoneRates), "ops/s");
    record(`get from JS, ${label}: zone / Map store`, median(ratios), "ratio", { op: ">=", bound: 0.8 });
  }
}

function sweepRatio(quick: boolean, record: Record): void {
  const n = quick ? 100_000 : 1_000_000;
  const value = encodeValue(1);
  const measure = (fractionExpired: number): number => {
    const clock = new ManualClock(0);
    const store = createZone(zoneConfig(n, (quick ? 32 : 256) * MiB), { clock });
    const expiring = Math.round(n * fractionExpired);
    for (let i = 0; i < n; i++) store.set(`k${i}`, value, i < expiring ? 1000 : 3_600_000);
    clock.advance(2000);
    const t0 = performance.now();
    const removed = store.sweep();
    const ms = performance.now() - t0;
    if (removed !== expiring) throw new Error(`sweep removed ${removed}, expected ${expiring}`);
    return ms;
  };
  measure(0.01);
  const one = median([measure(0.01), measure(0.01), measure(0.01)]);
  const all = median([measure(1), measure(1)]);
  record(`zone sweep, 1 % of ${n.toLocaleString("en")} expired`, one, "ms");
  record(`zone sweep, 100 % of ${n.toLocaleString("en")} expired`, all, "ms");
  record("zone sweep 1 % / sweep 100 %", one / all, "ratio", { op: "<=", bound: 0.05 });
}

/**
 * Calls/s of `threads` workers doing gets and sets on one zone for `ms`. Each worker starts at
 * its own place in the key order (as workers serving different requests do), unless `inStep`:
 * then all walk the same keys at the same moment, every call on a key the other is on too.
 */
async function threadRate(store: ZoneStore, threads: number, ms: number, inStep = false): Promise<number> {
  const control = new SharedArrayBuffer(8);
  const flags = new Int32Array(control);
  const keys = 10_000;
  const workers = Array.from(
    { length: threads },
    (_, w) =>
      new Worker(new URL("./zone-worker.js", import.meta.url), {
        workerData: { buffer: store.buffer, config: store.config, control, keys, start: inStep ? 0 : Math.floor((w * keys) / threads) },
      }),
  );
  const done = workers.map((w) => new Promise<number>((resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
  }));
  while (Atomics.load(flags, 1) < threads) await new Promise((resolve) => setTimeout(resolve, 5));
  const t0 = performance.now();
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  await new Promise((resolve) => setTimeout(resolve, ms));
  Atomics.store(flags, 0, 2);
  const calls = (await Promise.all(done)).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - t0) / 1000;
  for (const w of workers) await w.terminate();
  return calls / seconds;
}

async function threadScaling(quick: boolean, record: Record): Promise<void> {
  const store = createZone(zoneConfig(10_000, 64 * MiB), { clock: new ManualClock(0) });
  const ms = quick ? 300 : 1000;
  await threadRate(store, 1, 100);
  const ones: number[] = [];
  const twos: number[] = [];
  const inSteps: number[] = [];
  for (let turn = 0; turn < 3; turn++) {
    ones.push(await threadRate(store, 1, ms));
    twos.push(await threadRate(store, 2, ms));
    inSteps.push(await threadRate(store, 2, ms, true));
  }
  const one = median(ones);
  const two = median(twos);
  record("zone get/set from 1 worker", one, "ops/s");
  record("zone get/set from 2 workers, together", two, "ops/s");
  record("zone, 2 workers / 1 worker", two / one, "ratio", { op: ">=", bound: 1.6 });
  // Both on one key at once, all the time: the contention of a hot key, which no sharding removes.
  record("zone, 2 workers in step on the same keys / 1 worker", median(inSteps) / one, "ratio");
  for (const problem of store.verify() as string[]) throw new Error(`zone inconsistent after the bench: ${problem}`);
}

export async function zoneBenchmarks(options: { quick: boolean; record: Record; log: (line: string) => void }): Promise<void> {
  const { quick, record, log } = options;
  log("\nShared-memory zone (store.memory for workers) versus the Map store");
  overhead(quick, record);
  getRatio(quick, record);
  sweepRatio(quick, record);
  await threadScaling(quick, record);
}

/**
 * A worker of the zone bench (bench/zone.ts): attaches the zone it is given and does gets and
 * sets on it (3 gets per set, over 10 000 keys, from key `start` on in a scattered order) until
 * the shared stop word is set, then reports how many calls it made.
 */
import { parentPort, workerData } from "node:worker_threads";
import { systemClock } from "../src/clock.js";
import type { MemoryStoreConfig } from "../src/registry/types.js";
import { attachZone } from "../src/store/zone/index.js";

const { buffer, config, control, keys, start } = workerData as { buffer: SharedArrayBuffer; config: MemoryStoreConfig; control: SharedArrayBuffer; keys: number; start: number };
const store = attachZone(buffer, config, { clock: systemClock });
const flags = new Int32Array(control);
const value = new Uint8Array(32).fill(7);
const names = Array.from({ length: keys }, (_, i) => `key:${String(i).padStart(12, "0")}`);
// Ready, then wait for the start signal so every worker starts at once.
Atomics.add(flags, 1, 1);
Atomics.notify(flags, 1);
while (Atomics.load(flags, 0) === 0) Atomics.wait(flags, 0, 0, 10);
let calls = 0;
let i = start;
while (Atomics.load(flags, 0) === 1) {
  for (let k = 0; k < 256; k++) {
    const key = names[(i = (i + 7919) % keys)]!;
    if ((k & 3) === 0) store.set(key, value, 0);
    else store.get(key);
  }
  calls += 256;
}
parentPort!.postMessage(calls);

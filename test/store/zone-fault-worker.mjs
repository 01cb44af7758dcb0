// A worker thread for test/store/zone-faults.test.ts: it runs zone operations against the built
// zone (dist/, as Lua workers do) and gets stopped inside them, at a chosen step of the fault hook
// or at a random instruction. Plain JavaScript: worker threads load no TypeScript.
//
// A stop that the worker survives (a throw, or a vm timeout: V8 terminates the running script at
// whatever instruction it is at, as worker.terminate() does, and the thread goes on) stands for a
// dead thread by giving each attempt its own zone token; the host then declares that token gone
// (zone.tokenExited), as it does for a worker on 'exit'. Real deaths (process.exit in the hook,
// worker.terminate() from the host) are run too.
import vm from "node:vm";
import { parentPort, workerData } from "node:worker_threads";
import { attachZone, createZone, setZoneFault } from "../../dist/store/zone/index.js";

const MiB = 1024 * 1024;
/** The fixed clock time of the sweep (a worker cannot share a ManualClock). */
export const NOW = 1_700_000_000_000;
const fixedClock = { now: () => NOW, sleep: () => Promise.resolve() };
const systemClock = { now: () => Date.now(), sleep: () => Promise.resolve() };

let nextToken = workerData?.tokenBase ?? 1 << 24;
const context = vm.createContext({ run: undefined });
const FAULT = new Error("injected fault");

/** A seeded Math.random (mulberry32), so a step number means the same point on every run. */
function seedRandom(seed) {
  let a = seed >>> 0;
  Math.random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bytes = (n, length = 8) => new Uint8Array(length).fill(n);
const msgpackInt = (n) => Uint8Array.of(n); // positive fixint
const int = (value) => ({ value, float: false });

function config(overrides) {
  return {
    id: "faults:zone",
    namespace: "faults",
    name: "zone",
    kind: "store.memory",
    maxSize: overrides.maxSize ?? 1000,
    eviction: overrides.eviction ?? "none",
    maxMemory: overrides.maxMemory ?? 2 * MiB,
    cleanupIntervalMs: 300_000,
    maxKeyLength: 1024,
    maxValueSize: MiB,
    pool: { max: 64 },
    source: { file: "<faults>", line: 0, column: 0 },
  };
}

/** The keys every fixture holds: canaries (c*), keys the ops change (k*), expired ones (x*). */
function fixture(store) {
  for (let i = 0; i < 12; i++) store.set(`c${i}`, bytes(100 + i, 8 + i), i % 3 === 0 ? 3_600_000 : 0);
  store.put("cm", bytes(7), { ttlMs: 0, onlyIfAbsent: false, metadata: bytes(9, 3) });
  for (let i = 0; i < 4; i++) store.set(`k${i}`, bytes(i, 16), i === 1 ? 60_000 : 0);
  store.set("n", msgpackInt(5), 0);
  // Expired by NOW + 1: the store was built at NOW - 1000 with TTLs of 500.
  return ["cm", "n", ...Array.from({ length: 12 }, (_, i) => `c${i}`), ...Array.from({ length: 4 }, (_, i) => `k${i}`)];
}

function withExpired(store) {
  for (let i = 0; i < 6; i++) store.set(`x${i}`, bytes(50 + i), 1);
}

/** Each mutating operation: its store config, the keys it writes (all or none), and the call. */
export const OPS = {
  "set new": { targets: ["new"], run: (s) => s.set("new", bytes(1, 40), 5000) },
  "set existing": { targets: ["k0"], run: (s) => s.set("k0", bytes(2, 200), 5000) },
  "set drops a TTL": { targets: ["k1"], run: (s) => s.set("k1", bytes(3, 16), 0) },
  add: { targets: ["new"], run: (s) => s.add("new", bytes(4), 0) },
  "add over an expired key": { expired: true, targets: ["x0"], run: (s) => s.add("x0", bytes(4), 0) },
  replace: { targets: ["k2"], run: (s) => s.replace("k2", bytes(5, 64), 1000) },
  "incr existing": { targets: ["n"], run: (s) => s.incr("n", int(3), int(0), 0) },
  "incr new": { targets: ["m"], run: (s) => s.incr("m", int(3), int(1), 1000) },
  "put if version": {
    targets: ["k3"],
    run: (s) => s.put("k3", bytes(6), { ttlMs: 0, onlyIfAbsent: false, ifVersion: s.entry("k3").version, metadata: bytes(1, 5) }),
  },
  delete: { targets: ["k0"], run: (s) => s.delete("k0") },
  deleteMany: { expired: true, targets: ["k0", "k2"], run: (s) => s.deleteMany(["k0", "nope", "x1", "k2"]) },
  expire: { targets: ["k2"], run: (s) => s.expire("k2", 90_000) },
  "setMany new and existing": {
    targets: ["k0", "k1", "k2", "new1", "new2", "new3"],
    run: (s) => s.setMany([["k0", bytes(8)], ["new1", bytes(8, 30)], ["k1", bytes(8, 300)], ["new2", bytes(8)], ["k2", bytes(8)], ["new3", bytes(8)]], 7000),
  },
  atomic: {
    targets: ["k0", "k2", "n", "m", "new"],
    run: (s) =>
      s.atomic({
        checks: [["k3", s.entry("k3").version], ["new", null]],
        set: [["k0", bytes(2, 100)], ["new", bytes(1, 24)]],
        delete: ["k2", "nope"],
        incr: [["n", int(2)], ["m", int(1)]],
        ttlMs: 5000,
      }),
  },
  "atomic evicting for its new keys": {
    config: { eviction: "lru", maxSize: 18 },
    targets: ["new", "m"],
    run: (s) => s.atomic({ checks: [], set: [["new", bytes(3, 40)]], delete: [], incr: [["m", int(1)]], ttlMs: 0 }),
  },
  "lpush a new list": { targets: ["L"], run: (s) => s.listPush("L", "left", [bytes(1, 30), bytes(2, 600), bytes(3, 5)]) },
  "rpush into a new chunk": {
    prepare: (s) => s.listPush("L", "right", Array.from({ length: 30 }, (_, i) => bytes(i, 12))),
    targets: ["L"],
    run: (s) => s.listPush("L", "right", [bytes(7, 100), bytes(8, 700), bytes(9, 3)]),
  },
  "lpop across chunks": {
    prepare: (s) => s.listPush("L", "left", Array.from({ length: 60 }, (_, i) => bytes(i, 20))),
    targets: ["L"],
    run: (s) => s.listPop("L", "left", 25),
  },
  "rpop the last item deletes the list": {
    prepare: (s) => s.listPush("L", "right", [bytes(4, 9)]),
    targets: ["L"],
    run: (s) => s.listPop("L", "right", 3),
  },
  ltrim: {
    prepare: (s) => s.listPush("L", "right", Array.from({ length: 80 }, (_, i) => bytes(i, 16))),
    targets: ["L"],
    run: (s) => s.listTrim("L", 21, -30),
  },
  "zadd new and rescored members (the hash table grows)": {
    prepare: (s) => s.zsetAdd("Z", [{ member: "a", score: 1 }, { member: "b", score: 2 }, { member: "c", score: 3 }]),
    targets: ["Z"],
    run: (s) => s.zsetAdd("Z", [{ member: "d", score: 0 }, { member: "a", score: 9 }, { member: "e", score: 2 }, { member: "f", score: 2 }]),
  },
  "zadd a new sorted set": { targets: ["Z"], run: (s) => s.zsetAdd("Z", [{ member: "x", score: 1 }, { member: "y", score: -1 }]) },
  zincr: {
    prepare: (s) => s.zsetAdd("Z", Array.from({ length: 20 }, (_, i) => ({ member: `m${i}`, score: i }))),
    targets: ["Z"],
    run: (s) => s.zsetIncr("Z", "m3", 10.5),
  },
  "zrem members and the set": {
    prepare: (s) => s.zsetAdd("Z", Array.from({ length: 6 }, (_, i) => ({ member: `m${i}`, score: i % 2 }))),
    targets: ["Z"],
    run: (s) => s.zsetRemove("Z", ["m0", "m1", "m2", "m3", "m4", "m5", "nobody"]),
  },
  "set over a list and delete a sorted set (their blocks reclaimed)": {
    prepare: (s) => {
      s.listPush("L", "right", Array.from({ length: 200 }, (_, i) => bytes(i, 40)));
      s.zsetAdd("Z", Array.from({ length: 200 }, (_, i) => ({ member: `m${i}`, score: i })));
    },
    targets: ["L", "Z"],
    run: (s) => s.atomic({ checks: [], set: [["L", bytes(5, 10)]], delete: ["Z"], incr: [], ttlMs: 0 }),
  },
  "eviction of a list for a new key": {
    config: { eviction: "lru", maxSize: 19 },
    prepare: (s) => {
      s.listPush("L", "right", Array.from({ length: 100 }, (_, i) => bytes(i, 30)));
      for (let i = 0; i < 12; i++) s.get(`c${i}`); // the list is the least recently used key now
      for (const key of ["cm", "k0", "k1", "k2", "k3", "n"]) s.get(key);
    },
    targets: ["new"],
    run: (s) => s.set("new", bytes(9), 0),
  },
  clear: { targets: [], whole: true, run: (s) => s.clear() },
  flush: { targets: [], whole: true, run: (s) => s.flush() },
  sweep: { expired: true, targets: [], run: (s) => s.sweep() },
  "get under lru": { config: { eviction: "lru" }, targets: [], run: (s) => s.get("c0") },
  "list over expired keys": { expired: true, targets: [], run: (s) => s.list({ prefix: "", after: "n", limit: 5 }) },
  "eviction for a new key": { config: { eviction: "lru", maxSize: 18 }, targets: ["new"], run: (s) => s.set("new", bytes(9), 0) },
  "eviction for memory": {
    config: { eviction: "lru", maxMemory: MiB, maxSize: 100_000 },
    prepare: (s) => {
      // Fill the block space with 2 KiB values, every other one deleted: free space in pieces
      // too small for the big value, so the write must merge free space and evict.
      let i = 0;
      for (; s.zone.freeBytes() > 2100; i++) s.set(`f${String(i).padStart(4, "0")}`, bytes(i & 0xff, 2048), 0);
      for (let j = 0; j < i; j += 2) s.delete(`f${String(j).padStart(4, "0")}`);
    },
    targets: ["big"],
    run: (s) => s.set("big", bytes(3, 8 * 1024), 0),
  },
};

/** Each op's fixture, built once; every attempt runs on a fresh copy of it. */
const templates = new Map();
const TEMPLATE_TOKEN = 0x7fff0000;

/** A fresh copy of the op's fixture zone, attached as `token`. */
function build(name, token) {
  const op = OPS[name];
  let template = templates.get(name);
  if (template === undefined) {
    seedRandom(42);
    const early = { now: () => NOW - 1000, sleep: () => Promise.resolve() };
    const store = createZone(config(op.config ?? {}), { clock: early, token: TEMPLATE_TOKEN });
    fixture(store);
    if (op.expired) withExpired(store);
    op.prepare?.(store);
    template = new Uint8Array(store.buffer).slice();
    templates.set(name, template);
  }
  const buffer = new SharedArrayBuffer(template.length);
  new Uint8Array(buffer).set(template);
  return attachZone(buffer, config(op.config ?? {}), { clock: fixedClock, token });
}

function sweepStep(msg) {
  const token = nextToken++;
  const store = build(msg.op, token);
  seedRandom(7);
  let hit = false;
  setZoneFault((step) => {
    if (step !== msg.step) return;
    hit = true;
    if (msg.mode === "throw") throw FAULT;
    if (msg.mode === "exit") process.exit(7);
    if (msg.mode === "hang") {
      parentPort.postMessage({ type: "hung", buffer: store.buffer, token });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until the host terminates us
    }
    if (msg.mode === "terminate") for (;;); // until the vm timeout terminates the script here
  });
  let completed = false;
  let outcome = "none";
  // The zone outlives a worker that exits: hand it over first.
  if (msg.mode === "exit") parentPort.postMessage({ type: "built", buffer: store.buffer, token });
  if (msg.mode !== "before") {
    context.run = () => OPS[msg.op].run(store);
    try {
      vm.runInContext("run()", context, msg.mode === "terminate" ? { timeout: 10 } : undefined);
      completed = true;
    } catch (e) {
      outcome = e === FAULT ? "thrown" : e?.code === "ERR_SCRIPT_EXECUTION_TIMEOUT" ? "terminated" : `error: ${e?.stack ?? e}`;
    }
  }
  setZoneFault(undefined);
  parentPort.postMessage({ type: "swept", buffer: store.buffer, token, hit, completed, outcome });
}

// ---------------------------------------------------------------------------------------------
// Mixed writes, stopped at random instructions
// ---------------------------------------------------------------------------------------------

/** Per lane, per key j < KEYS: the state a write is about to make (pending) and the last acknowledged one. */
export const KEYS = 8;

/** The state of a key: > 0 its value is that number (4 bytes, little endian), <= 0 absent. */
function encodeState(state) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, state, true);
  return out;
}

function mixed(msg) {
  const { buffer, lane, states } = msg;
  const pending = new Int32Array(states, 0, states.byteLength / 8);
  const acked = new Int32Array(states, states.byteLength / 2, states.byteLength / 8);
  const base = lane * (KEYS + 2);
  const counterSlot = base + KEYS; // the incr counter's value
  const genSlot = base + KEYS + 1; // the lane's next state number
  const token = nextToken++;
  const store = attachZone(buffer, config({ maxSize: 100_000, maxMemory: 8 * MiB }), { clock: systemClock, token });
  let random = (msg.seed * 2654435761) >>> 0;
  const next = (n) => {
    random = (Math.imul(random, 1664525) + 1013904223) >>> 0;
    return random % n;
  };
  const key = (j) => `L${lane}:${j}`;
  const write = (j, state, call) => {
    Atomics.store(pending, base + j, state);
    call();
    Atomics.store(acked, base + j, state);
  };
  context.run = () => {
    for (;;) {
      const state = Atomics.add(acked, genSlot, 1);
      const j = next(KEYS);
      switch (next(10)) {
        case 0:
        case 1:
          write(j, state, () => store.set(key(j), encodeState(state), 0));
          break;
        case 2:
          write(j, -state, () => store.delete(key(j)));
          break;
        case 3: {
          const j2 = (j + 1 + next(KEYS - 1)) % KEYS;
          Atomics.store(pending, base + j, state);
          Atomics.store(pending, base + j2, state);
          store.setMany([[key(j), encodeState(state)], [key(j2), encodeState(state)]], 0);
          Atomics.store(acked, base + j, state);
          Atomics.store(acked, base + j2, state);
          break;
        }
        case 4: {
          const record = store.entry(key(j));
          if (record !== undefined) write(j, state, () => store.put(key(j), encodeState(state), { ttlMs: 0, onlyIfAbsent: false, ifVersion: record.version }));
          break;
        }
        case 5:
          Atomics.store(pending, counterSlot, Atomics.load(acked, counterSlot) + 1);
          store.incr(`L${lane}:n`, int(1), int(0), 0);
          Atomics.add(acked, counterSlot, 1);
          break;
        case 6:
          store.expire(key(j), 3_600_000); // a version change only
          break;
        case 8: {
          // The lane's list and sorted set churn (their contents are not modelled: verify() walks
          // their chunks, links and spans after the terminations, and the host checks their items).
          const list = `L${lane}:list`;
          if (store.listPush(list, next(2) === 0 ? "left" : "right", [encodeState(state), encodeState(state)]) > 24) store.listTrim(list, next(4), -1 - next(4));
          if (next(3) === 0) store.listPop(list, next(2) === 0 ? "left" : "right", 1 + next(5));
          break;
        }
        case 9: {
          const zset = `L${lane}:z`;
          store.zsetAdd(zset, [{ member: `m${j}`, score: state }, { member: `m${(j + 1) % KEYS}`, score: -state }]);
          if (next(2) === 0) store.zsetIncr(zset, `m${next(KEYS)}`, 0.5);
          if (next(3) === 0) store.zsetRemove(zset, [`m${next(KEYS)}`, `m${next(KEYS)}`]);
          break;
        }
        default:
          if (store.get(key(j)) === undefined && Atomics.load(acked, base + j) > 0) throw new Error(`lane ${lane}: acknowledged ${key(j)} missing`);
      }
    }
  };
  let outcome = "none";
  parentPort.postMessage({ type: "running", token });
  if (msg.real === "exit") {
    let steps = 0;
    setZoneFault(() => {
      if (++steps === msg.exitAtStep) process.exit(9);
    });
  }
  try {
    vm.runInContext("run()", context, msg.real === undefined ? { timeout: msg.timeoutMs } : undefined);
  } catch (e) {
    outcome = e?.code === "ERR_SCRIPT_EXECUTION_TIMEOUT" ? "terminated" : `error: ${e?.stack ?? e}`;
  }
  parentPort.postMessage({ type: "died", token, outcome });
}

// ---------------------------------------------------------------------------------------------
// Lock-free reads racing a writer
// ---------------------------------------------------------------------------------------------

/**
 * The writer sets keys r0..r31 to values of random lengths whose every byte is the length's low
 * byte, and deletes some, `msg.writes` times; a reader gets them until the host says stop and
 * counts any value that is not such a value (bytes a lock-free read should have thrown away).
 */
function race(msg) {
  const store = attachZone(msg.buffer, config({ maxSize: 100_000, maxMemory: 8 * MiB }), { clock: systemClock, token: nextToken++ });
  const flags = new Int32Array(msg.control);
  let seed = msg.seed;
  const next = (n) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  let ops = 0;
  let bad = 0;
  let found = 0;
  if (msg.role === "writer") {
    for (; ops < msg.writes; ops++) {
      const key = `r${next(32)}`;
      if (next(5) === 0) store.delete(key);
      else {
        const length = 1 + next(300);
        store.set(key, new Uint8Array(length).fill(length & 0xff), 0);
      }
    }
  } else {
    while (Atomics.load(flags, 0) === 0) {
      const value = store.get(`r${next(32)}`);
      ops++;
      if (value === undefined) continue;
      found++;
      const b = value.length & 0xff;
      for (let i = 0; i < value.length; i++) {
        if (value[i] !== b) {
          bad++;
          break;
        }
      }
    }
  }
  parentPort.postMessage({ type: "raced", ops, bad, found });
}

// ---------------------------------------------------------------------------------------------
// Lists, sorted sets and atomic from several threads at once
// ---------------------------------------------------------------------------------------------

/** `msg.rounds` times: a push onto both ends of one list, a zincr of one member, an atomic transfer. */
function collections(msg) {
  const store = attachZone(msg.buffer, config({ maxSize: 100_000, maxMemory: 8 * MiB }), { clock: systemClock, token: nextToken++ });
  for (let i = 0; i < msg.rounds; i++) {
    store.listPush("shared:list", i % 2 === 0 ? "left" : "right", [bytes(msg.lane, 1 + (i % 40))]);
    store.zsetIncr("shared:board", `lane${msg.lane}`, 1);
    store.zsetIncr("shared:board", "total", 0.5);
    if (i % 3 === 0 && store.listLength("shared:list") > 10) store.listPop("shared:list", i % 2 === 0 ? "right" : "left", 1);
    for (;;) {
      const a = store.entry("shared:a");
      const b = store.entry("shared:b");
      const outcome = store.atomic({ checks: [["shared:a", a.version], ["shared:b", b.version]], set: [], delete: [], incr: [["shared:a", int(-1)], ["shared:b", int(1)]], ttlMs: 0 });
      if (outcome.ok) break;
    }
  }
  parentPort.postMessage({ type: "collected", token: 0 });
}

parentPort?.on("message", (msg) => {
  if (msg.type === "sweep") sweepStep(msg);
  else if (msg.type === "mixed") mixed(msg);
  else if (msg.type === "race") race(msg);
  else if (msg.type === "collections") collections(msg);
});

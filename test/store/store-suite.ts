/**
 * The conformance suite every store backend runs: `storeSuite(name, factory, options)` registers
 * the same vitest cases against stores made by `factory` (the shape of unstorage's `testDriver`
 * and hono's `runTest`). A backend that cannot honour a case skips it by title, with a reason
 * that shows in the report:
 *
 * ```ts
 * storeSuite("store.redis", ({ config }) => makeRedisStore(config), {
 *   realTime: true,
 *   skip: [{ reason: "Redis LRU is approximate", tests: ["with lru, a get makes a key recently used"] }],
 * });
 * ```
 *
 * Time: by default every case gets a fresh ManualClock and TTL cases move it. A backend that
 * keeps its own time (Redis) passes `realTime: true`: TTL cases then use short real TTLs and
 * wait for real, and cases that need exact time are skipped with a reason.
 */
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { ManualClock, systemClock, type Clock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind, StoreError } from "../../src/errors.js";
import type { CommonStoreConfig } from "../../src/registry/types.js";
import { atomicOf, collectionsOf, isStaleValue, type AtomicWrite, type LuaNumber, type MaybePromise, type Store, type ZsetEntry, type ZsetRange } from "../../src/store/store.js";

/** Per-case overrides of the store config; the factory fills in the rest. */
export interface SuiteStoreConfig {
  maxSize?: number;
  eviction?: "none" | "lru";
  maxKeyLength?: number;
  maxValueSize?: number;
  cleanupIntervalMs?: number;
  /** Per-share quotas (`by` is only reported: the suite passes shares to the writes itself). */
  quota?: { maxKeys: number; maxBytes?: number };
  /** stale_for in ms: how long getStale still answers an expired key. */
  staleForMs?: number;
}

export interface StoreFactoryContext {
  /** The clock the store must read time from (a ManualClock unless the suite runs in real time). */
  clock: Clock;
  config: SuiteStoreConfig;
}

/** Makes a fresh, empty store with its counters at zero; the suite closes it after the case. */
export type StoreFactory = (context: StoreFactoryContext) => MaybePromise<Store>;

export interface StoreSuiteOptions {
  /** Cases (by title) this backend skips, each group with the reason shown in the report. */
  skip?: { reason: string; tests: string[] }[];
  /** The backend keeps its own time: TTL cases use short real TTLs and real waiting. @default false */
  realTime?: boolean;
}

/** The common store config with `overrides` applied, for factories to build their own config on. */
export function commonStoreConfig(overrides: SuiteStoreConfig = {}): CommonStoreConfig {
  return {
    id: "suite:store",
    namespace: "suite",
    name: "store",
    maxSize: overrides.maxSize ?? 10_000,
    cleanupIntervalMs: overrides.cleanupIntervalMs ?? 300_000,
    maxKeyLength: overrides.maxKeyLength ?? 1024,
    maxValueSize: overrides.maxValueSize ?? 2 * 1024 * 1024,
    pool: { max: 64 },
    ...(overrides.staleForMs !== undefined ? { staleForMs: overrides.staleForMs } : {}),
    ...(overrides.quota
      ? { quota: { by: "actor.meta.tenant", maxKeys: overrides.quota.maxKeys, maxBytes: overrides.quota.maxBytes } }
      : {}),
    source: { file: "<store-suite>", line: 0, column: 0 },
  };
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/** How a case moves time: a manual clock jumps, real time sleeps. */
export interface TimeControl {
  readonly clock: Clock;
  /** A TTL that outlives a handful of store calls: 1000 ms on a manual clock, 300 ms in real time. */
  readonly unit: number;
  /** True when time moves only through `advance` (so TTL arithmetic is exact). */
  readonly exact: boolean;
  /** Lets `ms` of store time pass. */
  advance(ms: number): Promise<void>;
}

/** A fixed, realistic start time (2023-11-14), so expiry times are not small integers. */
const START_MS = 1_700_000_000_000;
/** Real-time waits sleep this much longer, so a TTL of `ms` has surely passed. */
const REAL_SLACK_MS = 25;

export function manualTime(): TimeControl {
  const clock = new ManualClock(START_MS);
  return {
    clock,
    unit: 1000,
    exact: true,
    advance: async (ms) => clock.advance(ms),
  };
}

export function realTime(): TimeControl {
  return {
    clock: systemClock,
    unit: 300,
    exact: false,
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms + REAL_SLACK_MS)),
  };
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

interface CaseContext {
  time: TimeControl;
  /** A fresh store from the factory, closed after the case. */
  open(config?: SuiteStoreConfig): Promise<Store>;
  /** Milliseconds: exact on a manual clock, within half a time unit below `expected` in real time. */
  expectMs(actual: number | undefined, expected: number): void;
}

interface SuiteCase {
  group: string;
  title: string;
  needsManualClock: boolean;
  run(t: CaseContext): Promise<void>;
}

const cases: SuiteCase[] = [];
let currentGroup = "";

function group(name: string, define: () => void): void {
  currentGroup = name;
  define();
}

function test(title: string, run: (t: CaseContext) => Promise<void>, needs?: { manualClock: true }): void {
  if (cases.some((c) => c.title === title)) throw new Error(`store suite: duplicate case title ${JSON.stringify(title)}`);
  cases.push({ group: currentGroup, title, needsManualClock: needs?.manualClock ?? false, run });
}

/** The titles of every case in these groups (for a backend that skips whole groups). */
export function casesOf(...groups: string[]): string[] {
  return cases.filter((c) => groups.includes(c.group)).map((c) => c.title);
}

/**
 * Registers the conformance cases for one backend under `describe(name)`. Fails at collection
 * when a skip names a case the suite does not have (a renamed case must not silently run).
 */
export function storeSuite(name: string, factory: StoreFactory, options: StoreSuiteOptions = {}): void {
  const skipReasons = new Map<string, string>();
  for (const { reason, tests } of options.skip ?? []) {
    for (const title of tests) skipReasons.set(title, reason);
  }
  const unknown = [...skipReasons.keys()].filter((title) => !cases.some((c) => c.title === title));
  if (unknown.length > 0) throw new Error(`storeSuite(${name}): skip names unknown cases: ${unknown.join(", ")}`);
  const useRealTime = options.realTime ?? false;

  describe(name, () => {
    const groups = [...new Set(cases.map((c) => c.group))];
    for (const groupName of groups) {
      describe(groupName, () => {
        for (const c of cases.filter((x) => x.group === groupName)) {
          const reason =
            skipReasons.get(c.title) ??
            (c.needsManualClock && useRealTime ? "needs a manual clock; this backend runs in real time" : undefined);
          if (reason !== undefined) {
            it.skip(`${c.title} (skipped: ${reason})`, () => {});
            continue;
          }
          it(c.title, async () => {
            const time = useRealTime ? realTime() : manualTime();
            const opened: Store[] = [];
            const context: CaseContext = {
              time,
              async open(config = {}) {
                const store = await factory({ clock: time.clock, config });
                opened.push(store);
                return store;
              },
              expectMs(actual, expected) {
                if (time.exact) {
                  expect(actual).toBe(expected);
                } else {
                  expect(actual).toBeDefined();
                  expect(actual!).toBeLessThanOrEqual(expected);
                  expect(actual!).toBeGreaterThan(expected - time.unit / 2);
                }
              },
            };
            try {
              await c.run(context);
            } finally {
              for (const store of opened) await store.close();
            }
          });
        }
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** MessagePack bytes of a JS value (what the codec would store). */
function v(value: unknown): Uint8Array {
  return encodeValue(value);
}

/** MessagePack float64 bytes of `x` (JS cannot make an integral float through encodeValue). */
function f64(x: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = 0xcb;
  new DataView(out.buffer).setFloat64(1, x);
  return out;
}

function int(value: number): LuaNumber {
  return { value, float: false };
}

function float(value: number): LuaNumber {
  return { value, float: true };
}

function hex(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  if (expected.length > 4096) {
    expect(actual!.length).toBe(expected.length);
    expect(Buffer.compare(actual!, expected)).toBe(0);
  } else {
    expect(hex(actual)).toBe(hex(expected));
  }
}

async function expectStoreError(call: () => unknown, kind: ErrorKind, retryable?: boolean): Promise<StoreError> {
  let caught: unknown;
  try {
    await call();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect(caught).toMatchObject({ code: "STORE_ERROR", kind, ...(retryable === undefined ? {} : { retryable }) });
  return caught as StoreError;
}

/** Every key a full walk over `prefix` returns, page by page with `limit`. */
async function walk(store: Store, prefix: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 100_000; pages++) {
    const page = await store.list(after === undefined ? { prefix, limit } : { prefix, after, limit });
    keys.push(...page.keys.map((k) => k.key));
    if (!page.hasMore) return keys;
    expect(page.cursor).toBeDefined();
    after = page.cursor;
  }
  throw new Error("walk did not end");
}

/** A small deterministic PRNG (mulberry32), so randomized cases replay. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function versionOf(store: Store, key: string): Promise<string> {
  const record = await store.entry(key);
  expect(record).toBeDefined();
  return record!.version;
}

// ---------------------------------------------------------------------------------------------
// get / set / has / delete
// ---------------------------------------------------------------------------------------------

group("get, set, has, delete", () => {
  test("get of a missing key is undefined", async ({ open }) => {
    const store = await open();
    expect(await store.get("nope")).toBeUndefined();
  });

  test("a value set is read back", async ({ open }) => {
    const store = await open();
    await store.set("a", v("hello"), 0);
    expectBytes(await store.get("a"), v("hello"));
  });

  test("set overwrites the previous value", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    await store.set("a", v({ x: 2 }), 0);
    expectBytes(await store.get("a"), v({ x: 2 }));
  });

  test("has tells whether a key is present", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    expect(await store.has("a")).toBe(true);
    expect(await store.has("b")).toBe(false);
  });

  test("delete removes a key and tells whether it was there", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    expect(await store.delete("a")).toBe(true);
    expect(await store.get("a")).toBeUndefined();
    expect(await store.delete("a")).toBe(false);
  });

  test("keys are compared as bytes", async ({ open }) => {
    const store = await open();
    const keys = ["\xff", "\xfe", "\x00", "a", "a\x00", "A", "\xc3\xa9", "\xe9"];
    for (const [i, key] of keys.entries()) await store.set(key, v(i), 0);
    for (const [i, key] of keys.entries()) expectBytes(await store.get(key), v(i));
    expect(await store.size()).toBe(keys.length);
  });
});

// ---------------------------------------------------------------------------------------------
// add / replace
// ---------------------------------------------------------------------------------------------

group("add, replace", () => {
  test("add writes a missing key and refuses an existing one", async ({ open }) => {
    const store = await open();
    expect(await store.add("a", v(1), 0)).toBe(true);
    expect(await store.add("a", v(2), 0)).toBe(false);
    expectBytes(await store.get("a"), v(1));
  });

  test("add writes over an expired key", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await time.advance(time.unit);
    expect(await store.add("a", v(2), 0)).toBe(true);
    expectBytes(await store.get("a"), v(2));
  });

  test("replace writes an existing key and refuses a missing one", async ({ open }) => {
    const store = await open();
    expect(await store.replace("a", v(1), 0)).toBe(false);
    expect(await store.has("a")).toBe(false);
    await store.set("a", v(1), 0);
    expect(await store.replace("a", v(2), 0)).toBe(true);
    expectBytes(await store.get("a"), v(2));
  });

  test("replace refuses an expired key", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await time.advance(time.unit);
    expect(await store.replace("a", v(2), 0)).toBe(false);
    expect(await store.has("a")).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// incr
// ---------------------------------------------------------------------------------------------

group("incr", () => {
  test("incr of a missing key starts from init", async ({ open }) => {
    const store = await open();
    expectBytes(await store.incr("n", int(5), int(10), 0), v(15));
    expectBytes(await store.get("n"), v(15));
  });

  test("incr of integers gives an integer", async ({ open }) => {
    const store = await open();
    await store.set("n", v(41), 0);
    const result = await store.incr("n", int(1), int(0), 0);
    expect(hex(result)).toBe("2a");
    expectBytes(await store.get("n"), result);
  });

  test("incr by a float gives a float", async ({ open }) => {
    const store = await open();
    await store.set("n", v(1), 0);
    expectBytes(await store.incr("n", float(0.5), int(0), 0), f64(1.5));
    expectBytes(await store.incr("n", float(0.5), int(0), 0), f64(2));
  });

  test("incr of a stored float gives a float even when the sum is integral", async ({ open }) => {
    const store = await open();
    await store.set("n", f64(1), 0);
    expectBytes(await store.incr("n", int(1), int(0), 0), f64(2));
  });

  test("incr from a float init gives a float", async ({ open }) => {
    const store = await open();
    expectBytes(await store.incr("n", int(1), float(0), 0), f64(1));
  });

  test("an integer sum past 2^31-1 becomes a float instead of wrapping", async ({ open }) => {
    const store = await open();
    await store.set("n", v(2147483647), 0);
    expectBytes(await store.incr("n", int(1), int(0), 0), f64(2147483648));
    await store.set("m", v(-2147483648), 0);
    expectBytes(await store.incr("m", int(-1), int(0), 0), f64(-2147483649));
  });

  test("sums at the 32-bit bounds stay integers", async ({ open }) => {
    const store = await open();
    await store.set("n", v(2147483646), 0);
    expect(hex(await store.incr("n", int(1), int(0), 0))).toBe("ce7fffffff");
    await store.set("m", v(-2147483647), 0);
    expect(hex(await store.incr("m", int(-1), int(0), 0))).toBe("d280000000");
  });

  test("incr reads every MessagePack number encoding", async ({ open }) => {
    const store = await open();
    const float32 = Uint8Array.of(0xca, 0x3f, 0xc0, 0x00, 0x00); // 1.5
    const stored: [Uint8Array, Uint8Array][] = [
      [Uint8Array.of(0x05), v(6)],
      [Uint8Array.of(0xff), v(0)], // negative fixint -1
      [Uint8Array.of(0xcc, 0xc8), v(201)],
      [Uint8Array.of(0xcd, 0x01, 0x00), v(257)],
      [Uint8Array.of(0xce, 0x00, 0x01, 0x00, 0x00), v(65537)],
      [Uint8Array.of(0xce, 0x80, 0x00, 0x00, 0x00), f64(2147483649)], // uint32 beyond int32: a float
      [Uint8Array.of(0xd0, 0x80), v(-127)],
      [Uint8Array.of(0xd1, 0x80, 0x00), v(-32767)],
      [Uint8Array.of(0xd2, 0xff, 0xff, 0xff, 0xfe), v(-1)],
      [Uint8Array.of(0xd3, 0, 0, 0, 0, 0, 0, 0, 5), v(6)], // int64 within int32: an integer
      [Uint8Array.of(0xcf, 0, 0, 0, 1, 0, 0, 0, 0), f64(4294967297)],
      [float32, f64(2.5)],
      [f64(-0.5), f64(0.5)],
    ];
    for (const [i, [bytes, expected]] of stored.entries()) {
      await store.set(`n${i}`, bytes, 0);
      expectBytes(await store.incr(`n${i}`, int(1), int(0), 0), expected);
    }
  });

  test("incr by zero returns the current number", async ({ open }) => {
    const store = await open();
    await store.set("n", v(7), 0);
    expectBytes(await store.incr("n", int(0), int(0), 0), v(7));
  });

  test("incr of a value that is not a number fails as Invalid and leaves it unchanged", async ({ open }) => {
    const store = await open();
    const values = [v("12"), v({ a: 1 }), v([1]), v({}), v(true), Uint8Array.of(0xc0), Uint8Array.of(0x01, 0x02)];
    for (const [i, bytes] of values.entries()) {
      await store.set(`k${i}`, bytes, 0);
      await expectStoreError(() => store.incr(`k${i}`, int(1), int(0), 0), ErrorKind.INVALID, false);
      expectBytes(await store.get(`k${i}`), bytes);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// TTL
// ---------------------------------------------------------------------------------------------

group("TTL", () => {
  test("an expired key is invisible at once to every read", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("b", v(2), 0);
    await time.advance(time.unit);
    expect(await store.get("a")).toBeUndefined();
    expect(await store.has("a")).toBe(false);
    expect(await store.ttl("a")).toBeUndefined();
    expect(await store.entry("a")).toBeUndefined();
    expect(await store.getMany(["a", "b"])).toEqual([undefined, expect.any(Uint8Array)]);
    expect((await store.list({ prefix: "", limit: 10 })).keys.map((k) => k.key)).toEqual(["b"]);
    expect(await store.size()).toBe(1);
    expect(await store.delete("a")).toBe(false);
  });

  test("a key lives until the clock reaches its expiry time", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), 1000);
    await time.advance(999);
    expect(await store.has("a")).toBe(true);
    await time.advance(1);
    expect(await store.has("a")).toBe(false);
  }, { manualClock: true });

  test("set without a TTL removes an earlier TTL", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("a", v(2), 0);
    expect(await store.ttl("a")).toBe(0);
    await time.advance(time.unit);
    expectBytes(await store.get("a"), v(2));
  });

  test("set with a TTL replaces an earlier TTL", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("a", v(2), 3 * time.unit);
    expectMs(await store.ttl("a"), 3 * time.unit);
    await time.advance(time.unit);
    expectBytes(await store.get("a"), v(2));
  });

  test("replace sets the TTL like set", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    expect(await store.replace("a", v(2), 0)).toBe(true);
    expect(await store.ttl("a")).toBe(0);
    expect(await store.replace("a", v(3), 2 * time.unit)).toBe(true);
    expectMs(await store.ttl("a"), 2 * time.unit);
    await time.advance(2 * time.unit);
    expect(await store.has("a")).toBe(false);
  });

  test("add, put and setMany give their keys the TTL", async ({ open, time }) => {
    const store = await open();
    await store.add("a", v(1), time.unit);
    await store.put("b", v(2), { ttlMs: time.unit, onlyIfAbsent: false });
    await store.setMany([["c", v(3)], ["d", v(4)]], time.unit);
    await store.set("keep", v(0), 0);
    for (const key of ["a", "b", "c", "d"]) expect(await store.ttl(key)).toBeGreaterThan(0);
    await time.advance(time.unit);
    for (const key of ["a", "b", "c", "d"]) expect(await store.has(key)).toBe(false);
    expect(await store.has("keep")).toBe(true);
  });

  test("ttl tells the milliseconds left, 0 without expiry, undefined when missing", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.set("a", v(1), 2 * time.unit);
    await store.set("b", v(1), 0);
    expectMs(await store.ttl("a"), 2 * time.unit);
    await time.advance(time.unit / 2);
    expectMs(await store.ttl("a"), 1.5 * time.unit);
    expect(await store.ttl("b")).toBe(0);
    expect(await store.ttl("c")).toBeUndefined();
  });

  test("expire sets a TTL on a key without one", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    expect(await store.expire("a", time.unit)).toBe(true);
    expectMs(await store.ttl("a"), time.unit);
    await time.advance(time.unit);
    expect(await store.has("a")).toBe(false);
  });

  test("expire with 0 removes the TTL", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    expect(await store.expire("a", 0)).toBe(true);
    expect(await store.ttl("a")).toBe(0);
    await time.advance(time.unit);
    expectBytes(await store.get("a"), v(1));
  });

  test("expire of a missing or expired key returns false", async ({ open, time }) => {
    const store = await open();
    expect(await store.expire("nope", time.unit)).toBe(false);
    expect(await store.has("nope")).toBe(false);
    await store.set("a", v(1), time.unit);
    await time.advance(time.unit);
    expect(await store.expire("a", 0)).toBe(false);
    expect(await store.has("a")).toBe(false);
  });

  test("expire keeps the value and the metadata", async ({ open, time }) => {
    const store = await open();
    await store.put("a", v(1), { ttlMs: 0, onlyIfAbsent: false, metadata: v({ m: 1 }) });
    await store.expire("a", 2 * time.unit);
    const record = await store.entry("a");
    expectBytes(record?.value, v(1));
    expectBytes(record?.metadata, v({ m: 1 }));
  });

  test("incr keeps the TTL of an existing key", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.set("n", v(1), 2 * time.unit);
    await store.incr("n", int(1), int(0), 10 * time.unit);
    expectMs(await store.ttl("n"), 2 * time.unit);
    await time.advance(2 * time.unit);
    expect(await store.has("n")).toBe(false);
  });

  test("incr gives initTtlMs only to the key it creates", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.incr("n", int(1), int(0), 2 * time.unit);
    expectMs(await store.ttl("n"), 2 * time.unit);
    await time.advance(time.unit);
    await store.incr("n", int(1), int(0), 10 * time.unit);
    expectMs(await store.ttl("n"), time.unit);
    await store.incr("plain", int(1), int(0), 0);
    expect(await store.ttl("plain")).toBe(0);
  });

  test("incr of an expired key starts over from init with initTtlMs", async ({ open, time, expectMs }) => {
    const store = await open();
    await store.set("n", v(100), time.unit);
    await time.advance(time.unit);
    expectBytes(await store.incr("n", int(1), int(0), 2 * time.unit), v(1));
    expectMs(await store.ttl("n"), 2 * time.unit);
  });

  test("entry tells expiresAt in clock time, 0 without expiry", async ({ open, time }) => {
    const store = await open();
    const before = time.clock.now();
    await store.set("a", v(1), time.unit);
    await store.set("b", v(1), 0);
    const expiresAt = (await store.entry("a"))!.expiresAt;
    if (time.exact) expect(expiresAt).toBe(before + time.unit);
    else {
      expect(expiresAt).toBeGreaterThanOrEqual(before + time.unit - 5);
      expect(expiresAt).toBeLessThanOrEqual(time.clock.now() + time.unit + 5);
    }
    expect((await store.entry("b"))!.expiresAt).toBe(0);
  });

  test("sweep removes expired keys and returns how many", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("b", v(1), time.unit);
    await store.set("c", v(1), 10 * time.unit);
    await store.set("d", v(1), 0);
    await time.advance(time.unit);
    expect(await store.sweep()).toBe(2);
    expect(await store.sweep()).toBe(0);
    expect((await store.stats()).size).toBe(2);
    expect(await store.has("c")).toBe(true);
    expect(await store.has("d")).toBe(true);
  });

  test("size excludes expired keys", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("b", v(1), 0);
    expect(await store.size()).toBe(2);
    await time.advance(time.unit);
    expect(await store.size()).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// getMany / setMany
// ---------------------------------------------------------------------------------------------

group("getMany, setMany", () => {
  test("getMany returns values in the order of the keys, undefined for missing ones", async ({ open }) => {
    const store = await open();
    await store.set("a", v("A"), 0);
    await store.set("c", v("C"), 0);
    const values = await store.getMany(["c", "b", "a", "c"]);
    expect(values.length).toBe(4);
    expectBytes(values[0], v("C"));
    expect(values[1]).toBeUndefined();
    expectBytes(values[2], v("A"));
    expectBytes(values[3], v("C"));
    expect(await store.getMany([])).toEqual([]);
  });

  test("setMany writes every entry", async ({ open }) => {
    const store = await open();
    await store.set("a", v("old"), 0);
    await store.setMany([["a", v(1)], ["b", v(2)], ["\xff", v(3)]], 0);
    expectBytes(await store.get("a"), v(1));
    expectBytes(await store.get("b"), v(2));
    expectBytes(await store.get("\xff"), v(3));
    expect(await store.size()).toBe(3);
  });

  test("setMany with a repeated key keeps the last value", async ({ open }) => {
    const store = await open();
    await store.setMany([["a", v(1)], ["a", v(2)]], 0);
    expectBytes(await store.get("a"), v(2));
    expect(await store.size()).toBe(1);
  });

  test("setMany without entries writes nothing", async ({ open }) => {
    const store = await open();
    await store.setMany([], 0);
    expect(await store.size()).toBe(0);
  });

  test("deleteMany deletes the live keys given and returns how many", async ({ open, time }) => {
    const store = await open();
    await store.setMany([["a", v(1)], ["b", v(2)], ["c", v(3)]], 0);
    await store.set("soon", v(1), time.unit);
    await time.advance(time.unit);
    expect(await store.deleteMany(["a", "c", "missing", "soon", "a"])).toBe(2);
    expect(await store.get("a")).toBeUndefined();
    expect(await store.get("c")).toBeUndefined();
    expectBytes(await store.get("b"), v(2));
    expect(await store.size()).toBe(1);
    expect(await store.deleteMany([])).toBe(0);
    expect((await store.stats()).deletes).toBe(2);
  });

  test("setMany and deleteMany take 10 000 keys in one call", async ({ open }) => {
    const store = await open({ maxSize: 10_000 });
    const entries: [string, Uint8Array][] = [];
    for (let i = 0; i < 10_000; i++) entries.push([`bulk:${i}`, v(i)]);
    await store.setMany(entries, 0);
    expect(await store.size()).toBe(10_000);
    expectBytes(await store.get("bulk:9999"), v(9999));
    expect(await store.deleteMany(entries.map(([k]) => k))).toBe(10_000);
    expect(await store.size()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// entry, versions
// ---------------------------------------------------------------------------------------------

group("entry, versions", () => {
  test("entry returns the value, version, expiry and metadata", async ({ open }) => {
    const store = await open();
    await store.put("a", v({ x: 1 }), { ttlMs: 0, onlyIfAbsent: false, metadata: v("meta") });
    const record = await store.entry("a");
    expectBytes(record?.value, v({ x: 1 }));
    expect(typeof record?.version).toBe("string");
    expect(record?.version.length).toBeGreaterThan(0);
    expect(record?.expiresAt).toBe(0);
    expectBytes(record?.metadata, v("meta"));
    await store.set("b", v(1), 0);
    expect((await store.entry("b"))?.metadata).toBeUndefined();
  });

  test("entry of a missing key is undefined", async ({ open }) => {
    const store = await open();
    expect(await store.entry("nope")).toBeUndefined();
  });

  test("the version changes on every mutation of the key", async ({ open, time }) => {
    const store = await open();
    const seen = new Set<string>();
    const mutations: (() => unknown)[] = [
      () => store.set("a", v(1), 0),
      () => store.set("a", v(1), 0), // the same bytes again is still a write
      () => store.replace("a", v(2), 0),
      () => store.incr("a", int(1), int(0), 0),
      () => store.put("a", v(3), { ttlMs: 0, onlyIfAbsent: false }),
      () => store.setMany([["a", v(4)]], 0),
      () => store.expire("a", 10 * time.unit),
      () => store.expire("a", 0),
    ];
    for (const mutate of mutations) {
      await mutate();
      seen.add(await versionOf(store, "a"));
    }
    expect(seen.size).toBe(mutations.length);
  });

  test("reads do not change the version", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const version = await versionOf(store, "a");
    await store.get("a");
    await store.has("a");
    await store.ttl("a");
    await store.getMany(["a"]);
    await store.list({ prefix: "", limit: 10 });
    await store.add("a", v(2), 0); // refused: no write
    expect(await versionOf(store, "a")).toBe(version);
  });

  test("a key deleted and created again gets a new version", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const first = await versionOf(store, "a");
    await store.delete("a");
    await store.set("a", v(1), 0);
    expect(await versionOf(store, "a")).not.toBe(first);
  });

  test("clear does not make versions repeat", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const first = await versionOf(store, "a");
    await store.clear();
    await store.set("a", v(1), 0);
    expect(await versionOf(store, "a")).not.toBe(first);
  });
});

// ---------------------------------------------------------------------------------------------
// put (compare-and-set)
// ---------------------------------------------------------------------------------------------

group("put", () => {
  test("put writes and returns ok", async ({ open }) => {
    const store = await open();
    expect(await store.put("a", v(1), { ttlMs: 0, onlyIfAbsent: false })).toBe("ok");
    expect(await store.put("a", v(2), { ttlMs: 0, onlyIfAbsent: false })).toBe("ok");
    expectBytes(await store.get("a"), v(2));
  });

  test("put onlyIfAbsent of an existing key returns exists and writes nothing", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const version = await versionOf(store, "a");
    expect(await store.put("a", v(2), { ttlMs: 0, onlyIfAbsent: true })).toBe("exists");
    expectBytes(await store.get("a"), v(1));
    expect(await versionOf(store, "a")).toBe(version);
  });

  test("put onlyIfAbsent writes a missing or expired key", async ({ open, time }) => {
    const store = await open();
    expect(await store.put("a", v(1), { ttlMs: 0, onlyIfAbsent: true })).toBe("ok");
    await store.set("b", v(1), time.unit);
    await time.advance(time.unit);
    expect(await store.put("b", v(2), { ttlMs: 0, onlyIfAbsent: true })).toBe("ok");
    expectBytes(await store.get("b"), v(2));
  });

  test("put ifVersion with the current version writes", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const version = await versionOf(store, "a");
    expect(await store.put("a", v(2), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("ok");
    expectBytes(await store.get("a"), v(2));
    expect(await versionOf(store, "a")).not.toBe(version);
  });

  test("put ifVersion with a stale version returns conflict and writes nothing", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const stale = await versionOf(store, "a");
    await store.set("a", v(2), 0);
    expect(await store.put("a", v(3), { ttlMs: 0, onlyIfAbsent: false, ifVersion: stale })).toBe("conflict");
    expectBytes(await store.get("a"), v(2));
    expect(await store.put("a", v(3), { ttlMs: 0, onlyIfAbsent: false, ifVersion: "not a version" })).toBe("conflict");
  });

  test("put ifVersion of a missing or expired key returns missing", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    const version = await versionOf(store, "a");
    expect(await store.put("b", v(1), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("missing");
    await time.advance(time.unit);
    expect(await store.put("a", v(2), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("missing");
    expect(await store.has("a")).toBe(false);
    expect(await store.has("b")).toBe(false);
  });

  test("put with both onlyIfAbsent and ifVersion is refused as Invalid", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const version = await versionOf(store, "a");
    await expectStoreError(
      () => store.put("a", v(2), { ttlMs: 0, onlyIfAbsent: true, ifVersion: version }),
      ErrorKind.INVALID,
    );
    expectBytes(await store.get("a"), v(1));
  });

  test("a write without metadata removes the metadata", async ({ open }) => {
    const store = await open();
    const meta = { ttlMs: 0, onlyIfAbsent: false, metadata: v({ tag: "x" }) };
    const writes: [string, () => unknown][] = [
      ["set", () => store.set("a", v(1), 0)],
      ["replace", () => store.replace("a", v(1), 0)],
      ["incr", () => store.incr("a", int(1), int(0), 0)],
      ["setMany", () => store.setMany([["a", v(1)]], 0)],
      ["put", () => store.put("a", v(1), { ttlMs: 0, onlyIfAbsent: false })],
    ];
    for (const [name, write] of writes) {
      await store.put("a", v(1), meta);
      expectBytes((await store.entry("a"))?.metadata, v({ tag: "x" }));
      await write();
      expect((await store.entry("a"))?.metadata, name).toBeUndefined();
    }
    await store.delete("a");
    await store.put("a", v(1), meta);
    await store.delete("a");
    await store.add("a", v(1), 0);
    expect((await store.entry("a"))?.metadata).toBeUndefined();
  });

  test("put with a TTL expires like set", async ({ open, time }) => {
    const store = await open();
    await store.put("a", v(1), { ttlMs: time.unit, onlyIfAbsent: false });
    expect(await store.ttl("a")).toBeGreaterThan(0);
    await store.set("b", v(1), time.unit);
    expect(await store.put("b", v(2), { ttlMs: 0, onlyIfAbsent: false })).toBe("ok");
    await time.advance(time.unit);
    expect(await store.has("a")).toBe(false);
    expect(await store.has("b")).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

group("list", () => {
  const mixedKeys = ["b", "a", "a\x00", "ab", "\x00", "\xff", "\xff\xff", "\x7f", "\x80", "B", "a\xff", "\x00\x00"];

  test("list of an empty store is an empty last page", async ({ open }) => {
    const store = await open();
    expect(await store.list({ prefix: "", limit: 10 })).toEqual({ keys: [], hasMore: false });
  });

  test("list returns keys in byte order", async ({ open }) => {
    const store = await open();
    for (const key of mixedKeys) await store.set(key, v(1), 0);
    const page = await store.list({ prefix: "", limit: 100 });
    expect(page.keys.map((k) => k.key)).toEqual([...mixedKeys].sort(byteOrder));
    expect(page.hasMore).toBe(false);
    expect(page.cursor).toBeUndefined();
  });

  test("list with a prefix returns only keys starting with those bytes", async ({ open }) => {
    const store = await open();
    for (const key of [...mixedKeys, "user:1", "user:2", "user;", "use"]) await store.set(key, v(1), 0);
    const keysOf = async (prefix: string) => (await store.list({ prefix, limit: 100 })).keys.map((k) => k.key);
    expect(await keysOf("user:")).toEqual(["user:1", "user:2"]);
    expect(await keysOf("a")).toEqual(["a", "a\x00", "ab", "a\xff"]);
    expect(await keysOf("\xff")).toEqual(["\xff", "\xff\xff"]);
    expect(await keysOf("\x00")).toEqual(["\x00", "\x00\x00"]);
    expect(await keysOf("zzz")).toEqual([]);
  });

  test("list after a key starts strictly after it", async ({ open }) => {
    const store = await open();
    for (const key of ["a", "b", "c", "d"]) await store.set(key, v(1), 0);
    const keysAfter = async (after: string) => (await store.list({ prefix: "", after, limit: 100 })).keys.map((k) => k.key);
    expect(await keysAfter("b")).toEqual(["c", "d"]);
    expect(await keysAfter("bb")).toEqual(["c", "d"]); // need not be a key
    expect(await keysAfter("d")).toEqual([]);
    expect(await keysAfter("")).toEqual(["a", "b", "c", "d"]);
  });

  test("list after a key before the prefix starts at the prefix", async ({ open }) => {
    const store = await open();
    for (const key of ["a", "p1", "p2", "q"]) await store.set(key, v(1), 0);
    const page = await store.list({ prefix: "p", after: "a", limit: 100 });
    expect(page.keys.map((k) => k.key)).toEqual(["p1", "p2"]);
    const beyond = await store.list({ prefix: "p", after: "pz", limit: 100 });
    expect(beyond).toEqual({ keys: [], hasMore: false });
  });

  test("list pages by limit with a cursor at the last key returned", async ({ open }) => {
    const store = await open();
    for (const key of ["a", "b", "c", "d", "e"]) await store.set(key, v(1), 0);
    const first = await store.list({ prefix: "", limit: 2 });
    expect(first).toEqual({ keys: [{ key: "a" }, { key: "b" }], cursor: "b", hasMore: true });
    const second = await store.list({ prefix: "", after: "b", limit: 2 });
    expect(second).toEqual({ keys: [{ key: "c" }, { key: "d" }], cursor: "d", hasMore: true });
    const last = await store.list({ prefix: "", after: "d", limit: 2 });
    expect(last).toEqual({ keys: [{ key: "e" }], hasMore: false });
  });

  test("a page that takes the last keys says there is no more", async ({ open }) => {
    const store = await open();
    for (const key of ["a", "b", "x"]) await store.set(key, v(1), 0);
    expect(await store.list({ prefix: "", limit: 3 })).toEqual({ keys: [{ key: "a" }, { key: "b" }, { key: "x" }], hasMore: false });
    expect(await store.list({ prefix: "", limit: 2, after: "a" })).toEqual({ keys: [{ key: "b" }, { key: "x" }], hasMore: false });
  });

  test("a walk with writes between pages returns every key present throughout exactly once", async ({ open }) => {
    const store = await open();
    const random = prng(7);
    const initial = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, "0")}`);
    for (const key of initial) await store.set(key, v(1), 0);
    const stable = new Set(initial.filter((_, i) => i % 2 === 0));
    const doomed = initial.filter((_, i) => i % 2 === 1);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.list(after === undefined ? { prefix: "k", limit: 7 } : { prefix: "k", after, limit: 7 });
      seen.push(...page.keys.map((k) => k.key));
      // Between pages: delete some keys, add new ones before and after the cursor, rewrite others.
      for (let i = 0; i < 3 && doomed.length > 0; i++) {
        await store.delete(doomed.splice(Math.floor(random() * doomed.length), 1)[0]!);
      }
      await store.set(`k${String(Math.floor(random() * 200)).padStart(3, "0")}x`, v(2), 0);
      await store.set(`k${String(Math.floor(random() * 200)).padStart(3, "0")}`, v(3), 0);
      if (!page.hasMore) break;
      after = page.cursor;
    }
    expect([...seen].sort(byteOrder)).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
    for (const key of stable) expect(seen).toContain(key);
  });

  test("list skips expired keys", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    await store.set("b", v(1), time.unit);
    await store.set("c", v(1), time.unit);
    await store.set("d", v(1), 0);
    await time.advance(time.unit);
    expect(await walk(store, "", 1)).toEqual(["a", "d"]);
    expect(await walk(store, "", 10)).toEqual(["a", "d"]);
  });

  test("list returns the metadata of the keys that have it", async ({ open }) => {
    const store = await open();
    await store.put("a", v(1), { ttlMs: 0, onlyIfAbsent: false, metadata: v({ n: 1 }) });
    await store.set("b", v(2), 0);
    const page = await store.list({ prefix: "", limit: 10 });
    expect(page.keys.length).toBe(2);
    expect(page.keys[0]?.key).toBe("a");
    expectBytes(page.keys[0]?.metadata, v({ n: 1 }));
    expect(page.keys[1]).toEqual({ key: "b" });
  });

  test("list refuses a limit outside 1..1000 as Invalid", async ({ open }) => {
    const store = await open();
    for (const limit of [0, -1, 1001, 1.5]) {
      await expectStoreError(() => store.list({ prefix: "", limit }), ErrorKind.INVALID);
    }
    expect((await store.list({ prefix: "", limit: 1000 })).hasMore).toBe(false);
  });

  test("list agrees with a sorted model after random writes and deletes", async ({ open }) => {
    const store = await open();
    const random = prng(42);
    const alphabet = ["\x00", "a", "b", "\x7f", "\x80", "\xff"];
    const randomKey = () => {
      let key = "";
      const n = 1 + Math.floor(random() * 3);
      for (let i = 0; i < n; i++) key += alphabet[Math.floor(random() * alphabet.length)]!;
      return key;
    };
    const model = new Set<string>();
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 60; i++) {
        const key = randomKey();
        if (random() < 0.3) {
          expect(await store.delete(key)).toBe(model.delete(key));
        } else {
          await store.set(key, v(i), 0);
          model.add(key);
        }
      }
      const prefix = round % 2 === 0 ? "" : alphabet[round % alphabet.length]!;
      const expected = [...model].filter((k) => k.startsWith(prefix)).sort(byteOrder);
      expect(await walk(store, prefix, 1 + Math.floor(random() * 9))).toEqual(expected);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Capacity and eviction
// ---------------------------------------------------------------------------------------------

group("capacity", () => {
  test("a new key into a full store is refused as Unavailable", async ({ open }) => {
    const store = await open({ maxSize: 3, eviction: "none" });
    for (const key of ["a", "b", "c"]) await store.set(key, v(1), 0);
    const error = await expectStoreError(() => store.set("d", v(1), 0), ErrorKind.UNAVAILABLE, true);
    expect(error.message).toMatch(/full/);
    expect(await store.has("d")).toBe(false);
    expect(await store.size()).toBe(3);
  });

  test("a full store still takes writes to existing keys", async ({ open }) => {
    const store = await open({ maxSize: 2, eviction: "none" });
    await store.set("a", v(1), 0);
    await store.set("b", v(1), 0);
    await store.set("a", v(2), 0);
    expect(await store.replace("b", v(3), 0)).toBe(true);
    expectBytes(await store.incr("b", int(1), int(0), 0), v(4));
    expect(await store.put("a", v(4), { ttlMs: 0, onlyIfAbsent: false })).toBe("ok");
    expectBytes(await store.get("a"), v(4));
    expectBytes(await store.get("b"), v(4));
  });

  test("add, put and incr of a new key into a full store are refused as Unavailable", async ({ open }) => {
    const store = await open({ maxSize: 1, eviction: "none" });
    await store.set("a", v(1), 0);
    await expectStoreError(() => store.add("b", v(1), 0), ErrorKind.UNAVAILABLE, true);
    await expectStoreError(() => store.put("b", v(1), { ttlMs: 0, onlyIfAbsent: true }), ErrorKind.UNAVAILABLE, true);
    await expectStoreError(() => store.incr("b", int(1), int(0), 0), ErrorKind.UNAVAILABLE, true);
    expect(await store.has("b")).toBe(false);
  });

  test("a deleted or expired key frees its slot", async ({ open, time }) => {
    const store = await open({ maxSize: 2, eviction: "none" });
    await store.set("a", v(1), 0);
    await store.set("b", v(1), time.unit);
    await store.delete("a");
    await store.set("c", v(1), 0);
    await time.advance(time.unit);
    await store.set("d", v(1), 0);
    expect((await walk(store, "", 10)).sort(byteOrder)).toEqual(["c", "d"]);
  });

  test("setMany refuses the whole batch when its new keys do not fit", async ({ open }) => {
    const store = await open({ maxSize: 3, eviction: "none" });
    await store.set("a", v(1), 0);
    await store.set("b", v(1), 0);
    await expectStoreError(() => store.setMany([["a", v(2)], ["c", v(2)], ["d", v(2)]], 0), ErrorKind.UNAVAILABLE, true);
    expectBytes(await store.get("a"), v(1));
    expect(await store.has("c")).toBe(false);
    expect(await store.has("d")).toBe(false);
    await store.setMany([["a", v(3)], ["c", v(3)]], 0);
    expectBytes(await store.get("c"), v(3));
  });

  test("setMany of existing keys fits in a full store", async ({ open }) => {
    const store = await open({ maxSize: 2, eviction: "none" });
    await store.set("a", v(1), 0);
    await store.set("b", v(1), 0);
    await store.setMany([["a", v(2)], ["b", v(2)], ["a", v(3)]], 0);
    expectBytes(await store.get("a"), v(3));
    expectBytes(await store.get("b"), v(2));
  });

  test("a setMany batch with more keys than max_size is refused as Invalid", async ({ open }) => {
    for (const eviction of ["none", "lru"] as const) {
      const store = await open({ maxSize: 2, eviction });
      await expectStoreError(() => store.setMany([["a", v(1)], ["b", v(1)], ["c", v(1)]], 0), ErrorKind.INVALID, false);
      expect(await store.size()).toBe(0);
    }
  });

  test("with lru, a new key into a full store evicts the least recently used key", async ({ open }) => {
    const store = await open({ maxSize: 3, eviction: "lru" });
    for (const key of ["a", "b", "c", "d", "e"]) await store.set(key, v(1), 0);
    expect((await walk(store, "", 10))).toEqual(["c", "d", "e"]);
    expect((await store.stats()).evicted).toBe(2);
  });

  test("with lru, a get makes a key recently used", async ({ open }) => {
    const store = await open({ maxSize: 3, eviction: "lru" });
    for (const key of ["a", "b", "c"]) await store.set(key, v(1), 0);
    await store.get("a");
    await store.set("d", v(1), 0);
    expect(await walk(store, "", 10)).toEqual(["a", "c", "d"]);
  });

  test("with lru, a write makes a key recently used", async ({ open }) => {
    const store = await open({ maxSize: 3, eviction: "lru" });
    for (const key of ["a", "b", "c"]) await store.set(key, v(1), 0);
    await store.set("a", v(2), 0);
    await store.incr("n", int(1), int(0), 0); // evicts b
    expect(await walk(store, "", 10)).toEqual(["a", "c", "n"]);
  });

  test("with lru, setMany evicts other keys and never its own", async ({ open }) => {
    const store = await open({ maxSize: 4, eviction: "lru" });
    for (const key of ["a", "b", "c", "d"]) await store.set(key, v(1), 0);
    await store.setMany([["a", v(2)], ["e", v(2)], ["f", v(2)]], 0);
    expect(await walk(store, "", 10)).toEqual(["a", "d", "e", "f"]);
    expect((await store.stats()).evicted).toBe(2);
  });

  test("info tells size, max_size and eviction", async ({ open, time }) => {
    const store = await open({ maxSize: 5, eviction: "lru" });
    await store.set("a", v(1), 0);
    await store.set("b", v(1), time.unit);
    expect(await store.info()).toMatchObject({ size: 2, bytes: 4, maxSize: 5, eviction: "lru" });
    await time.advance(time.unit);
    expect(await store.info()).toMatchObject({ size: 1, bytes: 2, maxSize: 5, eviction: "lru" });
    const other = await open({ maxSize: 7 });
    expect(await other.info()).toMatchObject({ size: 0, bytes: 0, maxSize: 7, eviction: "none" });
  });

  test("info bytes follow writes, overwrites, metadata and deletes, as stats bytes do", async ({ open }) => {
    const store = await open();
    await store.set("key", v("x".repeat(100)), 0);
    const one = (await store.info()).bytes;
    expect(one).toBe(3 + v("x".repeat(100)).length);
    await store.put("key", v("y"), { ttlMs: 0, onlyIfAbsent: false, metadata: v({ m: 1 }) });
    expect((await store.info()).bytes).toBe(3 + v("y").length + v({ m: 1 }).length);
    expect((await store.info()).bytes).toBe((await store.stats()).bytes);
    await store.delete("key");
    expect((await store.info()).bytes).toBe(0);
  });

  test("free_bytes is a non-negative number where the backend reports one", async ({ open }) => {
    const info = await (await open()).info();
    if (info.freeBytes !== undefined) expect(info.freeBytes).toBeGreaterThanOrEqual(0);
  });

  test("clear removes every key", async ({ open }) => {
    const store = await open();
    for (const key of ["a", "b", "c"]) await store.set(key, v(1), 0);
    await store.list({ prefix: "", limit: 1 });
    await store.clear();
    expect(await store.size()).toBe(0);
    expect(await store.get("a")).toBeUndefined();
    expect(await store.list({ prefix: "", limit: 10 })).toEqual({ keys: [], hasMore: false });
    await store.set("b", v(2), 0);
    expect(await walk(store, "", 10)).toEqual(["b"]);
  });

  test("flush removes every key and returns how many live keys it removed", async ({ open, time }) => {
    const store = await open();
    for (const key of ["a", "b", "c"]) await store.set(key, v(1), 0);
    await store.set("soon", v(1), time.unit);
    await store.list({ prefix: "", limit: 1 });
    await time.advance(time.unit);
    expect(await store.flush()).toBe(3);
    expect(await store.size()).toBe(0);
    expect(await store.get("a")).toBeUndefined();
    expect(await store.list({ prefix: "", limit: 10 })).toEqual({ keys: [], hasMore: false });
    expect((await store.stats()).bytes).toBe(0);
    expect(await store.flush()).toBe(0);
    await store.set("b", v(2), 0);
    expect(await walk(store, "", 10)).toEqual(["b"]);
  });

  test("flush of more keys than one batch removes them all", async ({ open }) => {
    const store = await open({ maxSize: 3000 });
    const entries: [string, Uint8Array][] = [];
    for (let i = 0; i < 2500; i++) entries.push([`k${i}`, v(i)]);
    for (let i = 0; i < entries.length; i += 1000) await store.setMany(entries.slice(i, i + 1000), 0);
    expect(await store.flush()).toBe(2500);
    expect(await store.size()).toBe(0);
  });

  test("versions go on after a flush", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    const before = (await store.entry("a"))!.version;
    await store.flush();
    await store.set("a", v(1), 0);
    expect((await store.entry("a"))!.version).not.toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------
// Value fidelity
// ---------------------------------------------------------------------------------------------

group("value fidelity", () => {
  test("values round-trip byte for byte: empty, every byte value, 1 MiB", async ({ open }) => {
    const store = await open();
    const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;
    await store.set("empty", new Uint8Array(0), 0);
    await store.set("bytes", everyByte, 0);
    await store.set("big", big, 0);
    expectBytes(await store.get("empty"), new Uint8Array(0));
    expectBytes(await store.get("bytes"), everyByte);
    expectBytes(await store.get("big"), big);
  });

  test("a value that is a view into a larger buffer is stored as its own bytes", async ({ open }) => {
    const store = await open();
    const backing = Uint8Array.from({ length: 64 }, (_, i) => i);
    const view = backing.subarray(10, 20);
    await store.set("a", view, 0);
    expectBytes(await store.get("a"), Uint8Array.from({ length: 10 }, (_, i) => i + 10));
  });

  test("encoded values decode to what was stored", async ({ open }) => {
    const store = await open();
    const values: unknown[] = [
      "héllo ✓",
      "",
      0,
      -1,
      2147483647,
      1.5,
      -0,
      1e300,
      true,
      false,
      new Uint8Array([0, 255, 128]),
      [],
      {},
      [1, [2, [3, []]]],
      { name: "alice", tags: ["a", "b"], nested: { deep: { deeper: {} } } },
    ];
    for (const [i, value] of values.entries()) await store.set(`k${i}`, v(value), 0);
    for (const [i, value] of values.entries()) {
      const bytes = await store.get(`k${i}`);
      expectBytes(bytes, v(value));
      expect(decodeValue(bytes!)).toEqual(value);
    }
  });

  test("integers and floats keep their MessagePack form", async ({ open }) => {
    const store = await open();
    await store.set("int", v(1), 0);
    await store.set("float", f64(1), 0);
    await store.setMany([["manyFloat", f64(-0)]], 0);
    expect(hex(await store.get("int"))).toBe("01");
    expect(hex(await store.get("float"))).toBe("cb3ff0000000000000");
    expect(hex(await store.get("manyFloat"))).toBe("cb8000000000000000");
  });
});

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

group("stats", () => {
  test("a new store has zero counters", async ({ open }) => {
    const store = await open();
    expect(await store.stats()).toEqual({ hits: 0, misses: 0, sets: 0, deletes: 0, expired: 0, evicted: 0, size: 0, bytes: 0 });
  });

  test("value reads count hits and misses", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    await store.get("a");
    await store.get("b");
    await store.getMany(["a", "a", "c"]);
    await store.entry("a");
    await store.entry("d");
    expect(await store.stats()).toMatchObject({ hits: 4, misses: 3 });
  });

  test("every stored value counts as a set", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    await store.add("b", v(1), 0);
    await store.add("b", v(1), 0); // refused
    await store.replace("a", v(2), 0);
    await store.replace("zz", v(2), 0); // refused
    await store.incr("n", int(1), int(0), 0);
    await store.put("p", v(1), { ttlMs: 0, onlyIfAbsent: false });
    await store.put("p", v(1), { ttlMs: 0, onlyIfAbsent: true }); // exists
    await store.setMany([["x", v(1)], ["y", v(1)]], 0);
    expect((await store.stats()).sets).toBe(7);
  });

  test("deletes of present keys count as deletes", async ({ open }) => {
    const store = await open();
    await store.set("a", v(1), 0);
    await store.delete("a");
    await store.delete("a");
    expect((await store.stats()).deletes).toBe(1);
  });

  test("expired keys count as expired, on access and by sweep", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("b", v(1), time.unit);
    await time.advance(time.unit);
    await store.get("a");
    await store.sweep();
    expect(await store.stats()).toMatchObject({ expired: 2, size: 0, bytes: 0 });
  });

  test("stats tell the entries and the key, value and metadata bytes held", async ({ open }) => {
    const store = await open();
    await store.set("ab", Uint8Array.of(1, 2, 3), 0);
    expect(await store.stats()).toMatchObject({ size: 1, bytes: 5 });
    await store.set("ab", Uint8Array.of(1), 0);
    expect(await store.stats()).toMatchObject({ size: 1, bytes: 3 });
    await store.put("c", Uint8Array.of(1, 2), { ttlMs: 0, onlyIfAbsent: false, metadata: Uint8Array.of(9, 9, 9) });
    expect(await store.stats()).toMatchObject({ size: 2, bytes: 9 });
    await store.delete("ab");
    expect(await store.stats()).toMatchObject({ size: 1, bytes: 6 });
    await store.put("c", Uint8Array.of(1, 2), { ttlMs: 0, onlyIfAbsent: false });
    expect(await store.stats()).toMatchObject({ size: 1, bytes: 3 });
  });
});

// ---------------------------------------------------------------------------------------------
// Fair shares (quota)
// ---------------------------------------------------------------------------------------------

/** Writes `prefix0..prefix{n-1}` as `share`; returns how many were written before the first refusal, and that error. */
async function fill(store: Store, share: string, prefix: string, n: number, value = v(1)): Promise<{ written: number; error?: StoreError }> {
  for (let i = 0; i < n; i++) {
    try {
      await store.set(`${prefix}${i}`, value, 0, share);
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      return { written: i, error: e };
    }
  }
  return { written: n };
}

group("fair shares", () => {
  test("a share past max_keys is refused as RateLimited, not retryable; another share still writes", async ({ open }) => {
    const store = await open({ maxSize: 30, quota: { maxKeys: 10 } });
    const acme = await fill(store, "acme", "acme:", 50);
    expect(acme.written).toBe(10);
    expect(acme.error).toMatchObject({ kind: ErrorKind.RATE_LIMITED, retryable: false });
    expect((await fill(store, "globex", "globex:", 10)).written).toBe(10);
    // Rewriting a key the share holds needs no new room.
    await store.set("acme:0", v(2), 0, "acme");
    expect(await store.size()).toBe(20);
  });

  test("a share past max_bytes is refused as RateLimited", async ({ open }) => {
    const store = await open({ quota: { maxKeys: 100, maxBytes: 100 } });
    await store.set("a:1", new Uint8Array(40), 0, "a");
    await expectStoreError(() => store.set("a:2", new Uint8Array(80), 0, "a"), ErrorKind.RATE_LIMITED);
    await expectStoreError(() => store.set("a:1", new Uint8Array(200), 0, "a"), ErrorKind.RATE_LIMITED);
    await store.set("a:1", new Uint8Array(90), 0, "a");
    expect(await store.info("a")).toMatchObject({ quota: { share: "a", keys: 1, bytes: 93, maxBytes: 100 } });
  });

  test("each share holding keys reserves max_keys: a new share past max_size / max_keys is Unavailable, retryable", async ({ open }) => {
    const store = await open({ maxSize: 20, quota: { maxKeys: 10 } });
    await store.set("a:1", v(1), 0, "a");
    await store.set("b:1", v(1), 0, "b");
    await expectStoreError(() => store.set("c:1", v(1), 0, "c"), ErrorKind.UNAVAILABLE, true);
    // Shares below their quota are never blocked by the reservation.
    expect((await fill(store, "a", "a:x", 9)).written).toBe(9);
    await store.delete("b:1");
    await store.set("c:1", v(1), 0, "c");
  });

  test("a tenant filling an eviction-none store neither blocks nor evicts another within its quota", async ({ open }) => {
    const store = await open({ maxSize: 20, eviction: "none", quota: { maxKeys: 10 } });
    await store.set("globex:secret", v("keep"), 0, "globex");
    const attacker = await fill(store, "acme", "acme:", 1000);
    expect(attacker.written).toBe(10);
    expectBytes(await store.get("globex:secret"), v("keep"));
    expect((await fill(store, "globex", "globex:k", 9)).written).toBe(9);
  });

  test("with lru, a share past its quota evicts its own oldest keys, never another share's", async ({ open }) => {
    const store = await open({ maxSize: 20, eviction: "lru", quota: { maxKeys: 10 } });
    await store.set("globex:secret", v("keep"), 0, "globex");
    const attacker = await fill(store, "acme", "acme:", 100);
    expect(attacker).toEqual({ written: 100 });
    expectBytes(await store.get("globex:secret"), v("keep"));
    expect(await store.has("acme:89")).toBe(false);
    expect(await store.has("acme:90")).toBe(true);
    expect(await store.info("acme")).toMatchObject({ quota: { share: "acme", keys: 10 } });
    expect((await store.stats()).evicted).toBe(90);
  });

  test("setMany under a quota is whole or nothing", async ({ open }) => {
    const none = await open({ maxSize: 50, quota: { maxKeys: 5 } });
    await none.set("a:0", v(0), 0, "a");
    const batch = (n: number, from = 1): [string, Uint8Array][] => Array.from({ length: n }, (_, i) => [`a:${i + from}`, v(i)]);
    await expectStoreError(() => none.setMany(batch(5), 0, "a"), ErrorKind.RATE_LIMITED);
    expect(await none.size()).toBe(1);
    await none.setMany(batch(4), 0, "a");
    expect(await none.size()).toBe(5);
  });

  test("with lru, setMany under a quota evicts the share's own oldest keys, and a batch past max_keys writes nothing", async ({ open }) => {
    const batch = (n: number, from = 1): [string, Uint8Array][] => Array.from({ length: n }, (_, i) => [`a:${i + from}`, v(i)]);
    const lru = await open({ maxSize: 50, eviction: "lru", quota: { maxKeys: 5 } });
    await lru.setMany(batch(5, 0), 0, "a");
    await lru.setMany(batch(3, 10), 0, "a");
    expect(await lru.info("a")).toMatchObject({ quota: { keys: 5 } });
    expect(await lru.has("a:4")).toBe(true);
    expect(await lru.has("a:1")).toBe(false);
    await expectStoreError(() => lru.setMany(batch(6, 20), 0, "a"), ErrorKind.RATE_LIMITED);
    expect(await lru.has("a:4")).toBe(true);
  });

  test("a key belongs to its last writer; deletes and expiry give its room back", async ({ open, time }) => {
    const store = await open({ quota: { maxKeys: 2 } });
    await store.set("k", v(1), 0, "a");
    await store.set("k", v(1), 0, "b");
    expect((await store.info("a")).quota).toMatchObject({ keys: 0, bytes: 0 });
    expect((await store.info("b")).quota).toMatchObject({ keys: 1, bytes: 2 });
    await store.set("t", v(1), time.unit, "b");
    await expectStoreError(() => store.set("u", v(1), 0, "b"), ErrorKind.RATE_LIMITED);
    await time.advance(time.unit);
    await store.set("u", v(1), 0, "b");
    await store.delete("k");
    await store.set("w", v(1), 0, "b");
    expect((await store.stats()).shares).toEqual({ b: { keys: 2, bytes: 4 } });
  });

  test("host-side writes (no share) count in no share and keep a key's owner", async ({ open }) => {
    const store = await open({ maxSize: 4, quota: { maxKeys: 2 } });
    await store.set("a:1", v(1), 0, "a");
    await store.set("a:1", v(1234567), 0);
    await store.set("host:1", v(1), 0);
    expect((await store.info("a")).quota).toMatchObject({ keys: 1, bytes: 8 });
    // 4 - one share's reservation of 2 leaves the host room for 2 keys.
    await store.set("host:2", v(1), 0);
    await expectStoreError(() => store.set("host:3", v(1), 0), ErrorKind.UNAVAILABLE, true);
    expect((await fill(store, "a", "a:x", 1)).written).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

group("concurrency", () => {
  test("1000 concurrent incr calls add up exactly", async ({ open }) => {
    const store = await open();
    const results = await Promise.all(Array.from({ length: 1000 }, () => store.incr("n", int(1), int(0), 0)));
    const numbers = results.map((bytes) => decodeValue(bytes) as number).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expectBytes(await store.get("n"), v(1000));
  });

  test("concurrent compare-and-set writers lose no update", async ({ open }) => {
    const store = await open();
    await store.set("counter", v(0), 0);
    const writer = async (): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        const record = await store.entry("counter");
        const next = (decodeValue(record!.value) as number) + 1;
        const outcome = await store.put("counter", v(next), { ttlMs: 0, onlyIfAbsent: false, ifVersion: record!.version });
        if (outcome === "ok") return attempt;
        expect(outcome).toBe("conflict");
      }
    };
    const attempts = await Promise.all(Array.from({ length: 20 }, writer));
    expectBytes(await store.get("counter"), v(20));
    expect(attempts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(20);
  });

  test("concurrent add of one key lets exactly one writer in", async ({ open }) => {
    const store = await open();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.add("once", v(i), 0)));
    expect(results.filter((written) => written).length).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

/** The decoded values of a list answer. */
function decoded(values: readonly Uint8Array[]): unknown[] {
  return values.map((value) => decodeValue(value));
}

// ---------------------------------------------------------------------------------------------
// Stale reads (stale_for, getStale)
// ---------------------------------------------------------------------------------------------

/** What getStale answered, as [hex of the value, is stale], or undefined. */
async function staleRead(store: Store, key: string): Promise<[string | undefined, boolean] | undefined> {
  const answer = await store.getStale(key);
  if (answer === undefined) return undefined;
  return isStaleValue(answer) ? [hex(answer.stale), true] : [hex(answer), false];
}

group("stale reads", () => {
  test("getStale answers a live key's value as not stale, and nothing for a missing key", async ({ open, time }) => {
    const store = await open({ staleForMs: 10 * time.unit });
    await store.set("a", v(1), 0);
    await store.set("b", v(2), 5 * time.unit);
    expect(await staleRead(store, "a")).toEqual([hex(v(1)), false]);
    expect(await staleRead(store, "b")).toEqual([hex(v(2)), false]);
    expect(await store.getStale("never")).toBeUndefined();
  });

  test("a key that expired less than stale_for ago is answered stale by getStale and invisible to every other read", async ({ open, time }) => {
    const store = await open({ staleForMs: 10 * time.unit });
    await store.set("a", v("old"), time.unit);
    await store.set("b", v(2), 0);
    await time.advance(time.unit);
    expect(await staleRead(store, "a")).toEqual([hex(v("old")), true]);
    expect(await store.get("a")).toBeUndefined();
    expect(await store.has("a")).toBe(false);
    expect(await store.ttl("a")).toBeUndefined();
    expect(await store.entry("a")).toBeUndefined();
    expect(await store.getMany(["a", "b"])).toEqual([undefined, expect.any(Uint8Array)]);
    expect((await store.list({ prefix: "", limit: 10 })).keys.map((k) => k.key)).toEqual(["b"]);
    expect(await store.size()).toBe(1);
    expect((await store.info()).size).toBe(1);
    expect(await store.replace("a", v(3), 0)).toBe(false);
    expect(await store.expire("a", time.unit)).toBe(false);
    // Reads and a sweep left the stale copy in place.
    await store.sweep();
    expect(await staleRead(store, "a")).toEqual([hex(v("old")), true]);
  });

  test("a stale copy is gone once stale_for has passed since its expiry, and the sweep reclaims it", async ({ open, time }) => {
    const store = await open({ staleForMs: 2 * time.unit });
    await store.set("a", v(1), time.unit);
    await store.set("b", v(2), time.unit);
    await time.advance(time.unit);
    await store.sweep();
    expect((await store.stats()).size).toBe(2);
    await time.advance(2 * time.unit);
    expect(await store.getStale("a")).toBeUndefined();
    await store.sweep();
    expect((await store.stats()).size).toBe(0);
    expect(await store.getStale("b")).toBeUndefined();
  });

  test("a TTL keeps its exact end under stale_for: live until the expiry time, stale from it", async ({ open, time }) => {
    const store = await open({ staleForMs: 500 });
    await store.set("a", v(1), 1000);
    await time.advance(999);
    expect(await store.ttl("a")).toBe(1);
    expect(await staleRead(store, "a")).toEqual([hex(v(1)), false]);
    await time.advance(1);
    expect(await store.has("a")).toBe(false);
    expect(await staleRead(store, "a")).toEqual([hex(v(1)), true]);
    await time.advance(499);
    expect(await staleRead(store, "a")).toEqual([hex(v(1)), true]);
    await time.advance(1);
    expect(await store.getStale("a")).toBeUndefined();
  }, { manualClock: true });

  test("writing a key drops its stale copy: set, add and incr start afresh", async ({ open, time }) => {
    const store = await open({ staleForMs: 10 * time.unit });
    await store.set("s", v("old"), time.unit);
    await store.set("a", v("old"), time.unit);
    await store.set("n", v(5), time.unit);
    await time.advance(time.unit);
    await store.set("s", v("new"), 0);
    expect(await store.add("a", v("new"), 0)).toBe(true);
    expectBytes(await store.incr("n", int(1), int(0), 0), v(1));
    expect(await staleRead(store, "s")).toEqual([hex(v("new")), false]);
    expect(await staleRead(store, "a")).toEqual([hex(v("new")), false]);
    expect(await staleRead(store, "n")).toEqual([hex(v(1)), false]);
    expect(await store.size()).toBe(3);
    // A new TTL: when it passes, the stale copy is the new value.
    await store.set("s", v("newer"), time.unit);
    await time.advance(time.unit);
    expect(await staleRead(store, "s")).toEqual([hex(v("newer")), true]);
  });

  test("deleting a key drops its stale copy", async ({ open, time }) => {
    const store = await open({ staleForMs: 10 * time.unit });
    await store.set("a", v(1), time.unit);
    await store.set("b", v(2), time.unit);
    await time.advance(time.unit);
    expect(await store.delete("a")).toBe(false);
    expect(await store.deleteMany(["b"])).toBe(0);
    expect(await store.getStale("a")).toBeUndefined();
    expect(await store.getStale("b")).toBeUndefined();
    expect((await store.stats()).size).toBe(0);
  });

  test("a stale copy counts against max_size until stale_for has passed", async ({ open, time }) => {
    const store = await open({ maxSize: 1, staleForMs: 3 * time.unit });
    await store.set("a", v(1), time.unit);
    await time.advance(time.unit);
    expect(await store.size()).toBe(0);
    await expectStoreError(() => store.set("b", v(2), 0), ErrorKind.UNAVAILABLE, true);
    // Its own key takes its place.
    await store.set("a", v(3), 0);
    expect(await staleRead(store, "a")).toEqual([hex(v(3)), false]);
  });

  test("without stale_for getStale is get: an expired key answers nothing", async ({ open, time }) => {
    const store = await open();
    await store.set("a", v(1), time.unit);
    await store.set("b", v(2), 0);
    await time.advance(time.unit);
    expect(await store.getStale("a")).toBeUndefined();
    expect(await staleRead(store, "b")).toEqual([hex(v(2)), false]);
  });
});

group("lists", () => {
  test("a push over a value's stale copy makes a list of it", async ({ open, time }) => {
    const store = collectionsOf(await open({ staleForMs: 10 * time.unit }));
    await store.set("q", v("old"), time.unit);
    await time.advance(time.unit);
    expect(await store.listLength("q")).toBe(0);
    expect(await store.listPush("q", "right", [v("a")])).toBe(1);
    expect(decoded(await store.listRange("q", 0, -1))).toEqual(["a"]);
    await expectStoreError(() => store.getStale("q"), ErrorKind.INVALID);
  });

  test("a push onto a missing key creates a list and answers its length", async ({ open }) => {
    const store = collectionsOf(await open());
    expect(await store.listPush("q", "right", [v("a")])).toBe(1);
    expect(await store.listPush("q", "right", [v("b"), v("c")])).toBe(3);
    expect(decoded(await store.listRange("q", 0, -1))).toEqual(["a", "b", "c"]);
    expect(await store.has("q")).toBe(true);
    expect(await store.ttl("q")).toBe(0);
  });

  test("a left push of several values leaves the last one first, as Redis LPUSH", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "left", [v(1), v(2), v(3)]);
    expect(decoded(await store.listRange("q", 0, -1))).toEqual([3, 2, 1]);
    await store.listPush("q", "right", [v(4)]);
    expect(decoded(await store.listRange("q", 0, -1))).toEqual([3, 2, 1, 4]);
  });

  test("pops take from either end, up to count, and a missing list pops nothing", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "right", [v(1), v(2), v(3), v(4), v(5)]);
    expect(decoded(await store.listPop("q", "left", 1))).toEqual([1]);
    expect(decoded(await store.listPop("q", "right", 2))).toEqual([5, 4]);
    expect(await store.listLength("q")).toBe(2);
    expect(decoded(await store.listPop("q", "left", 10))).toEqual([2, 3]);
    expect(await store.listPop("q", "left", 1)).toEqual([]);
    expect(await store.listPop("never", "right", 3)).toEqual([]);
  });

  test("a list that loses its last element is deleted", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "right", [v(1)]);
    await store.listPop("q", "left", 1);
    expect(await store.has("q")).toBe(false);
    expect(await store.size()).toBe(0);
    expect(await store.listLength("q")).toBe(0);
    await store.listPush("t", "right", [v(1), v(2)]);
    expect(await store.listTrim("t", 5, 9)).toBe(0);
    expect(await store.has("t")).toBe(false);
  });

  test("ranges take Redis indexes: 0-based, inclusive, negative from the end, clamped", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "right", [0, 1, 2, 3, 4, 5].map((i) => v(i)));
    expect(decoded(await store.listRange("q", 1, 3))).toEqual([1, 2, 3]);
    expect(decoded(await store.listRange("q", -2, -1))).toEqual([4, 5]);
    expect(decoded(await store.listRange("q", -100, 1))).toEqual([0, 1]);
    expect(decoded(await store.listRange("q", 4, 100))).toEqual([4, 5]);
    expect(await store.listRange("q", 3, 2)).toEqual([]);
    expect(await store.listRange("q", 6, 10)).toEqual([]);
    expect(await store.listRange("missing", 0, -1)).toEqual([]);
  });

  test("trim keeps a range and answers the new length", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "right", [0, 1, 2, 3, 4, 5].map((i) => v(i)));
    expect(await store.listTrim("q", 1, -2)).toBe(4);
    expect(decoded(await store.listRange("q", 0, -1))).toEqual([1, 2, 3, 4]);
    expect(await store.listTrim("q", 0, -1)).toBe(4);
    expect(await store.listTrim("q", -2, 10)).toBe(2);
    expect(decoded(await store.listRange("q", 0, -1))).toEqual([3, 4]);
    expect(await store.listTrim("missing", 0, 1)).toBe(0);
  });

  test("a list behaves as a deque under a random mix of pushes, pops and trims", async ({ open }) => {
    const store = collectionsOf(await open());
    const random = prng(13);
    const model: number[] = [];
    let next = 0;
    for (let step = 0; step < 300; step++) {
      const r = random();
      if (r < 0.35) {
        const values = Array.from({ length: 1 + Math.floor(random() * 3) }, () => next++);
        const left = random() < 0.5;
        expect(await store.listPush("d", left ? "left" : "right", values.map((x) => v(x)))).toBe(model.length + values.length);
        if (left) model.unshift(...[...values].reverse());
        else model.push(...values);
      } else if (r < 0.7) {
        const count = 1 + Math.floor(random() * 3);
        const left = random() < 0.5;
        const expected = left ? model.splice(0, count) : model.splice(Math.max(0, model.length - count)).reverse();
        expect(decoded(await store.listPop("d", left ? "left" : "right", count))).toEqual(expected);
      } else if (r < 0.8) {
        const start = Math.floor(random() * 4) - 1;
        const stop = -1 - Math.floor(random() * 2);
        const from = Math.max(0, start < 0 ? start + model.length : start);
        const to = Math.min(model.length - 1, stop < 0 ? stop + model.length : stop);
        const kept = from > to ? [] : model.slice(from, to + 1);
        expect(await store.listTrim("d", start, stop)).toBe(kept.length);
        model.splice(0, model.length, ...kept);
      } else {
        const start = Math.floor(random() * 8) - 4;
        const stop = Math.floor(random() * 8) - 4;
        const from = Math.max(0, start < 0 ? start + model.length : start);
        const to = Math.min(model.length - 1, stop < 0 ? stop + model.length : stop);
        expect(decoded(await store.listRange("d", start, stop))).toEqual(from > to ? [] : model.slice(from, to + 1));
      }
      expect(await store.listLength("d")).toBe(model.length);
    }
  });

  test("list operations on a value, and value reads of a list, are refused as Invalid", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.set("value", v(1), 0);
    await expectStoreError(() => store.listPush("value", "right", [v(2)]), ErrorKind.INVALID);
    await expectStoreError(() => store.listPop("value", "left", 1), ErrorKind.INVALID);
    await expectStoreError(() => store.listLength("value"), ErrorKind.INVALID);
    await expectStoreError(() => store.listRange("value", 0, -1), ErrorKind.INVALID);
    await expectStoreError(() => store.listTrim("value", 0, 1), ErrorKind.INVALID);
    expectBytes(await store.get("value"), v(1));
    await store.listPush("list", "right", [v(1)]);
    await expectStoreError(() => store.get("list"), ErrorKind.INVALID);
    await expectStoreError(() => store.getMany(["value", "list"]), ErrorKind.INVALID);
    await expectStoreError(() => store.entry("list"), ErrorKind.INVALID);
    await expectStoreError(() => store.incr("list", int(1), int(0), 0), ErrorKind.INVALID);
    expect(await store.listLength("list")).toBe(1);
  });

  test("set over a list replaces it with a value, as Redis SET does", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("k", "right", [v(1), v(2)]);
    await store.set("k", v("plain"), 0);
    expectBytes(await store.get("k"), v("plain"));
    await store.delete("k");
    expect(await store.listPush("k", "right", [v(3)])).toBe(1);
    expect(decoded(await store.listRange("k", 0, -1))).toEqual([3]);
  });

  test("a list keeps its TTL across pushes and pops, and expires whole", async ({ open, time }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "right", [v(1), v(2)]);
    expect(await store.expire("q", time.unit)).toBe(true);
    await store.listPush("q", "left", [v(0)]);
    await store.listPop("q", "right", 1);
    expect(await store.ttl("q")).toBeGreaterThan(0);
    await time.advance(time.unit);
    expect(await store.listLength("q")).toBe(0);
    expect(await store.listRange("q", 0, -1)).toEqual([]);
    expect(await store.has("q")).toBe(false);
    expect(await store.listPush("q", "right", [v(9)])).toBe(1);
    expect(await store.ttl("q")).toBe(0);
  });

  test("a list counts as one key for size, list and max_size", async ({ open }) => {
    const store = collectionsOf(await open({ maxSize: 2 }));
    await store.listPush("a", "right", [v(1), v(2), v(3)]);
    await store.set("b", v(1), 0);
    expect(await store.size()).toBe(2);
    expect((await store.list({ prefix: "", limit: 10 })).keys.map((k) => k.key)).toEqual(["a", "b"]);
    await expectStoreError(() => store.listPush("c", "right", [v(1)]), ErrorKind.UNAVAILABLE, true);
    expect(await store.listPush("a", "right", [v(4)])).toBe(4);
  });

  test("stats bytes count a list's key and elements", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.listPush("q", "right", [v("abc"), v("de")]);
    expect((await store.stats()).bytes).toBe(1 + v("abc").length + v("de").length);
    await store.listPop("q", "left", 1);
    expect((await store.stats()).bytes).toBe(1 + v("de").length);
    await store.listPush("q", "right", [v(1), v(2), v(3)]);
    await store.listTrim("q", 0, 0);
    expect((await store.stats()).bytes).toBe(1 + v("de").length);
    await store.delete("q");
    expect((await store.stats()).bytes).toBe(0);
  });

  test("a push past the share's quota of bytes is refused, and pops give the bytes back", async ({ open }) => {
    const store = collectionsOf(await open({ quota: { maxKeys: 5, maxBytes: 40 } }));
    expect(await store.listPush("q", "right", [v("0123456789")], "t1")).toBe(1);
    await store.listPush("q", "right", [v("0123456789"), v("0123456789")], "t1");
    await expectStoreError(() => store.listPush("q", "right", [v("0123456789")], "t1"), ErrorKind.RATE_LIMITED);
    expect(await store.listLength("q")).toBe(3);
    await store.listPop("q", "left", 2);
    expect(await store.listPush("q", "right", [v("0123456789")], "t1")).toBe(2);
    const shares = (await store.stats()).shares!;
    expect(shares["t1"]).toEqual({ keys: 1, bytes: 1 + 2 * v("0123456789").length });
  });

  test("concurrent pushes lose no element", async ({ open }) => {
    const store = collectionsOf(await open());
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.listPush("q", i % 2 === 0 ? "left" : "right", [v(i)])));
    const all = decoded(await store.listRange("q", 0, -1)) as number[];
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });
});

// ---------------------------------------------------------------------------------------------
// Sorted sets
// ---------------------------------------------------------------------------------------------

function entries(...pairs: [string, number][]): ZsetEntry[] {
  return pairs.map(([member, score]) => ({ member, score }));
}

group("sorted sets", () => {
  test("zadd answers how many members are new; scores are updated in place", async ({ open }) => {
    const store = collectionsOf(await open());
    expect(await store.zsetAdd("z", entries(["a", 1], ["b", 2]))).toBe(2);
    expect(await store.zsetAdd("z", entries(["a", 5], ["c", 3]))).toBe(1);
    expect(await store.zsetCard("z")).toBe(3);
    expect(await store.zsetScore("z", "a")).toBe(5);
    expect(await store.zsetScore("z", "nope")).toBeUndefined();
    expect(await store.zsetScore("missing", "a")).toBeUndefined();
    expect(await store.zsetRange("z", { by: "rank", start: 0, stop: -1, reverse: false })).toEqual(entries(["b", 2], ["c", 3], ["a", 5]));
  });

  test("ties are ordered by member bytes, as Redis orders them", async ({ open }) => {
    const store = collectionsOf(await open());
    const members = ["b", "a", "\xff", "\x00", "ab", "B", "a\x00"];
    await store.zsetAdd("z", members.map((member) => ({ member, score: 1 })));
    const range = await store.zsetRange("z", { by: "rank", start: 0, stop: -1, reverse: false });
    expect(range.map((e) => e.member)).toEqual([...members].sort(byteOrder));
    const reversed = await store.zsetRange("z", { by: "rank", start: 0, stop: -1, reverse: true });
    expect(reversed.map((e) => e.member)).toEqual([...members].sort(byteOrder).reverse());
  });

  test("scores keep their float value, infinities included, and negative zero sorts with zero", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.zsetAdd("z", entries(["tiny", 5e-324], ["third", 1 / 3], ["big", 1.7976931348623157e308], ["top", Infinity], ["bottom", -Infinity], ["neg", -2.5]));
    expect(await store.zsetScore("z", "third")).toBe(1 / 3);
    expect(await store.zsetScore("z", "tiny")).toBe(5e-324);
    expect(await store.zsetScore("z", "big")).toBe(1.7976931348623157e308);
    expect(await store.zsetScore("z", "top")).toBe(Infinity);
    const all = await store.zsetRange("z", { by: "rank", start: 0, stop: -1, reverse: false });
    expect(all.map((e) => e.member)).toEqual(["bottom", "neg", "tiny", "third", "big", "top"]);
  });

  test("zincr adds to a score, a new member starting from 0, and answers the new score", async ({ open }) => {
    const store = collectionsOf(await open());
    expect(await store.zsetIncr("z", "a", 2.5)).toBe(2.5);
    expect(await store.zsetIncr("z", "a", -1)).toBe(1.5);
    expect(await store.zsetIncr("z", "b", 10)).toBe(10);
    expect(await store.zsetCard("z")).toBe(2);
    await store.zsetAdd("z", entries(["inf", Infinity]));
    await expectStoreError(() => store.zsetIncr("z", "inf", -Infinity), ErrorKind.INVALID);
    expect(await store.zsetScore("z", "inf")).toBe(Infinity);
    await expectStoreError(() => store.zsetAdd("z", entries(["x", Number.NaN])), ErrorKind.INVALID);
    expect(await store.zsetScore("z", "x")).toBeUndefined();
  });

  test("zrank counts from 0 at the lowest, or at the highest with reverse", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.zsetAdd("z", entries(["a", 1], ["b", 2], ["c", 3]));
    expect(await store.zsetRank("z", "a", false)).toBe(0);
    expect(await store.zsetRank("z", "c", false)).toBe(2);
    expect(await store.zsetRank("z", "c", true)).toBe(0);
    expect(await store.zsetRank("z", "a", true)).toBe(2);
    expect(await store.zsetRank("z", "nope", false)).toBeUndefined();
    expect(await store.zsetRank("missing", "a", false)).toBeUndefined();
  });

  test("ranges by rank take Redis indexes, in either direction, with a limit", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.zsetAdd("z", entries(["a", 1], ["b", 2], ["c", 3], ["d", 4], ["e", 5]));
    const members = async (range: ZsetRange) => (await store.zsetRange("z", range)).map((e) => e.member);
    expect(await members({ by: "rank", start: 1, stop: 2, reverse: false })).toEqual(["b", "c"]);
    expect(await members({ by: "rank", start: -2, stop: -1, reverse: false })).toEqual(["d", "e"]);
    expect(await members({ by: "rank", start: 0, stop: 1, reverse: true })).toEqual(["e", "d"]);
    expect(await members({ by: "rank", start: 0, stop: -1, reverse: false, limit: 2 })).toEqual(["a", "b"]);
    expect(await members({ by: "rank", start: -3, stop: -1, reverse: true, limit: 2 })).toEqual(["c", "b"]);
    expect(await members({ by: "rank", start: 3, stop: 1, reverse: false })).toEqual([]);
    expect(await members({ by: "rank", start: 0, stop: 100, reverse: false, limit: 0 })).toEqual([]);
    expect(await store.zsetRange("missing", { by: "rank", start: 0, stop: -1, reverse: false })).toEqual([]);
  });

  test("ranges by score include both bounds, in either direction, with a limit", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.zsetAdd("z", entries(["a", 1], ["b", 2], ["c", 2], ["d", 3], ["e", 5]));
    const members = async (range: ZsetRange) => (await store.zsetRange("z", range)).map((e) => e.member);
    expect(await members({ by: "score", min: 2, max: 3, reverse: false })).toEqual(["b", "c", "d"]);
    expect(await members({ by: "score", min: 2, max: 3, reverse: true })).toEqual(["d", "c", "b"]);
    expect(await members({ by: "score", min: -Infinity, max: Infinity, reverse: false, limit: 2 })).toEqual(["a", "b"]);
    expect(await members({ by: "score", min: 1.5, max: 2, reverse: true, limit: 1 })).toEqual(["c"]);
    expect(await members({ by: "score", min: 4, max: 3, reverse: false })).toEqual([]);
    expect(await store.zsetRange("z", { by: "score", min: 5, max: 5, reverse: false })).toEqual(entries(["e", 5]));
  });

  test("zrem removes the members there are; a set that loses its last member is deleted", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.zsetAdd("z", entries(["a", 1], ["b", 2]));
    expect(await store.zsetRemove("z", ["a", "nope"])).toBe(1);
    expect(await store.zsetCard("z")).toBe(1);
    expect(await store.zsetRemove("z", ["b"])).toBe(1);
    expect(await store.has("z")).toBe(false);
    expect(await store.zsetCard("z")).toBe(0);
    expect(await store.zsetRemove("missing", ["a"])).toBe(0);
  });

  test("a sorted set matches a sorted model under a random mix of adds, increments and removals", async ({ open }) => {
    const store = collectionsOf(await open());
    const random = prng(29);
    const model = new Map<string, number>();
    const sorted = () =>
      [...model].map(([member, score]) => ({ member, score })).sort((a, b) => a.score - b.score || byteOrder(a.member, b.member));
    for (let step = 0; step < 200; step++) {
      const member = `m${Math.floor(random() * 12)}`;
      const r = random();
      if (r < 0.4) {
        const score = Math.floor(random() * 7) - 3;
        expect(await store.zsetAdd("z", [{ member, score }])).toBe(model.has(member) ? 0 : 1);
        model.set(member, score);
      } else if (r < 0.55) {
        const score = (model.get(member) ?? 0) + 0.5;
        expect(await store.zsetIncr("z", member, 0.5)).toBe(score);
        model.set(member, score);
      } else if (r < 0.7) {
        expect(await store.zsetRemove("z", [member])).toBe(model.delete(member) ? 1 : 0);
      } else if (r < 0.85) {
        const rank = sorted().findIndex((e) => e.member === member);
        expect(await store.zsetRank("z", member, false)).toBe(rank === -1 ? undefined : rank);
      } else {
        const min = Math.floor(random() * 7) - 3;
        expect(await store.zsetRange("z", { by: "score", min, max: min + 1, reverse: false })).toEqual(
          sorted().filter((e) => e.score >= min && e.score <= min + 1),
        );
      }
      expect(await store.zsetCard("z")).toBe(model.size);
    }
    expect(await store.zsetRange("z", { by: "rank", start: 0, stop: -1, reverse: false })).toEqual(sorted());
  });

  test("sorted-set calls on a value or a list, and value reads of a sorted set, are refused as Invalid", async ({ open }) => {
    const store = collectionsOf(await open());
    await store.set("value", v(1), 0);
    await store.listPush("list", "right", [v(1)]);
    for (const key of ["value", "list"]) {
      await expectStoreError(() => store.zsetAdd(key, entries(["a", 1])), ErrorKind.INVALID);
      await expectStoreError(() => store.zsetIncr(key, "a", 1), ErrorKind.INVALID);
      await expectStoreError(() => store.zsetScore(key, "a"), ErrorKind.INVALID);
      await expectStoreError(() => store.zsetRank(key, "a", false), ErrorKind.INVALID);
      await expectStoreError(() => store.zsetRange(key, { by: "rank", start: 0, stop: -1, reverse: false }), ErrorKind.INVALID);
      await expectStoreError(() => store.zsetRemove(key, ["a"]), ErrorKind.INVALID);
      await expectStoreError(() => store.zsetCard(key), ErrorKind.INVALID);
    }
    await store.zsetAdd("z", entries(["a", 1]));
    await expectStoreError(() => store.get("z"), ErrorKind.INVALID);
    await expectStoreError(() => store.listPush("z", "left", [v(1)]), ErrorKind.INVALID);
    await expectStoreError(() => store.incr("z", int(1), int(0), 0), ErrorKind.INVALID);
    await store.set("z", v(2), 0);
    expectBytes(await store.get("z"), v(2));
  });

  test("a sorted set counts its key, members and 8 bytes per score in stats and quotas", async ({ open }) => {
    const store = collectionsOf(await open({ quota: { maxKeys: 5, maxBytes: 1 + 3 * (2 + 8) } }));
    await store.zsetAdd("z", entries(["m1", 1], ["m2", 2]), "t1");
    expect((await store.stats()).bytes).toBe(1 + 2 * (2 + 8));
    expect(await store.zsetAdd("z", entries(["m3", 3]), "t1")).toBe(1);
    await expectStoreError(() => store.zsetAdd("z", entries(["m4", 4]), "t1"), ErrorKind.RATE_LIMITED);
    await expectStoreError(() => store.zsetIncr("z", "m4", 4, "t1"), ErrorKind.RATE_LIMITED);
    expect(await store.zsetIncr("z", "m3", 4, "t1")).toBe(7);
    await store.zsetRemove("z", ["m1"]);
    expect((await store.stats()).shares!["t1"]).toEqual({ keys: 1, bytes: 1 + 2 * (2 + 8) });
  });

  test("a sorted set expires whole and keeps its TTL across writes", async ({ open, time }) => {
    const store = collectionsOf(await open());
    await store.zsetAdd("z", entries(["a", 1]));
    await store.expire("z", time.unit);
    await store.zsetAdd("z", entries(["b", 2]));
    expect(await store.ttl("z")).toBeGreaterThan(0);
    await time.advance(time.unit);
    expect(await store.zsetCard("z")).toBe(0);
    expect(await store.zsetScore("z", "a")).toBeUndefined();
    expect(await store.zsetAdd("z", entries(["c", 3]))).toBe(1);
    expect(await store.zsetCard("z")).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Multi-key transactions
// ---------------------------------------------------------------------------------------------

/** An AtomicWrite with empty parts but those given. */
function tx(parts: Partial<AtomicWrite>): AtomicWrite {
  return { checks: [], set: [], delete: [], incr: [], ttlMs: 0, ...parts };
}

group("atomic", () => {
  test("an atomic write sets, deletes and increments every key together", async ({ open }) => {
    const store = atomicOf(await open());
    await store.set("gone", v(1), 0);
    await store.set("n", v(5), 0);
    const outcome = await store.atomic(tx({ set: [["a", v("x")], ["b", v("y")]], delete: ["gone", "never"], incr: [["n", int(2)], ["m", float(0.5)]] }));
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.incr.map(hex)).toEqual([hex(v(7)), hex(f64(0.5))]);
    expectBytes(await store.get("a"), v("x"));
    expectBytes(await store.get("b"), v("y"));
    expect(await store.has("gone")).toBe(false);
    expectBytes(await store.get("n"), v(7));
    expectBytes(await store.get("m"), f64(0.5));
  });

  test("a check of a version or of absence that fails writes nothing and names its key", async ({ open }) => {
    const store = atomicOf(await open());
    await store.set("a", v(1), 0);
    const version = (await store.entry("a"))!.version;
    await store.set("taken", v(1), 0);
    const changed = await store.atomic(tx({ checks: [["a", version], ["taken", null]], set: [["a", v(2)]], delete: ["taken"] }));
    expect(changed).toEqual({ ok: false, conflict: "taken" });
    expectBytes(await store.get("a"), v(1));
    expect(await store.has("taken")).toBe(true);
    await store.set("a", v(3), 0);
    expect(await store.atomic(tx({ checks: [["a", version]], set: [["b", v(1)]] }))).toEqual({ ok: false, conflict: "a" });
    expect(await store.atomic(tx({ checks: [["missing", "0000000000000001"]], set: [["b", v(1)]] }))).toEqual({ ok: false, conflict: "missing" });
    expect(await store.has("b")).toBe(false);
    const fresh = (await store.entry("a"))!.version;
    expect((await store.atomic(tx({ checks: [["a", fresh], ["new", null]], set: [["a", v(4)], ["new", v(5)]] }))).ok).toBe(true);
    expectBytes(await store.get("a"), v(4));
    expect((await store.entry("a"))!.version).not.toBe(fresh);
  });

  test("keys set by an atomic write get its TTL; an incr of a live key keeps its own", async ({ open, time }) => {
    const store = atomicOf(await open());
    await store.set("n", v(1), 0);
    await store.atomic(tx({ set: [["a", v(1)]], incr: [["n", int(1)], ["fresh", int(1)]], ttlMs: time.unit }));
    expect(await store.ttl("n")).toBe(0);
    expect(await store.ttl("a")).toBeGreaterThan(0);
    expect(await store.ttl("fresh")).toBeGreaterThan(0);
    await time.advance(time.unit);
    expect(await store.has("a")).toBe(false);
    expect(await store.has("fresh")).toBe(false);
    expectBytes(await store.get("n"), v(2));
  });

  test("an incr of a non-number fails the whole write as Invalid", async ({ open }) => {
    const store = atomicOf(await open());
    await store.set("text", v("abc"), 0);
    await store.set("keep", v(1), 0);
    await expectStoreError(() => store.atomic(tx({ set: [["a", v(1)]], delete: ["keep"], incr: [["text", int(1)]] })), ErrorKind.INVALID);
    expect(await store.has("a")).toBe(false);
    expect(await store.has("keep")).toBe(true);
    await collectionsOf(store).listPush("list", "right", [v(1)]);
    await expectStoreError(() => store.atomic(tx({ set: [["a", v(1)]], incr: [["list", int(1)]] })), ErrorKind.INVALID);
    expect(await store.has("a")).toBe(false);
  });

  test("new keys that do not fit fail the whole write; its deletes make room first", async ({ open }) => {
    const store = atomicOf(await open({ maxSize: 3 }));
    await store.set("a", v(1), 0);
    await store.set("b", v(1), 0);
    await expectStoreError(() => store.atomic(tx({ set: [["c", v(1)], ["d", v(1)]], delete: ["zz"] })), ErrorKind.UNAVAILABLE, true);
    expect(await store.has("c")).toBe(false);
    expect((await store.atomic(tx({ set: [["c", v(1)], ["d", v(1)]], delete: ["a"] }))).ok).toBe(true);
    expect(await store.size()).toBe(3);
    expect(await store.has("a")).toBe(false);
  });

  test("an atomic write past the share's quota writes nothing", async ({ open }) => {
    const store = atomicOf(await open({ quota: { maxKeys: 2 } }));
    await store.set("mine", v(1), 0, "t1");
    await expectStoreError(() => store.atomic(tx({ set: [["a", v(1)], ["b", v(1)]] }), "t1"), ErrorKind.RATE_LIMITED);
    expect(await store.has("a")).toBe(false);
    expect((await store.atomic(tx({ set: [["a", v(1)]], incr: [["mine", int(1)]] }), "t1")).ok).toBe(true);
    expect((await store.stats()).shares!["t1"]!.keys).toBe(2);
  });

  test("concurrent atomic transfers keep the total", async ({ open }) => {
    const store = atomicOf(await open());
    await store.setMany([["x", v(100)], ["y", v(100)]], 0);
    const transfer = async (from: string, to: string): Promise<void> => {
      for (;;) {
        const a = (await store.entry(from))!;
        const b = (await store.entry(to))!;
        const outcome = await store.atomic(
          tx({ checks: [[from, a.version], [to, b.version]], set: [[from, v((decodeValue(a.value) as number) - 1)], [to, v((decodeValue(b.value) as number) + 1)]] }),
        );
        if (outcome.ok) return;
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? transfer("x", "y") : transfer("y", "x"))));
    const [x, y] = (await store.getMany(["x", "y"])).map((bytes) => decodeValue(bytes!) as number);
    expect(x! + y!).toBe(200);
    expect(x).toBe(100);
  });
});

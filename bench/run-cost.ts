/**
 * What a whole run costs: luastore against a bare fengari state per run and against Redis
 * EVALSHA of the same script, inline and in worker isolation, plus latency and memory over many
 * runs. Every figure is a ratio against an anchor measured in this run.
 */
import { readFileSync } from "node:fs";
import { lauxlib, lua, lualib, to_luastring, type lua_State } from "fengari";
import { Redis } from "ioredis";
import { createHost, type Host } from "../src/host.js";
import { startBenchRedis } from "./redis-server.js";

export interface RunCostOptions {
  quick: boolean;
  record(name: string, value: number, unit: string, target?: { op: "<=" | ">="; bound: number }): void;
  log(line: string): void;
}

const SHORT = `local s = require("store").get("bench:kv")
s:set("k", "v")
local v = s:get("k")
s:delete("k")
s:release()
return v`;

const PLUGIN = readFileSync(new URL("../../bench/fixtures/plugin.lua", import.meta.url), "utf8");
/** The plugin's length in lines, as the figures name it. */
const PLUGIN_LINES = PLUGIN.trimEnd().split("\n").length;

const REGISTRY = { version: "1.0", namespace: "bench", entries: [{ name: "kv", kind: "store.memory", max_size: 1_000_000, eviction: "none" }] };
const POLICIES = { version: "1.0", policies: [{ id: "bench", effect: "allow", actions: ["store.get", "store.key.*"], resources: ["bench:*"] }] };
const ACTOR = { id: "bench", meta: {} };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs/s of `fn` (wall clock: what a caller sees), the median of several timed batches after one warm-up batch. */
async function runsPerSecond(fn: () => unknown, n: number, reps: number): Promise<number> {
  const rates: number[] = [];
  for (let rep = -1; rep < reps; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    const ms = performance.now() - t0;
    if (rep >= 0) rates.push(n / (ms / 1000));
  }
  return median(rates);
}

/** CPU milliseconds this process has used (every thread: the run's own and the GC's). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs of each side before a pair is timed (see pairedRates). */
const WARM_UP_RUNS = 5000;

/**
 * Runs per second of an anchor and a case, measured in alternating batches (anchor first in
 * even turns, the case first in odd ones, warm-up pairs discarded), and the median of the
 * per-pair ratios case / anchor; per CPU second when both are CPU-bound on this thread. On a loaded machine the load moves between pairs far more than within one, and
 * neither side gets the JIT to itself. CPU time, not wall time: with 2 cores shared by a load
 * average of 15, the share of a core this process gets moved 2–4x within seconds, and the same
 * wall-clock ratio read from 1.0 to 13 from run to run.
 */
async function pairedRates(
  anchor: () => unknown,
  measured: () => unknown,
  n: number,
  reps: number,
  clock: "cpu" | "wall" = "cpu",
): Promise<{ anchor: number; measured: number; ratio: number }> {
  const now = clock === "cpu" ? cpuMs : (): number => performance.now();
  const gc = (globalThis as { gc?: (options?: { type: "minor" }) => void }).gc;
  // A young-generation collection, not a full one: a run's garbage (a bare run's whole Lua
  // state, a sandbox) dies young, and a forced full collection also drops the maps of every
  // object kind that had no live instance at that moment (fengari's parser tokens, a run's
  // context), which deoptimizes the code built for them: measured, ~90 functions of each side
  // recompiled after every batch, the bare short run 21 µs -> 90-145 µs and the inline one
  // 10 µs -> 65-180 µs, so the pair measured how fast each side recovers its JIT, not a run.
  const collect = gc === undefined ? (): void => {} : (): void => gc({ type: "minor" });
  const batch = async (fn: () => unknown): Promise<number> => {
    // Each batch collects its own garbage on its own time, so that neither side is charged for
    // the other's.
    collect();
    const t0 = now();
    for (let i = 0; i < n; i++) await fn();
    collect();
    return n / ((now() - t0) / 1000);
  };
  const anchors: number[] = [];
  const cases: number[] = [];
  const ratios: number[] = [];
  // Warm-up pairs until each side has run WARM_UP_RUNS times: V8 needs that many runs of either
  // side before its code is optimized (measured, inline short runs: 176 µs of CPU a run in the
  // first batch of 1 000, 22 µs in the fourth, 10–11 µs from the sixth on; the plugin the same
  // from ~2 000 runs), and one warm-up pair left the figures measuring the JIT at work.
  const warmUpPairs = Math.ceil(WARM_UP_RUNS / n);
  for (let rep = -warmUpPairs; rep < reps; rep++) {
    let a: number;
    let c: number;
    if (rep % 2 === 0) {
      a = await batch(anchor);
      c = await batch(measured);
    } else {
      c = await batch(measured);
      a = await batch(anchor);
    }
    if (rep < 0) continue;
    anchors.push(a);
    cases.push(c);
    ratios.push(c / a);
  }
  return { anchor: median(anchors), measured: median(cases), ratio: median(ratios) };
}

// ---- the bare anchor: what a naive embedding does per run -----------------------------------

const bareStore = new Map<string, unknown>();

/** A handle whose methods work on a JS Map, as a naive embedding would write them. */
function pushBareHandle(L: lua_State): void {
  lua.lua_createtable(L, 0, 6);
  const methods: Record<string, (L: lua_State) => number> = {
    set: (L2) => {
      bareStore.set(lua.lua_tojsstring(L2, 2), lua.lua_type(L2, 3) === lua.LUA_TSTRING ? lua.lua_tojsstring(L2, 3) : true);
      lua.lua_pushboolean(L2, true);
      return 1;
    },
    get: (L2) => {
      const v = bareStore.get(lua.lua_tojsstring(L2, 2));
      if (typeof v === "string") lua.lua_pushstring(L2, to_luastring(v));
      else lua.lua_pushnil(L2);
      return 1;
    },
    delete: (L2) => {
      lua.lua_pushboolean(L2, bareStore.delete(lua.lua_tojsstring(L2, 2)));
      return 1;
    },
    incr: (L2) => {
      const k = lua.lua_tojsstring(L2, 2);
      const n = ((bareStore.get(k) as number | undefined) ?? lua.lua_tonumber(L2, 4)) + lua.lua_tonumber(L2, 3);
      bareStore.set(k, n);
      lua.lua_pushnumber(L2, n);
      return 1;
    },
    list: (L2) => {
      lua.lua_createtable(L2, 0, 1);
      lua.lua_createtable(L2, 0, 0);
      lua.lua_setfield(L2, -2, "keys");
      return 1;
    },
    release: (L2) => {
      lua.lua_pushboolean(L2, true);
      return 1;
    },
  };
  for (const [name, fn] of Object.entries(methods)) {
    lua.lua_pushcfunction(L, fn);
    lua.lua_setfield(L, -2, name);
  }
}

const bareRequire = (L: lua_State): number => {
  lua.lua_createtable(L, 0, 1);
  lua.lua_pushcfunction(L, (L2) => {
    pushBareHandle(L2);
    return 1;
  });
  lua.lua_setfield(L, -2, "get");
  return 1;
};

/** One run on a bare state: luaL_newstate, the libraries the script needs, compile, call. */
function bareRun(source: Uint8Array, libs: "base" | "plugin"): void {
  const L = lauxlib.luaL_newstate();
  lauxlib.luaL_requiref(L, "_G", lualib.luaopen_base, 1);
  lua.lua_pop(L, 1);
  if (libs === "plugin") {
    for (const [name, open] of [
      ["string", lualib.luaopen_string],
      ["table", lualib.luaopen_table],
      ["math", lualib.luaopen_math],
    ] as const) {
      lauxlib.luaL_requiref(L, name, open, 1);
      lua.lua_pop(L, 1);
    }
  }
  lua.lua_pushcfunction(L, bareRequire);
  lua.lua_setglobal(L, "require");
  if (lauxlib.luaL_loadbufferx(L, source, source.length, "=bare", "t") !== lua.LUA_OK || lua.lua_pcall(L, 0, lua.LUA_MULTRET, 0) !== lua.LUA_OK) {
    throw new Error(`bare run failed: ${lua.lua_tojsstring(L, -1)}`);
  }
}

// ---- the figures ------------------------------------------------------------------------------

/** Redis EVALSHA of the short script against inline short runs, in alternating batches. */
async function redisFigures(o: RunCostOptions, inlineShort: () => Promise<void>, n: number, reps: number): Promise<void> {
  const server = await startBenchRedis();
  if (server === null) {
    o.log("  (no redis-server on the PATH: the Redis EVALSHA anchor is missing, its ratio is not printed)");
    return;
  }
  const client = new Redis({ host: "127.0.0.1", port: server.port, lazyConnect: true, enableAutoPipelining: false });
  try {
    await client.connect();
    const script = `redis.call("SET", KEYS[1], ARGV[1]) local v = redis.call("GET", KEYS[1]) redis.call("DEL", KEYS[1]) return v`;
    const sha = (await client.script("LOAD", script)) as string;
    // Wall time here: the anchor's work is in the redis-server process and on the network.
    const r = await pairedRates(() => client.evalsha(sha, 1, "bench:k", "v"), inlineShort, n, reps, "wall");
    o.record("Redis EVALSHA of the short script, sequential", r.anchor, "runs/s");
    o.record("inline short / Redis EVALSHA", r.ratio, "ratio", { op: ">=", bound: 1 });
  } finally {
    client.disconnect();
    await server.stop();
  }
}

/** CPU µs per run of `return 1`, one run at a time (every thread of the process: the host's and the worker's). */
async function returnOneCpuUs(host: Host, n: number): Promise<number> {
  const runs: number[] = [];
  for (let rep = -1; rep < 3; rep++) {
    const t0 = cpuMs();
    for (let i = 0; i < n; i++) {
      const r = await host.run("return 1", { actor: ACTOR });
      if (!r.ok) throw new Error(r.error?.message);
    }
    if (rep >= 0) runs.push(((cpuMs() - t0) * 1000) / n);
  }
  return median(runs);
}

async function workerFigures(o: RunCostOptions, n: number, inlineShort: number, inlineHost: Host): Promise<void> {
  const host = createHost({ registry: REGISTRY, policies: POLICIES, sweepTimers: false, isolation: "worker" } as never);
  await host.ready();
  try {
    // The dispatch alone: a run that does nothing, through a worker and inline, in CPU time.
    const dispatchRuns = Math.min(n, 2000);
    const inlineUs = await returnOneCpuUs(inlineHost, dispatchRuns);
    const workerUs = await returnOneCpuUs(host, dispatchRuns);
    o.record("`return 1` inline, CPU per run", inlineUs, "µs");
    o.record("`return 1` via a worker, CPU per run (all threads)", workerUs, "µs");
    o.record("worker dispatch alone (the difference)", workerUs - inlineUs, "µs");
    const inFlight = 8;
    const latencies: number[] = [];
    const batch = async (count: number, keep: boolean): Promise<number> => {
      let next = 0;
      const t0 = performance.now();
      const lane = async (): Promise<void> => {
        while (next++ < count) {
          const s = performance.now();
          const r = await host.run(SHORT, { actor: ACTOR });
          if (!r.ok) throw new Error(`worker run failed: ${r.error?.message}`);
          if (keep) latencies.push(performance.now() - s);
        }
      };
      await Promise.all(Array.from({ length: inFlight }, lane));
      return count / ((performance.now() - t0) / 1000);
    };
    await batch(Math.min(n, 2000), false);
    const rates: number[] = [];
    for (let i = 0; i < (o.quick ? 2 : 4); i++) rates.push(await batch(n, true));
    const rate = median(rates);
    latencies.sort((a, b) => a - b);
    o.record("short script, worker, 8 in flight", rate, "runs/s");
    o.record("worker 8 in flight / inline sequential", rate / inlineShort, "ratio", { op: ">=", bound: 1.5 });
    o.record("p50 latency, worker, 8 in flight", latencies[Math.floor(latencies.length * 0.5)]!, "ms");
    o.record("p99 latency, worker, 8 in flight", latencies[Math.floor(latencies.length * 0.99)]!, "ms");
  } finally {
    await host.close();
  }
}

async function memoryOverManyRuns(o: RunCostOptions, host: Host): Promise<void> {
  const total = o.quick ? 20_000 : 100_000;
  const distinct = 1000;
  const heap = (): number => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed / 2 ** 20;
  };
  let afterWarmUp = 0;
  for (let i = 0; i < total; i++) {
    const r = await host.run(`-- script ${i % distinct}\nlocal t = { ${i % distinct} } return #t`, { actor: ACTOR, chunkName: `=s${i % distinct}` });
    if (!r.ok) throw new Error(r.error?.message);
    if (i === total / 10) afterWarmUp = heap();
  }
  const end = heap();
  o.record(`host heap after ${total / 10} runs (MiB)`, afterWarmUp, "MiB");
  o.record(`host heap after ${total} runs of ${distinct} scripts (MiB)`, end, "MiB");
  o.record("heap growth from warm-up to end / warm-up", (end - afterWarmUp) / afterWarmUp, "ratio", { op: "<=", bound: 0.1 });
}

/** The run-cost figures of the bench. */
export async function runCostBenchmarks(o: RunCostOptions): Promise<void> {
  o.log("\nWhole runs (host created once, runs awaited one after another unless said)");
  const n = o.quick ? 1000 : 5000;
  const reps = o.quick ? 3 : 5;
  const shortBytes = new TextEncoder().encode(SHORT);
  const pluginBytes = new TextEncoder().encode(PLUGIN);

  const host = createHost({ registry: REGISTRY, policies: POLICIES, sweepTimers: false, isolation: "inline" } as never);
  const runShort = async (): Promise<void> => {
    const r = await host.run(SHORT, { actor: ACTOR });
    if (!r.ok) throw new Error(r.error?.message);
  };
  const runPlugin = async (): Promise<void> => {
    const r = await host.run(PLUGIN, { actor: ACTOR });
    if (!r.ok) throw new Error(r.error?.message);
  };
  const short = await pairedRates(() => bareRun(shortBytes, "base"), runShort, n, reps);
  const plugin = await pairedRates(() => bareRun(pluginBytes, "plugin"), runPlugin, n / 5, reps);
  const inlineReturn = await runsPerSecond(() => host.run("return 1", { actor: ACTOR }), n, reps);
  const inlineShort = short.measured;

  o.record("inline `return 1`", inlineReturn, "runs/s");
  o.record("bare fengari state per run, short script", short.anchor, "runs/s");
  o.record("inline short script", inlineShort, "runs/s");
  o.record("inline short / bare state per run", short.ratio, "ratio", { op: ">=", bound: 1.5 });
  o.record(`bare state per run, ${PLUGIN_LINES}-line plugin`, plugin.anchor, "runs/s");
  o.record(`inline ${PLUGIN_LINES}-line plugin`, plugin.measured, "runs/s");
  o.record("inline plugin / bare state per run", plugin.ratio, "ratio", { op: ">=", bound: 3 });

  await redisFigures(o, runShort, n, reps);

  await workerFigures(o, n, inlineShort, host);
  await memoryOverManyRuns(o, host);
  await host.close();
}

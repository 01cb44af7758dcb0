/**
 * Snapshots of memory stores (registry field `snapshot`): load at start, atomic writes on commit,
 * close and every `every`, destroy, refusal of bad files, and a SIGKILL in the middle of writing
 * the snapshot of 1 000 000 keys, which must leave the previous snapshot whole.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { RegistryError } from "../../src/errors.js";
import { createHost } from "../../src/host.js";
import { loadRegistry } from "../../src/registry/index.js";
import type { MemoryStoreConfig } from "../../src/registry/types.js";
import { MemoryStore } from "../../src/store/memory.js";
import { decodeSnapshot, encodeSnapshot, readSnapshot, SnapshotError } from "../../src/store/snapshot.js";
import { TEST_POLICIES } from "../helpers.js";
import { commonStoreConfig } from "./store-suite.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const START = 1_700_000_000_000;
let dir: string;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const tmp = () => (dir = mkdtempSync(join(tmpdir(), "luastore-snapshot-")));

function config(path: string, everyMs?: number): MemoryStoreConfig {
  return { ...commonStoreConfig(), kind: "store.memory", eviction: "none", snapshot: { path, everyMs } };
}

/** Every live key with its value, expiry and metadata, as a comparable object. */
function contents(store: MemoryStore): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let after: string | undefined;
  for (;;) {
    const page = store.list(after === undefined ? { prefix: "", limit: 1000 } : { prefix: "", after, limit: 1000 });
    for (const { key } of page.keys) {
      const e = store.entry(key)!;
      out[key] = { value: decodeValue(e.value), expiresAt: e.expiresAt, metadata: e.metadata && decodeValue(e.metadata) };
    }
    if (!page.hasMore) return out;
    after = page.cursor;
  }
}

describe("memory store snapshots", () => {
  it("commit writes every live entry; a new store loads them back, TTLs as absolute times", async () => {
    const path = join(tmp(), "cache.snap");
    const clock = new ManualClock(START);
    const a = new MemoryStore(config(path), { clock, sweepTimer: false });
    a.set("plain", encodeValue({ n: 1, f: 1.5, s: "x" }), 0);
    a.set("k\xff\x00", encodeValue("binary key"), 0);
    a.set("ttl", encodeValue(1), 60_000);
    a.set("gone", encodeValue(1), 1_000);
    a.put("meta", encodeValue(2), { ttlMs: 0, onlyIfAbsent: false, metadata: encodeValue({ m: true }) });
    clock.advance(1_000);
    await a.commit();
    const before = contents(a);
    await a.close();
    clock.advance(10_000);
    const b = new MemoryStore(config(path), { clock, sweepTimer: false });
    expect(contents(b)).toEqual(before);
    expect(b.entry("ttl")!.expiresAt).toBe(START + 60_000);
    expect(b.ttl("ttl")).toBe(60_000 - 11_000);
    expect(b.stats()).toMatchObject({ sets: 0, size: 4 });
    clock.advance(60_000);
    await b.close();
    const c = new MemoryStore(config(path), { clock, sweepTimer: false });
    expect(Object.keys(contents(c)).sort()).toEqual(["k\xff\x00", "meta", "plain"]);
    await c.close();
  });

  it("close writes the snapshot; a store without a file starts empty", async () => {
    const path = join(tmp(), "sub", "..", "close.snap");
    const clock = new ManualClock(START);
    const a = new MemoryStore(config(path), { clock, sweepTimer: false });
    expect(a.size()).toBe(0);
    a.set("k", encodeValue("v"), 0);
    await a.close();
    const b = new MemoryStore(config(path), { clock, sweepTimer: false });
    expect(decodeValue(b.get("k")!)).toBe("v");
    await b.close();
  });

  it("destroy deletes the file, and close writes no more", async () => {
    const path = join(tmp(), "d.snap");
    const clock = new ManualClock(START);
    const a = new MemoryStore(config(path), { clock, sweepTimer: false });
    a.set("k", encodeValue(1), 0);
    await a.commit();
    expect(existsSync(path)).toBe(true);
    await a.destroy();
    expect(existsSync(path)).toBe(false);
    await a.close();
    expect(existsSync(path)).toBe(false);
    await expect(a.commit()).rejects.toMatchObject({ code: "STORE_ERROR", kind: "Invalid" });
  });

  it("every: the store writes its snapshot periodically", async () => {
    const path = join(tmp(), "every.snap");
    const a = new MemoryStore(config(path, 20), { clock: new ManualClock(START), sweepTimer: false });
    a.set("k", encodeValue(1), 0);
    // Waits for the timer however slow the machine; nothing races it.
    while (!existsSync(path)) await new Promise((r) => setTimeout(r, 10));
    expect(readSnapshot(path)!.map((e) => e.key)).toEqual(["k"]);
    await a.close();
  });

  it("a write leaves no temporary file behind, and the file is private to its owner", async () => {
    const path = join(tmp(), "p.snap");
    const a = new MemoryStore(config(path), { clock: new ManualClock(START), sweepTimer: false });
    a.set("k", encodeValue(1), 0);
    await a.commit();
    await a.close();
    expect(readdirSync(dir)).toEqual(["p.snap"]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  describe("a bad snapshot file is refused with its path and position, and left as it is", () => {
    const good = () => Buffer.concat(encodeSnapshot([{ key: "a", value: encodeValue(1), expiresAt: 0 }, { key: "b", value: encodeValue(2), expiresAt: 0 }]));
    it.each([
      ["not a snapshot", () => Buffer.from("hello, world, this is text"), /not a luastore snapshot/, 0],
      ["cut short", () => good().subarray(0, good().length - 5), /cut short|damaged/, undefined],
      ["a flipped byte", () => {
        const b = good();
        b[10] = b[10]! ^ 0xff;
        return b;
      }, /checksum mismatch/, undefined],
    ])("%s", (_name, bytes, message, offset) => {
      const path = join(tmp(), "bad.snap");
      const data = bytes();
      writeFileSync(path, data);
      let error: unknown;
      try {
        new MemoryStore(config(path), { clock: new ManualClock(START), sweepTimer: false });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SnapshotError);
      expect(error).toMatchObject({ code: "STORE_ERROR", kind: "Invalid", path });
      expect((error as Error).message).toMatch(message);
      if (offset !== undefined) expect((error as SnapshotError).offset).toBe(offset);
      expect(readFileSync(path).equals(data)).toBe(true);
    });

    it("records that run past the end are refused at their offset", () => {
      const entries = decodeSnapshot("x", good());
      expect(entries.map((e) => e.key)).toEqual(["a", "b"]);
      // A record whose key length points past the trailer, with a valid checksum over it.
      const forged = Buffer.concat(encodeSnapshot([{ key: "a", value: encodeValue(1), expiresAt: 0 }]));
      forged.writeUInt32LE(1000, 8);
      forged.writeUInt32LE(crc32(forged.subarray(0, forged.length - 4)) >>> 0, forged.length - 4);
      expect(() => decodeSnapshot("forged.snap", forged)).toThrow(/at byte 12: a key runs past the last record/);
    });

    it("createHost refuses to start on a corrupt snapshot, and the file is kept", () => {
      const path = join(tmp(), "host.snap");
      writeFileSync(path, "garbage");
      const make = () =>
        createHost({
          registry: { version: "1.0", namespace: "app", entries: [{ name: "cache", kind: "store.memory", snapshot: { path } }] },
          policies: TEST_POLICIES,
          isolation: "inline",
          sweepTimers: false,
        });
      expect(make).toThrow(SnapshotError);
      expect(readFileSync(path, "utf8")).toBe("garbage");
    });
  });

  it("host.store(id).commit() and destroy(); a store without a snapshot refuses them as Invalid", async () => {
    const path = join(tmp(), "h.snap");
    const host = createHost({
      registry: {
        version: "1.0",
        namespace: "app",
        entries: [
          { name: "cache", kind: "store.memory", snapshot: { path, every: "1h" } },
          { name: "plain", kind: "store.memory" },
        ],
      },
      policies: TEST_POLICIES,
      isolation: "inline",
      sweepTimers: false,
    });
    try {
      await host.store("app:cache").set("k", "v");
      await host.store("app:cache").commit();
      expect(readSnapshot(path)!.map((e) => e.key)).toEqual(["k"]);
      await host.store("app:cache").destroy();
      expect(existsSync(path)).toBe(false);
      await expect(host.store("app:plain").commit()).rejects.toMatchObject({ code: "STORE_ERROR", kind: "Invalid" });
    } finally {
      await host.close();
    }
    expect(existsSync(path)).toBe(false);
  });

  it("in worker isolation the store thread keeps the snapshot: commit() and close() write it", async () => {
    const path = join(tmp(), "w.snap");
    const host = createHost({
      registry: { version: "1.0", namespace: "app", entries: [{ name: "cache", kind: "store.memory", snapshot: { path } }] },
      policies: TEST_POLICIES,
      isolation: "worker",
      workers: 1,
      sweepTimers: false,
    });
    await host.ready();
    const r = await host.run(`local s = require("store").get("app:cache"); return s:set("from-lua", 7)`, { actor: { id: "admin", meta: {} } });
    expect(r.values).toEqual([true]);
    await host.store("app:cache").commit();
    expect(readSnapshot(path)!.map((e) => e.key)).toEqual(["from-lua"]);
    await host.store("app:cache").set("late", 1);
    await host.close();
    expect(readSnapshot(path)!.map((e) => e.key).sort()).toEqual(["from-lua", "late"]);
  });

  it("the registry takes snapshot { path, every } on store.memory only, and refuses a snapshot without a path", () => {
    const load = (entry: Record<string, unknown>) => () => loadRegistry({ version: "1.0", namespace: "app", entries: [{ name: "s", ...entry } as never] });
    const ok = load({ kind: "store.memory", snapshot: { path: "x.snap", every: "30s" } })().entries[0]!;
    expect(ok).toMatchObject({ snapshot: { path: "x.snap", everyMs: 30_000 } });
    expect(load({ kind: "store.memory", snapshot: { every: "30s" } })).toThrow(RegistryError);
    expect(load({ kind: "store.sql", path: ":memory:", snapshot: { path: "x.snap" } })).toThrow(RegistryError);
  });

  it("a SIGKILL in the middle of writing the snapshot of 1 000 000 keys leaves the previous snapshot whole", async () => {
    const path = join(tmp(), "crash.snap");
    const keys = 1_000_000;
    const child = spawn(process.execPath, ["--import", join(fixtures, "register-ts.mjs"), join(fixtures, "snapshot-child.ts"), JSON.stringify({ path, keys })], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    let written = 0;
    let writing = 0;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      for (const [, what, g] of chunk.matchAll(/(writing|written) (\d+)/g)) {
        if (what === "written") written = Number(g);
        else writing = Number(g);
      }
    });
    // Kill only once a temporary file of a later generation is on disk and not complete: the
    // poll waits as long as the machine needs, and tries the next generation when it misses one.
    let killedMidWrite = false;
    const full = statSizeWhenWritten();
    while (!killedMidWrite && child.exitCode === null) {
      const partial = written >= 1 && writing > written && readdirSync(dir).some((f) => f.endsWith(".tmp") && statSync(join(dir, f)).size < full());
      if (partial) {
        child.kill("SIGKILL");
        killedMidWrite = true;
      } else await new Promise((r) => setTimeout(r, 1));
    }
    await exited;
    expect(killedMidWrite, stderr).toBe(true);
    const entries = readSnapshot(path)!;
    expect(entries.length).toBe(keys);
    // One whole generation: the one before the write that was cut (or, if the rename won the race with the kill, that one).
    const generation = String(decodeValue(entries[0]!.value)).split(":")[0];
    expect([String(writing - 1), String(writing)]).toContain(generation);
    for (let i = 0; i < keys; i += 9973) expect(decodeValue(entries[i]!.value)).toBe(`${generation}:${i}`);
    expect(entries.every((e) => String(decodeValue(e.value)).startsWith(`${generation}:`))).toBe(true);

    /** The size of a complete snapshot, once the first one is on disk. */
    function statSizeWhenWritten(): () => number {
      return () => (existsSync(path) ? statSync(path).size : Number.POSITIVE_INFINITY);
    }
  }, 300_000);
});

/**
 * `luastore store ...` on a real registry: get, list, info, flush, errors with did-you-mean, and
 * the round trip dump → flush → restore → identical contents on a memory store with a snapshot,
 * SQLite and (with LUASTORE_REDIS_URL) Redis.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { systemClock } from "../../src/clock.js";
import { encodeValue } from "../../src/codec/msgpack.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";

let dir: string;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[], stdin = ""): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), stdin: async () => Buffer.from(stdin) });
  return { code, out, err };
}

const redisUrl = process.env.LUASTORE_REDIS_URL || undefined;

/** A registry file with one store of each kind (Redis only when a server is given). */
function registryFile(): string {
  dir = mkdtempSync(join(tmpdir(), "luastore-store-cli-"));
  const redis = redisUrl
    ? `
  - name: shared
    kind: store.redis
    url: ${redisUrl}
    key_prefix: "luastore-test:${process.pid}:cli:${Date.now().toString(36)}:"
    command_timeout: 10s`
    : "";
  const file = join(dir, "registry.yaml");
  writeFileSync(
    file,
    `version: "1.0"
namespace: ops
entries:
  - name: cache
    kind: store.memory
    max_size: 20000
    snapshot: { path: cache.snap }
  - name: sessions
    kind: store.sql
    path: sessions.db
${redis}
`,
  );
  return file;
}

/** Opens a store of the registry as the host would, for setting up and reading back. */
function open(file: string, id: string): Store {
  const registry = loadRegistry(file);
  return createStore(registry.entries.find((e) => e.id === id)!, { clock: systemClock, sweepTimers: false, baseDir: registry.baseDir });
}

/** Key → [value bytes, expiry (ms since the epoch, 0 = none), metadata bytes], every live key. */
async function contents(store: Store): Promise<Record<string, [string, number, string | undefined]>> {
  const out: Record<string, [string, number, string | undefined]> = {};
  let after: string | undefined;
  for (;;) {
    const page = await store.list(after === undefined ? { prefix: "", limit: 1000 } : { prefix: "", after, limit: 1000 });
    for (const { key } of page.keys) {
      const e = (await store.entry(key))!;
      out[key] = [Buffer.from(e.value).toString("hex"), e.expiresAt, e.metadata && Buffer.from(e.metadata).toString("hex")];
    }
    if (!page.hasMore) return out;
    after = page.cursor;
  }
}

async function fill(store: Store, n: number): Promise<void> {
  await store.set("plain", encodeValue({ n: 1, f: 1.5, list: [1, "x"] }), 0);
  await store.set("k\xff\x00bin", encodeValue("binary key"), 0);
  await store.set("ttl", encodeValue(1), 3_600_000);
  await store.put("meta", encodeValue("m"), { ttlMs: 0, onlyIfAbsent: false, metadata: encodeValue({ tag: "x" }) });
  const entries: [string, Uint8Array][] = [];
  for (let i = 0; i < n; i++) entries.push([`bulk:${i}`, encodeValue(i % 3 === 0 ? i + 0.5 : i)]);
  for (let i = 0; i < entries.length; i += 1000) await store.setMany(entries.slice(i, i + 1000), 0);
}

const KINDS = [
  { id: "ops:cache", keys: 10_050 },
  { id: "ops:sessions", keys: 300 },
  ...(redisUrl ? [{ id: "ops:shared", keys: 300 }] : []),
];

describe("luastore store", () => {
  it.each(KINDS)("$id: dump → flush → restore gives back identical contents", async ({ id, keys }) => {
    const file = registryFile();
    const before = open(file, id);
    await before.flush();
    await fill(before, keys);
    const expected = await contents(before);
    await before.close();

    const dump = await cli(["store", "dump", id, "--registry", file]);
    expect(dump.code, dump.err).toBe(0);
    const lines = dump.out.trim().split("\n");
    expect(lines.length).toBe(keys + 4);
    const bin = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.key_b64 !== undefined)!;
    expect(Buffer.from(bin.key_b64 as string, "base64")).toEqual(Buffer.from("k\xff\x00bin", "latin1"));
    if (keys > 10_000) expect(dump.err).toMatch(/dump ops:cache: 10000 keys/);

    const flush = await cli(["store", "flush", id, "--registry", file]);
    expect([flush.code, flush.out]).toEqual([0, `${keys + 4}\n`]);
    const empty = open(file, id);
    expect(await empty.size()).toBe(0);
    if (id !== "ops:cache") await empty.close();

    const restore = await cli(["store", "restore", id, "-", "--registry", file], dump.out);
    expect(restore.code, restore.err).toBe(0);
    expect(restore.err).toMatch(new RegExp(`${keys + 4} keys written`));
    if (keys > 10_000) expect(restore.err).toMatch(/restore ops:cache: 10000 of 10054 keys/);
    const after = open(file, id);
    const restored = await contents(after);
    // Expiry is restored as the same absolute time; a backend reads its clock when it writes (Redis
    // keeps a TTL), so it may move by the milliseconds the restore takes: a minute is far more than that.
    const drift = (c: typeof restored) => Object.fromEntries(Object.entries(c).map(([k, [v, at, m]]) => [k, [v, at === 0 ? 0 : "expires", m]]));
    expect(drift(restored)).toEqual(drift(expected));
    expect(Math.abs(restored.ttl![1] - expected.ttl![1])).toBeLessThan(60_000);
    if (id !== "ops:cache") await after.close();
  }, 120_000);

  it("get, list and info", async () => {
    const file = registryFile();
    const s = open(file, "ops:sessions");
    await s.set("user:1", encodeValue({ name: "ada" }), 0);
    await s.set("user:2", encodeValue(2), 0);
    await s.set("other", encodeValue(3), 0);
    await s.close();
    expect(await cli(["store", "get", "ops:sessions", "user:1", "--registry", file])).toMatchObject({ code: 0, out: '{"name":"ada"}\n' });
    expect(await cli(["store", "get", "ops:sessions", "nope", "--registry", file])).toMatchObject({ code: 1 });
    expect(await cli(["store", "list", "ops:sessions", "--prefix", "user:", "--registry", file])).toMatchObject({ code: 0, out: "user:1\nuser:2\n" });
    expect(await cli(["store", "list", "ops:sessions", "--limit", "1", "--registry", file])).toMatchObject({ code: 0, out: "other\n" });
    const info = await cli(["store", "info", "ops:sessions", "--registry", file]);
    expect(JSON.parse(info.out)).toMatchObject({ id: "ops:sessions", kind: "store.sql", size: 3, maxSize: 10_000 });
  });

  it("refuses an unknown subcommand or store with a did-you-mean, and a bad dump line with file:line", async () => {
    const file = registryFile();
    const a = await cli(["store", "dupm", "ops:cache", "--registry", file]);
    expect([a.code, a.err]).toEqual([2, expect.stringContaining("did you mean 'dump'?")]);
    const b = await cli(["store", "info", "ops:sesions", "--registry", file]);
    expect([b.code, b.err]).toEqual([2, expect.stringContaining("did you mean 'ops:sessions'?")]);
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, `{"key":"a","value":"AQ=="}\n{"key":"b","value":"not base64!"}\n`);
    const c = await cli(["store", "restore", "ops:sessions", bad, "--registry", file]);
    expect([c.code, c.err]).toEqual([1, expect.stringContaining(`${bad}:2: value must be base64`)]);
    const s = open(file, "ops:sessions");
    expect(await s.size()).toBe(0);
    await s.close();
  });
});

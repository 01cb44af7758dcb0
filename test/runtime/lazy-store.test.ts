/**
 * Stores open on first use: one that cannot open fails only the calls that use it, with its
 * registry position; the others serve; and a memory-only host never loads better-sqlite3 or ioredis.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorKind } from "../../src/errors.js";
import { createHost, type Host, type Isolation } from "../../src/host.js";
import { loadRegistry } from "../../src/registry/index.js";
import { systemClock } from "../../src/clock.js";
import { encodeValue } from "../../src/codec/msgpack.js";
import { LazyStore } from "../../src/runtime/lazy-store.js";
import type { SqlStoreConfig } from "../../src/registry/types.js";

const dir = mkdtempSync(join(tmpdir(), "luastore-lazy-"));
const ADMIN = { id: "admin", meta: {} };
const POLICIES = { version: "1.0", policies: [{ id: "all", effect: "allow", actions: ["store.get", "store.key.*"], resources: ["shop:*"] }] };

function registryFile(): string {
  const file = join(dir, `registry-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    [
      'version: "1.0"',
      "namespace: shop",
      "entries:",
      "  - name: counters",
      "    kind: store.memory",
      "  - name: carts",
      "    kind: store.redis",
      "    url_env: LUASTORE_TEST_UNSET_VARIABLE",
      "  - name: orders",
      "    kind: store.sql",
      "    path: data/orders.db",
      "",
    ].join("\n"),
  );
  return file;
}

const hosts: Host[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
});

describe.each<Isolation>(["inline", "worker"])("a store that cannot open (%s)", (isolation) => {
  it("fails only the calls that use it, with its registry position; the other stores serve", async () => {
    delete process.env.LUASTORE_TEST_UNSET_VARIABLE;
    const registry = registryFile();
    const host = createHost({ registry, policies: POLICIES as never, isolation, workers: 1, sweepTimers: false });
    hosts.push(host);
    const ok = await host.run(`return require("store").get("shop:counters"):incr("n")`, { actor: ADMIN });
    expect(ok.error).toBeUndefined();
    expect(ok.values).toEqual([1]);
    const bad = await host.run(
      `local s = require("store").get("shop:carts") local v, err = s:get("k") return v, err:kind(), err:message()`,
      { actor: ADMIN },
    );
    expect(bad.error).toBeUndefined();
    expect(bad.values[0]).toBeNull();
    expect(bad.values[1]).toBe(ErrorKind.INVALID);
    expect(bad.values[2]).toBe(
      `store shop:carts (${registry}:6:5) cannot open: environment variable LUASTORE_TEST_UNSET_VARIABLE (url_env) is not set`,
    );
  });
});

describe("lazy opening", () => {
  it("creates a SQLite file only when the store is first used", async () => {
    const registry = registryFile();
    const file = resolve(dir, "data/orders.db");
    const host = createHost({ registry, policies: POLICIES as never, isolation: "inline", sweepTimers: false });
    hosts.push(host);
    expect(existsSync(file)).toBe(false);
    expect((await host.metrics()).find((m) => m.id === "shop:orders")).toMatchObject({ size: 0, sets: 0 });
    const r = await host.run(`return require("store").get("shop:orders"):set("k", 1)`, { actor: ADMIN });
    expect(r.values).toEqual([true]);
    expect(existsSync(file)).toBe(true);
  });

  it("tries a failed open again on the next call", async () => {
    const blocker = join(dir, "blocker");
    writeFileSync(blocker, "a file where the store wants a directory");
    const config = loadRegistry({
      version: "1.0",
      namespace: "t",
      entries: [{ name: "db", kind: "store.sql", path: "blocker/sub/db.sqlite" }],
    } as never, { baseDir: dir }).entries[0] as SqlStoreConfig;
    const store = new LazyStore(config, { clock: systemClock, sweepTimers: false, baseDir: dir });
    await expect(store.get("k")).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, message: expect.stringMatching(/^store t:db \(<registry>\) cannot open: /) });
    expect(store.opened).toBe(false);
    const retry = new LazyStore({ ...config, path: "fixed/db.sqlite" }, { clock: systemClock, sweepTimers: false, baseDir: dir });
    await retry.set("k", encodeValue(1), 0);
    expect(retry.opened).toBe(true);
    await retry.close();
    await store.close();
  });
});

describe("drivers", () => {
  it("a memory-only host never loads better-sqlite3 or ioredis; a registry with a SQLite store loads only better-sqlite3 when it is used", () => {
    const script = `
      import { createRequire } from "node:module";
      import { createHost } from ${JSON.stringify(resolve("dist/index.js"))};
      const require = createRequire(import.meta.url);
      const loaded = (name) => Object.keys(require.cache).some((k) => k.includes("/node_modules/" + name + "/"));
      const policies = ${JSON.stringify(POLICIES)};
      const memory = createHost({ registry: { version: "1.0", namespace: "shop", entries: [{ name: "m", kind: "store.memory" }] }, policies, isolation: "inline" });
      await memory.run('return require("store").get("shop:m"):set("k", 1)', { actor: { id: "admin", meta: {} } });
      await memory.close();
      const before = [loaded("better-sqlite3"), loaded("ioredis")];
      const sql = createHost({ registry: { version: "1.0", namespace: "shop", entries: [{ name: "s", kind: "store.sql", path: ":memory:" }] }, policies, isolation: "inline" });
      const afterCreate = [loaded("better-sqlite3"), loaded("ioredis")];
      await sql.run('return require("store").get("shop:s"):set("k", 1)', { actor: { id: "admin", meta: {} } });
      await sql.close();
      console.log(JSON.stringify({ before, afterCreate, afterUse: [loaded("better-sqlite3"), loaded("ioredis")] }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({ before: [false, false], afterCreate: [false, false], afterUse: [true, false] });
  });
});

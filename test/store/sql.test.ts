import { Buffer } from "node:buffer";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ManualClock, type Clock } from "../../src/clock.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind } from "../../src/errors.js";
import { loadRegistry } from "../../src/registry/index.js";
import type { SqlEntryDocument, SqlStoreConfig } from "../../src/registry/types.js";
import { createStore } from "../../src/store/create-store.js";
import { SqlStore } from "../../src/store/sql.js";
import { collectionsOf, type Store } from "../../src/store/store.js";
import { commonStoreConfig, storeSuite, type SuiteStoreConfig } from "./store-suite.js";

const dir = mkdtempSync(join(tmpdir(), "luastore-sql-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function sqlConfig(config: SuiteStoreConfig, path: string): SqlStoreConfig {
  return {
    ...commonStoreConfig(config),
    kind: "store.sql",
    path,
    tableName: "kv",
    busyTimeoutMs: 5000,
    eviction: config.eviction ?? "none",
  };
}

storeSuite("store.sql (file)", ({ clock, config }) =>
  new SqlStore(sqlConfig(config, `store-${++files}.db`), { clock, sweepTimer: false, baseDir: dir }),
);

storeSuite("store.sql (:memory:)", ({ clock, config }) =>
  new SqlStore(sqlConfig(config, ":memory:"), { clock, sweepTimer: false }),
);

describe("store.sql specifics", () => {
  const one = encodeValue(1);
  const opened: Store[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });
  function open(entry: Partial<SqlEntryDocument> & { path: string }, clock: Clock = new ManualClock(1_700_000_000_000)): Store {
    const registry = loadRegistry({ version: "1.0", namespace: "app", entries: [{ name: "s", kind: "store.sql", ...entry }] }, { baseDir: dir });
    const store = createStore(registry.entries[0]!, { clock, sweepTimers: false, baseDir: registry.baseDir });
    opened.push(store);
    return store;
  }

  it("a relative path resolves against the registry's directory, which is created when missing", async () => {
    const store = open({ path: "nested/dir/data.db" }) as SqlStore;
    expect(store.file).toBe(join(dir, "nested/dir/data.db"));
    await store.set("a", one, 0);
    expect(existsSync(join(dir, "nested/dir/data.db"))).toBe(true);
  });

  it("a table of layout 1 (before lists) is brought to layout 2 on open and keeps its rows and byte counts", async () => {
    const path = join(dir, "layout1.db");
    const db = new Database(path);
    const size = (row: string) => `(length(${row}.key) + length(${row}.value) + coalesce(length(${row}.metadata), 0))`;
    db.exec(`
      CREATE TABLE "kv" (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
        expires_at INTEGER NOT NULL DEFAULT 0, metadata BLOB, used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE "kv_meta" (id INTEGER PRIMARY KEY CHECK (id = 1), schema INTEGER NOT NULL, version INTEGER NOT NULL,
        count INTEGER NOT NULL, bytes INTEGER NOT NULL);
      INSERT INTO "kv_meta" VALUES (1, 1, 0, 0, 0);
      CREATE TRIGGER "kv_count_insert" AFTER INSERT ON "kv" BEGIN
        UPDATE "kv_meta" SET count = count + 1, bytes = bytes + ${size("NEW")} WHERE id = 1; END;
      CREATE TRIGGER "kv_count_delete" AFTER DELETE ON "kv" BEGIN
        UPDATE "kv_meta" SET count = count - 1, bytes = bytes - ${size("OLD")} WHERE id = 1; END;
      CREATE TRIGGER "kv_count_update" AFTER UPDATE OF value, metadata ON "kv" BEGIN
        UPDATE "kv_meta" SET bytes = bytes + ${size("NEW")} - ${size("OLD")} WHERE id = 1; END;
      UPDATE "kv_meta" SET version = 1;
      INSERT INTO "kv" (key, value, version) VALUES (X'61', X'01', 1);
    `);
    db.close();
    const store = collectionsOf(open({ path: "layout1.db" }));
    expect(await store.get("a")).toEqual(Buffer.from([1]));
    expect((await store.stats()).bytes).toBe(2);
    expect(await store.listPush("q", "right", [one, one])).toBe(2);
    expect((await store.stats()).bytes).toBe(2 + 1 + 2);
    await store.set("q", one, 0);
    expect((await store.stats()).bytes).toBe(2 + 2);
    const check = new Database(path, { readonly: true });
    expect(check.prepare(`SELECT schema FROM "kv_meta"`).pluck().get()).toBe(2);
    expect(check.prepare(`SELECT count(*) FROM "kv_list"`).pluck().get()).toBe(0);
    check.close();
  });

  it("the database file is in WAL mode", () => {
    open({ path: "pragmas.db" });
    const db = new Database(join(dir, "pragmas.db"));
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.close();
  });

  it("entries, TTLs and the version counter survive closing and reopening", async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const first = open({ path: "reopen.db" }, clock);
    await first.put("a", one, { ttlMs: 5000, onlyIfAbsent: false, metadata: encodeValue("m") });
    const before = (await first.entry("a"))!;
    await first.close();
    const second = open({ path: "reopen.db" }, clock);
    expect(await second.entry("a")).toEqual(before);
    await second.set("b", one, 0);
    expect((await second.entry("b"))!.version > before.version).toBe(true);
    clock.advance(5000);
    expect(await second.has("a")).toBe(false);
  });

  it("two stores on one file see each other's writes, versions and max_size", async () => {
    const a = open({ path: "two.db", max_size: 2 });
    const b = open({ path: "two.db", max_size: 2 });
    await a.set("x", one, 0);
    expectValue(await b.get("x"), 1);
    const version = (await a.entry("x"))!.version;
    expect(await b.put("x", encodeValue(2), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("ok");
    expect(await a.put("x", encodeValue(3), { ttlMs: 0, onlyIfAbsent: false, ifVersion: version })).toBe("conflict");
    await b.set("y", one, 0);
    await expect(async () => a.set("z", one, 0)).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
  });

  it("stores with different table names in one file are separate", async () => {
    const a = open({ path: "tables.db", table_name: "first" });
    const b = open({ path: "tables.db", table_name: "second" });
    await a.set("k", one, 0);
    expect(await b.has("k")).toBe(false);
    expect(await b.size()).toBe(0);
  });

  it("a write waiting on another process's transaction longer than busy_timeout fails as Unavailable", async () => {
    const store = open({ path: "busy.db", busy_timeout: "100ms" });
    await store.set("a", one, 0);
    const other = new Database(join(dir, "busy.db"));
    other.exec("BEGIN IMMEDIATE");
    try {
      const start = performance.now();
      await expect(async () => store.set("b", one, 0)).rejects.toMatchObject({ kind: ErrorKind.UNAVAILABLE, retryable: true });
      expect(performance.now() - start).toBeGreaterThanOrEqual(90);
      // Reads go on while another connection writes (WAL).
      expectValue(await store.get("a"), 1);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    await store.set("b", one, 0);
  });

  it("a sweep reaches expired rows through the expires_at index", async () => {
    open({ path: "plan.db" });
    const db = new Database(join(dir, "plan.db"));
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN SELECT key FROM "kv" WHERE expires_at > 0 AND expires_at <= ? LIMIT 1000`)
      .all(0) as { detail: string }[];
    db.close();
    expect(plan.map((row) => row.detail).join("\n")).toMatch(/USING (COVERING )?INDEX kv_expires_at/);
  });

  it("the row count and byte total stay right when rows change outside luastore", async () => {
    const store = open({ path: "outside.db" });
    await store.setMany([["a", one], ["b", one], ["c", one]], 0);
    const db = new Database(join(dir, "outside.db"));
    db.prepare(`DELETE FROM "kv" WHERE key = ?`).run(Buffer.from("b"));
    db.close();
    expect(await store.stats()).toMatchObject({ size: 2, bytes: 4 });
  });

  it("a file that is not an SQLite database is refused when the store is created", () => {
    writeFileSync(join(dir, "not-a.db"), "this is not a database, just some text that is long enough ".repeat(20));
    expect(() => open({ path: "not-a.db" })).toThrow(expect.objectContaining({ kind: ErrorKind.UNAVAILABLE, code: "STORE_ERROR" }));
  });
});

function expectValue(bytes: Uint8Array | undefined, value: unknown): void {
  expect(bytes).toBeDefined();
  expect(decodeValue(bytes!)).toEqual(value);
}

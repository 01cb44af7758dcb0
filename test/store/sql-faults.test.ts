/** store.sql under faults and sharing: a killed writer, and two processes on one file. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { decodeValue } from "../../src/codec/msgpack.js";
import { loadRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import { runTogether, startChild } from "./fixtures/child-process.js";

const dir = mkdtempSync(join(tmpdir(), "luastore-sql-faults-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openStore(path: string) {
  const registry = loadRegistry({ version: "1.0", namespace: "faults", entries: [{ name: "s", kind: "store.sql", path }] }, { baseDir: dir });
  return createStore(registry.entries[0]!, { clock: systemClock, sweepTimers: false, baseDir: registry.baseDir });
}

describe("store.sql faults", () => {
  it("every write a killed process had acknowledged is there after reopening, and the file is intact", async () => {
    const acknowledged: string[] = [];
    let enough!: () => void;
    const reachedEnough = new Promise<void>((resolve) => (enough = resolve));
    const child = startChild({ entry: { name: "s", kind: "store.sql", path: "killed.db" }, baseDir: dir, job: "write-loop" }, (key) => {
      acknowledged.push(key);
      if (acknowledged.length === 300) enough();
    });
    await Promise.race([reachedEnough, child.exited.then(() => Promise.reject(new Error(`child ended early:\n${child.stderr}`)))]);
    // Killed in the middle of its loop: most likely inside a transaction or a commit.
    child.kill("SIGKILL");
    await child.exited;

    const db = new Database(join(dir, "killed.db"));
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    db.close();
    const store = openStore("killed.db");
    try {
      const values = await store.getMany(acknowledged);
      expect(values.filter((v) => v === undefined).length).toBe(0);
      // At most the write in flight when it died got in without being acknowledged.
      expect(await store.size()).toBeGreaterThanOrEqual(acknowledged.length);
      expect(await store.size()).toBeLessThanOrEqual(acknowledged.length + 1);
    } finally {
      await store.close();
    }
  }, 120_000);

  it("two processes incrementing one counter in one file end with the exact total", async () => {
    const job = {
      entry: { name: "s", kind: "store.sql", path: "shared.db" },
      baseDir: dir,
      job: "incr",
      count: 300,
    } as const;
    const outputs = await runTogether(job, 2);
    expect(outputs).toEqual([["done"], ["done"]]);
    const store = openStore("shared.db");
    try {
      expect(decodeValue((await store.get("counter"))!)).toBe(600);
    } finally {
      await store.close();
    }
    // Two child processes that compile TypeScript at start: seconds on a busy machine; not a speed bound.
  }, 120_000);
});

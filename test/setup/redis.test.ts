/** npm test's own Redis: taken from LUASTORE_REDIS_URL, started when redis-server is there, or skipped out loud. */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { answersPing, hasRedisServer } from "../store/redis-server.js";
import { REDIS_SUITES, redisForTests, TOPOLOGY_SUITES, topologyNotice } from "./redis.js";

describe("redisForTests", () => {
  it("uses LUASTORE_REDIS_URL when set, printing it without its password", async () => {
    const r = await redisForTests({ env: { LUASTORE_REDIS_URL: "redis://u:secret@127.0.0.1:1/0" }, serverAvailable: true });
    expect(r.url).toBe("redis://u:secret@127.0.0.1:1/0");
    expect(r.notice).toEqual(["redis: LUASTORE_REDIS_URL=redis://u:***@127.0.0.1:1/0"]);
  });

  it("names every Redis suite and the reason when there is neither a URL nor redis-server", async () => {
    const r = await redisForTests({ env: {}, serverAvailable: false });
    expect(r.url).toBeUndefined();
    expect(r.notice).toHaveLength(REDIS_SUITES.length);
    for (const [i, suite] of REDIS_SUITES.entries()) {
      expect(r.notice[i]).toMatch(new RegExp(`^skipped: ${suite.file}: LUASTORE_REDIS_URL is not set and redis-server is not on the PATH`));
    }
  });

  it("with a URL but no redis-server, skips only the suites that start servers of their own", async () => {
    const r = await redisForTests({ env: { LUASTORE_REDIS_URL: "redis://127.0.0.1:1/0" }, serverAvailable: false });
    expect(r.notice.slice(1)).toEqual([expect.stringMatching(/^skipped: test\/store\/redis-faults\.test\.ts: /)]);
  });

  // redis-server is on the PATH in CI (.ci/run installs it); this test is the check that it is.
  it("starts a redis-server on a free loopback port when none is given, and stops it", async () => {
    expect(hasRedisServer(), "redis-server must be on the PATH").toBe(true);
    const r = await redisForTests({ env: {} });
    expect(r.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/0$/);
    expect(await answersPing(r.url!)).toBe(true);
    await r.stop();
    expect(await answersPing(r.url!)).toBe(false);
  });
});

describe("topologyNotice", () => {
  it("names each topology suite whose variable is unset, and only those", () => {
    expect(topologyNotice({})).toHaveLength(TOPOLOGY_SUITES.length);
    const one = topologyNotice({ LUASTORE_REDIS_SENTINELS: "127.0.0.1:1", LUASTORE_REDIS_TLS_URL: "rediss://127.0.0.1:2" });
    expect(one).toEqual([expect.stringMatching(/^skipped: .*redis-cluster-faults\.test\.ts: LUASTORE_REDIS_CLUSTER_NODES is not set/)]);
  });
});

describe("npm test without a Redis", () => {
  it("prints the skipped suites and why as the first lines after vitest's banner", () => {
    // An empty PATH: no redis-server to find. node and vitest are started by absolute path.
    const env: NodeJS.ProcessEnv = { PATH: mkdtempSync(join(tmpdir(), "luastore-nopath-")), NO_COLOR: "1", HOME: process.env.HOME };
    const r = spawnSync(process.execPath, ["node_modules/vitest/vitest.mjs", "run", "test/store/redis.test.ts"], {
      env,
      encoding: "utf8",
      timeout: 120_000,
    });
    const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
    expect(lines[0], r.stdout + r.stderr).toMatch(/^ RUN /);
    expect(lines[1]).toMatch(/^skipped: test\/store\/redis\.test\.ts: LUASTORE_REDIS_URL is not set and redis-server is not on the PATH/);
    expect(lines[2]).toMatch(/^skipped: test\/store\/redis-faults\.test\.ts: /);
    expect(r.status).toBe(0);
  });
});

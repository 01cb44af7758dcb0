/**
 * A private redis-server for the bench, on a free loopback port, when one is on the PATH (as
 * `.ci/run` installs it); null when there is none, so the bench says its anchor is missing.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export interface BenchRedis {
  port: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts redis-server, or answers null when it is not installed. */
export async function startBenchRedis(): Promise<BenchRedis | null> {
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "luastore-bench-redis-"));
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: "ignore",
  });
  const probe = new Redis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: null, maxRetriesPerRequest: 0 });
  probe.on("error", () => {});
  for (let i = 0; ; i++) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      if (i >= 100) {
        child.kill();
        throw new Error(`redis-server on port ${port} did not answer within 10 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  probe.disconnect();
  return {
    port,
    async stop() {
      child.kill();
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

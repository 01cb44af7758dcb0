/**
 * Gives the store.redis suites a Redis: LUASTORE_REDIS_URL when set, else a redis-server of the
 * run's own on a free loopback port (stopped at the end), else a notice naming the suites that will
 * be skipped and why. Used by test/setup/global.ts, which vitest runs before any test file.
 */
import { freePort, hasRedisServer, RedisServer } from "../store/redis-server.js";

/** The suites that need a Redis, and whether each also needs redis-server on the PATH. */
export const REDIS_SUITES: readonly { file: string; needsServerBinary: boolean }[] = [
  { file: "test/store/redis.test.ts", needsServerBinary: false },
  { file: "test/store/redis-faults.test.ts", needsServerBinary: true },
];

/** The topology suites (test/servers/redis-topologies.sh), each skipped when its variable is unset. */
export const TOPOLOGY_SUITES: readonly { suite: string; variable: string }[] = [
  { suite: "test/store/redis.test.ts on a 6-node Cluster, test/store/redis-cluster-faults.test.ts", variable: "LUASTORE_REDIS_CLUSTER_NODES" },
  { suite: "test/store/redis.test.ts on Sentinel", variable: "LUASTORE_REDIS_SENTINELS" },
  { suite: "test/store/redis.test.ts on TLS with an ACL user", variable: "LUASTORE_REDIS_TLS_URL" },
];

/** Notice lines for the topology suites that will be skipped. */
export function topologyNotice(env: NodeJS.ProcessEnv): string[] {
  return TOPOLOGY_SUITES.filter((t) => !env[t.variable]).map(
    (t) => `skipped: ${t.suite}: ${t.variable} is not set (source test/servers/redis-topologies.sh start PORT first, as .ci/run does)`,
  );
}

export interface RedisForTests {
  /** The URL the suites will use, or undefined when they are skipped. */
  url: string | undefined;
  /** Lines to print first: where the Redis comes from, or which suites are skipped and why. */
  notice: string[];
  /** Stops the server this run started (nothing otherwise). */
  stop(): Promise<void>;
}

export interface RedisForTestsOptions {
  env: NodeJS.ProcessEnv;
  /** Whether redis-server can be started. @default hasRedisServer() */
  serverAvailable?: boolean;
}

export async function redisForTests(options: RedisForTestsOptions): Promise<RedisForTests> {
  const { env } = options;
  const serverAvailable = options.serverAvailable ?? hasRedisServer();
  const given = env.LUASTORE_REDIS_URL || undefined;
  if (given !== undefined) {
    const skipped = serverAvailable ? [] : REDIS_SUITES.filter((s) => s.needsServerBinary);
    return {
      url: given,
      notice: [
        `redis: LUASTORE_REDIS_URL=${redactUrl(given)}`,
        ...skipped.map((s) => `skipped: ${s.file}: it starts and kills redis-server of its own, and redis-server is not on the PATH`),
      ],
      stop: async () => {},
    };
  }
  if (!serverAvailable) {
    return {
      url: undefined,
      notice: REDIS_SUITES.map(
        (s) =>
          `skipped: ${s.file}: LUASTORE_REDIS_URL is not set and redis-server is not on the PATH ` +
          "(install redis-server, or set LUASTORE_REDIS_URL=redis://127.0.0.1:6379/0)",
      ),
      stop: async () => {},
    };
  }
  const server = new RedisServer(await freePort());
  await server.start();
  return {
    url: server.url,
    notice: [`redis: started redis-server on 127.0.0.1:${server.port} for the store.redis suites (stopped at the end)`],
    stop: () => server.kill(),
  };
}

/** A URL without its password, for printing. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(not a URL)";
  }
}

/** vitest globalSetup: a Redis for the store.redis suites (see ./redis.ts); its notice is the run's first lines. */
import { redisForTests, topologyNotice, type RedisForTests } from "./redis.js";

let redis: RedisForTests | undefined;

export async function setup(): Promise<void> {
  redis = await redisForTests({ env: process.env });
  // Test files run in child processes forked after this, so they inherit the variable.
  if (redis.url !== undefined) process.env.LUASTORE_REDIS_URL = redis.url;
  redis.notice.push(...topologyNotice(process.env));
  for (const line of redis.notice) console.log(line);
}

export async function teardown(): Promise<void> {
  const skipped = redis?.notice.filter((line) => line.startsWith("skipped:")) ?? [];
  // Said again at the end, where the summary is read.
  for (const line of skipped) console.log(line);
  await redis?.stop();
}

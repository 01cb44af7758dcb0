#!/usr/bin/env node
/**
 * `npm run fuzz -- --runs N --seed S [--modes inline,worker]`: the generated hostile scripts of
 * test/hostile/generated.test.ts, as many as asked for. Without --seed a random seed is drawn and
 * printed, so a failure can be replayed with the same seed (fast-check also prints the shrunk case).
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

let values;
try {
  ({ values } = parseArgs({
    options: {
      runs: { type: "string", default: "2000" },
      seed: { type: "string" },
      modes: { type: "string", default: "inline,worker" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (err) {
  console.error(`fuzz: ${err.message}`);
  process.exit(2);
}
if (values.help) {
  console.log("usage: npm run fuzz -- [--runs N] [--seed S] [--modes inline,worker]");
  process.exit(0);
}
const runs = Number(values.runs);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isSafeInteger(runs) || runs < 1) {
  console.error(`fuzz: --runs must be a positive integer, got '${values.runs}'`);
  process.exit(2);
}
if (!Number.isSafeInteger(seed)) {
  console.error(`fuzz: --seed must be an integer, got '${values.seed}'`);
  process.exit(2);
}
for (const mode of values.modes.split(",")) {
  if (mode !== "inline" && mode !== "worker") {
    console.error(`fuzz: unknown mode '${mode}' in --modes (known: inline, worker)`);
    process.exit(2);
  }
}
console.log(`fuzz: ${runs} generated scripts per mode (${values.modes}), seed ${seed}`);
const result = spawnSync("npx", ["vitest", "run", "test/hostile/generated.test.ts"], {
  stdio: "inherit",
  env: { ...process.env, LUASTORE_FUZZ_RUNS: String(runs), LUASTORE_FUZZ_SEED: String(seed), LUASTORE_FUZZ_MODES: values.modes },
});
process.exit(result.status ?? 1);

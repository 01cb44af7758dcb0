/**
 * [hostile] Generated scripts (see generated-scripts.ts): for every case the payload's limit
 * fires with its kind, within the limit plus a margin, and the host serves the next run.
 *
 * `npm test` runs 300 cases per isolation mode from a fixed seed (the same cases every time);
 * `npm run fuzz -- --runs N --seed S` runs more. A failure prints the seed and the shrunk case.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../../src/host.js";
import { HOOK_INTERVAL } from "../../src/lua/control.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";
import { generatedCase, type GeneratedCase } from "./generated-scripts.js";

const RUNS = Number(process.env.LUASTORE_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.LUASTORE_FUZZ_SEED ?? 20261201);
const MODES = (process.env.LUASTORE_FUZZ_MODES ?? "inline,worker").split(",") as ("inline" | "worker")[];
/**
 * How far past its 40 ms deadline a Timeout case may be reported. The hook checks the deadline
 * every 1000 instructions (microseconds), so this only absorbs scheduling on a loaded machine;
 * a hook that stopped firing never ends at all and fails the bound.
 */
const TIMEOUT_MARGIN_MS = 5_000;

async function check(host: Host, mode: string, c: GeneratedCase): Promise<void> {
  const { payload, script } = c;
  const r = await host.run(script, { actor: ADMIN, limits: payload.limits });
  const where = `${mode}: ${r.error?.kind ?? "ok"}: ${r.error?.message ?? JSON.stringify(r.values)}\n--- script ---\n${script}`;
  expect(r.ok, where).toBe(false);
  expect(r.error?.kind, where).toBe(payload.expect);
  const limits = payload.limits;
  switch (payload.expect) {
    case "InstructionLimit":
      expect(r.stats.instructions, where).toBeLessThanOrEqual(limits.maxInstructions! + HOOK_INTERVAL);
      break;
    case "StoreOpsLimit":
      expect(r.stats.storeOps, where).toBeLessThanOrEqual(limits.maxStoreOps! + 1);
      break;
    case "OutputLimit":
      expect(r.output.length, where).toBeLessThanOrEqual(limits.maxOutputBytes!);
      break;
    case "Timeout":
      // The count hook, not the worker watchdog (whose grace is 30 s here), must stop it.
      expect(r.error?.message, where).not.toMatch(/worker stopped/);
      expect(r.stats.wallMs, where).toBeLessThan(limits.timeoutMs! + TIMEOUT_MARGIN_MS);
      break;
  }
  const next = await host.run(`return 1`, { actor: ADMIN });
  expect(next.values, `the next run after:\n${where}`).toEqual([1]);
}

for (const mode of MODES) {
  describe(`[hostile] generated scripts, ${mode} isolation`, () => {
    let host: Host;
    beforeAll(async () => {
      host = createHost({
        registry: TEST_REGISTRY,
        policies: TEST_POLICIES,
        sweepTimers: false,
        isolation: mode,
        workers: 2,
        watchdogGraceMs: 30_000,
      });
      await host.ready();
    });
    afterAll(async () => {
      await host.close();
    });

    it(
      `${RUNS} cases from seed ${SEED}: each ends with its payload's limit, and the host serves the next run`,
      async () => {
        await fc.assert(
          fc.asyncProperty(generatedCase(), (c) => check(host, mode, c)),
          { numRuns: RUNS, seed: SEED, verbose: 1 },
        );
        expect(host.pools().every((p) => p.inUse === 0)).toBe(true);
      },
      // A budget for the run count, not a speed assertion: cases take milliseconds each.
      Math.max(120_000, RUNS * 400),
    );
  });
}

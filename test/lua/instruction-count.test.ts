/**
 * `stats.instructions` is the exact number of VM instructions a run executed (not rounded to
 * the count hook's period of 1000), in both isolation modes and across coroutines.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../../src/host.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";

for (const mode of ["inline", "worker"] as const) {
  describe(`instruction counts (${mode})`, () => {
    let host: Host;
    beforeAll(async () => {
      host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: mode, workers: 1 });
      await host.ready();
    });
    afterAll(async () => {
      await host.close();
    });
    const count = async (src: string): Promise<number> => {
      const r = await host.run(src, { actor: ADMIN });
      expect(r.error, r.error?.message).toBeUndefined();
      return r.stats.instructions;
    };

    it("a tiny script reports its few instructions, not 0", async () => {
      const n = await count(`return 1`);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(10);
      expect(await count(`return 1`)).toBe(n);
    });

    it("each loop iteration adds exactly its instructions, below and across the hook period", async () => {
      const loop = (n: number) => `local x = 0 for i = 1, ${n} do x = x + i end return x`;
      const base = await count(loop(0));
      // One iteration of `x = x + i` is ADD + FORLOOP: two instructions.
      expect(await count(loop(100))).toBe(base + 200);
      expect(await count(loop(499))).toBe(base + 998);
      expect(await count(loop(12_345))).toBe(base + 24_690);
    });

    it("instructions inside coroutines are counted exactly too", async () => {
      const inCo = (n: number) => `local x = 0 coroutine.wrap(function() for i = 1, ${n} do x = x + i end end)() return x`;
      const base = await count(inCo(0));
      // `x` is an upvalue there: GETUPVAL, ADD, SETUPVAL, FORLOOP per iteration.
      expect(await count(inCo(50))).toBe(base + 200);
      expect(await count(inCo(5_000))).toBe(base + 20_000);
    });
  });
}

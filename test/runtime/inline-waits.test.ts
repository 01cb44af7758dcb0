/**
 * The inline run loop's host waits (src/runtime/inline.ts): one deadline timer per run bounds
 * every wait, each wait continues from its own promise's callbacks. The deadline is the run's,
 * not a fresh one per wait; a finished run leaves no timer behind; a run timed out in a wait
 * is not disturbed when that wait settles later.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { makeHost, type TestHost } from "../helpers.js";

describe("inline host waits", () => {
  let t: TestHost | undefined;
  afterEach(async () => {
    await t?.host.close();
    t = undefined;
  });

  it("many short waits are bounded by the run's one deadline, not one per wait", async () => {
    t = makeHost({ clock: undefined });
    // 10 000 sleeps of 1 ms are 10 s or more; the deadline is 300 ms, far below.
    const r = await t.run(`local time = require("time") for i = 1, 10000 do time.sleep(0.001) end return "done"`, {
      limits: { timeoutMs: 300 },
    });
    expect(r.error?.kind).toBe("Timeout");
    expect(r.values).toEqual([]);
  });

  it("a run with many waits answers every one of them in order", async () => {
    t = makeHost({ clock: undefined });
    const r = await t.run(
      `local s = require("store").get("app:cache")
       local time = require("time")
       local out = {}
       for i = 1, 50 do s:set("k" .. i, i) time.sleep(0) out[#out + 1] = s:get("k" .. i) end
       return table.concat(out, ",")`,
      { limits: { timeoutMs: 60_000 } },
    );
    expect(r.error).toBeUndefined();
    expect(r.values).toEqual([Array.from({ length: 50 }, (_, i) => i + 1).join(",")]);
  });

  it("a finished run leaves no timer behind, whether it ended, failed or timed out in a wait", () => {
    // In a process of its own that never closes the host: a deadline timer left behind would
    // keep it alive for the 600 s timeoutMs; it must exit once the three runs are done, far
    // within the 60 s this test waits.
    const script = `
      import { createHost } from ${JSON.stringify(resolve("dist/index.js"))};
      const host = createHost({
        registry: { version: "1.0", namespace: "app", entries: [{ name: "m", kind: "store.memory" }] },
        policies: { version: "1.0", policies: [{ id: "all", effect: "allow", actions: ["store.get", "store.key.*"], resources: ["app:*"] }] },
        isolation: "inline", sweepTimers: false,
      });
      const actor = { id: "a", meta: {} };
      const long = { timeoutMs: 600000 };
      const kinds = [];
      for (const [source, limits] of [
        ['require("time").sleep(0.001) return 1', long],
        ['require("time").sleep(0.001) error("x")', long],
        ['require("time").sleep(30)', { timeoutMs: 50 }],
      ]) kinds.push((await host.run(source, { actor, limits })).error?.kind ?? "ok");
      console.log(JSON.stringify(kinds));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(JSON.parse(out)).toEqual(["ok", "RuntimeError", "Timeout"]);
  });

  it("a wait that settles after its run timed out changes nothing", async () => {
    // A clock that moves only when told: the sleep's promise settles when the test advances the
    // clock, after the 50 ms deadline ended the run.
    const clock = new ManualClock(0);
    t = makeHost({ clock });
    const timedOut = await t.run(`require("time").sleep(1) return "late"`, { limits: { timeoutMs: 50 } });
    expect(timedOut.error?.kind).toBe("Timeout");
    clock.advance(2000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(timedOut.values).toEqual([]);
    expect(timedOut.error?.kind).toBe("Timeout");
    expect((await t.run(`return 2`)).values).toEqual([2]);
  });
});

/**
 * The Lua workers' scheduling priority (HostOptions.workerNice): below the host's threads only
 * when runs wait on the store thread, as chosen, and an out-of-range value is refused.
 */
import { readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { OptionsError } from "../../src/errors.js";
import { createHost, type Host, type HostOptions } from "../../src/host.js";
import type { PolicyDocument } from "../../src/policy/types.js";
import type { RegistryDocument } from "../../src/registry/types.js";

const POLICIES: PolicyDocument = { version: "1.0", policies: [{ id: "all", effect: "allow", actions: ["*"], resources: ["*"] }] };
const registry = (entries: RegistryDocument["entries"]): RegistryDocument => ({ version: "1.0", namespace: "app", entries });
const ZONES_ONLY = registry([{ name: "cache", kind: "store.memory" }]);
const WITH_STORE_THREAD = registry([
  { name: "cache", kind: "store.memory" },
  { name: "scratch", kind: "store.sql", path: ":memory:" },
]);

/** Nice values of this process's threads (Linux: field 19 of /proc/self/task/TID/stat). */
function threadNices(): number[] {
  return readdirSync("/proc/self/task").map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}
const count = (values: number[], value: number): number => values.filter((v) => v === value).length;

let hosts: Host[] = [];
afterEach(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  hosts = [];
});

async function readyHost(options: Partial<HostOptions>): Promise<Host> {
  const host = createHost({ registry: ZONES_ONLY, policies: POLICIES, sweepTimers: false, workers: 2, ...options });
  hosts.push(host);
  await host.ready();
  // A run on each worker: every worker has set its priority by the time it answers.
  await Promise.all([1, 2].map(() => host.run("return 1", { actor: { id: "t", meta: {} } })));
  return host;
}

// Setting a nice value of 5 lowers the priority only from 0; elsewhere (not Linux, or a test run
// already niced) the count below means nothing.
const measurable = process.platform === "linux" && getPriority() === 0;

describe.skipIf(!measurable)("Lua worker priority", () => {
  it("stays the host's when every store is a zone or opened by the worker", async () => {
    const before = count(threadNices(), 5);
    await readyHost({});
    expect(count(threadNices(), 5)).toBe(before);
  });

  it("is nice 5 when some store is served by the store thread, so the workers cannot starve it", async () => {
    const before = count(threadNices(), 5);
    await readyHost({ registry: WITH_STORE_THREAD });
    expect(count(threadNices(), 5)).toBe(before + 2);
  });

  it("follows workerNice when given, either way", async () => {
    const before = count(threadNices(), 7);
    await readyHost({ workerNice: 7 });
    expect(count(threadNices(), 7)).toBe(before + 2);
    const fives = count(threadNices(), 5);
    await readyHost({ registry: WITH_STORE_THREAD, workerNice: 0 });
    expect(count(threadNices(), 5)).toBe(fives);
  });
});

describe("workerNice", () => {
  it.each([-1, 20, 2.5, "5"])("%j is refused with the range", (value) => {
    expect(() => createHost({ registry: ZONES_ONLY, policies: POLICIES, workerNice: value as number })).toThrow(OptionsError);
    expect(() => createHost({ registry: ZONES_ONLY, policies: POLICIES, workerNice: value as number })).toThrow(/workerNice must be an integer from 0 to 19/);
  });
});
